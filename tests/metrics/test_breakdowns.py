"""Breakdowns (--by): customer-level groups partition the total; plan and tier split MRR."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine
from tests.builders import metrics
from tests.metrics.scenarios import ADDITIVE_FIELDS, ingest_mixed

from execmetrics.metrics.queries import BreakdownError

PERIODS = ["2023-12", "2024-01", "2024-02", "2024-03", "2024-04"]

EXPECTED_GROUPS = {
    "segment": {"SMB", "Enterprise", "Mid-Market", "(none)"},
    "country": {"GB", "FR", "DE", "(none)"},
    "source": {"google_ads", "instagram", "referral", "(none)"},
    "campaign": {"winter", "reels", "(none)"},
    "currency": {"GBP", "EUR"},
    "attr.vertical": {"photographer", "venue", "(none)"},
}


def grouped(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["period"], row["group"]): row for row in rows}


@pytest.mark.parametrize("by", list(EXPECTED_GROUPS))
def test_customer_breakdown_groups_sum_to_the_total(engine: Engine, by: str) -> None:
    ingest_mixed(engine)
    total = {row["period"]: row for row in metrics(engine, PERIODS[0], PERIODS[-1])}
    rows = metrics(engine, PERIODS[0], PERIODS[-1], by=by)
    assert {row["group"] for row in rows} == EXPECTED_GROUPS[by]
    assert [row["period"] for row in rows] == sorted(row["period"] for row in rows)
    assert len(rows) == len(PERIODS) * len(EXPECTED_GROUPS[by])  # every group in every period
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        for name in ADDITIVE_FIELDS:
            sums[row["period"]][name] += row[name]
    for period in PERIODS:
        assert {n: sums[period][n] for n in ADDITIVE_FIELDS} == {
            n: total[period][n] for n in ADDITIVE_FIELDS
        }, period
    assert total["2024-01"]["mrr_end"] == 30500  # the sums are of something non-trivial


def test_segment_groups_carry_every_metric(engine: Engine) -> None:
    ingest_mixed(engine)
    rows = grouped(metrics(engine, "2024-01", "2024-04", by="segment"))
    smb = rows[("2024-01", "SMB")]  # c1 and c3
    assert (smb["mrr_start"], smb["mrr_end"]) == (13000, 15000)
    assert (smb["expansion_mrr"], smb["reactivation_mrr"], smb["churned_mrr"]) == (5000, 3000, 6000)
    assert (smb["customers_start"], smb["customers_end"]) == (2, 1)
    assert smb["customer_churn_rate"] == Decimal("0.5")
    assert smb["arpa"] == 15000
    assert smb["gross_mrr_churn_rate"] == Decimal("0.461538")  # 6000 / 13000
    # c4's segment is derived from 1500 employees.
    enterprise = rows[("2024-03", "Enterprise")]  # c2 churns 5000, c4's trial ends: 8000 new
    assert (enterprise["mrr_start"], enterprise["new_mrr"], enterprise["churned_mrr"]) == (
        5000,
        8000,
        5000,
    )
    assert enterprise["mrr_end"] == 8000
    assert enterprise["customer_churn_rate"] == Decimal("1")
    assert enterprise["quick_ratio"] == Decimal("1.6")
    mid = rows[("2024-02", "Mid-Market")]  # c5 alone, steady at 8500
    assert (mid["mrr_start"], mid["mrr_end"], mid["customers_end"]) == (8500, 8500, 1)
    assert mid["mrr_growth"] == Decimal("0")
    none = rows[("2024-02", "(none)")]  # c6 joins and churns within February
    assert (none["new_mrr"], none["churned_mrr"], none["customers_start"]) == (4000, 4000, 0)
    assert none["customer_churn_rate"] is None
    assert none["arpa"] is None


def test_attribute_and_currency_groups(engine: Engine) -> None:
    ingest_mixed(engine)
    venue = grouped(metrics(engine, "2024-04", "2024-04", by="attr.vertical"))
    assert venue[("2024-04", "venue")]["mrr_end"] == 15500  # c2 7000 + c5 8500
    assert venue[("2024-04", "photographer")]["mrr_end"] == 0
    assert venue[("2024-04", "(none)")]["mrr_end"] == 8000  # c4
    currency = grouped(metrics(engine, "2024-01", "2024-01", by="currency"))
    assert currency[("2024-01", "EUR")]["new_mrr"] == 8500
    assert currency[("2024-01", "GBP")]["mrr_end"] == 22000


def test_unknown_attribute_puts_everyone_in_none(engine: Engine) -> None:
    ingest_mixed(engine)
    rows = metrics(engine, "2024-01", "2024-01", by="attr.shoe_size")
    assert [(r["group"], r["mrr_end"], r["customers_end"]) for r in rows] == [("(none)", 30500, 3)]


@pytest.mark.parametrize("by", ["planet", "attr.", "attr", "segments", ""])
def test_unknown_breakdown_is_an_error(engine: Engine, by: str) -> None:
    with pytest.raises(BreakdownError) as raised:
        metrics(engine, "2024-01", "2024-02", by=by)
    assert repr(by) in str(raised.value)


def test_tier_breakdown_counts_a_customer_on_two_tiers_in_both(engine: Engine) -> None:
    ingest_mixed(engine)
    rows = grouped(metrics(engine, "2024-01", "2024-04", by="tier"))
    assert {group for _, group in rows} == {"Pro", "Scale", "Starter", "(none)"}

    def figures(period: str, group: str) -> tuple[int, int, int, int, int]:
        row = rows[(period, group)]
        return (
            row["mrr_start"],
            row["mrr_end"],
            row["arr"],
            row["customers_start"],
            row["customers_end"],
        )

    # At 1 Jan: c1 Pro 10000, c3 Pro 3000. At 1 Feb: c2 Pro 5000 and Starter 2000,
    # c1 Scale 15000, c5 (no tier) 8500.
    assert figures("2024-01", "Pro") == (13000, 5000, 60000, 2, 1)
    assert figures("2024-01", "Scale") == (0, 15000, 180000, 0, 1)
    assert figures("2024-01", "Starter") == (0, 2000, 24000, 0, 1)
    assert figures("2024-01", "(none)") == (0, 8500, 102000, 0, 1)
    # c2 counts in Pro and in Starter: four customer counts for three paying customers.
    assert (
        sum(rows[("2024-02", g)]["customers_start"] for g in ("Pro", "Scale", "Starter", "(none)"))
        == 4
    )
    # c2's cancellation at 00:00 on 1 March is in March: it still pays at February's end.
    assert figures("2024-02", "Pro") == (5000, 5000, 60000, 1, 1)
    assert figures("2024-02", "Starter") == (2000, 0, 0, 1, 0)
    assert figures("2024-03", "Scale") == (12000, 8000, 96000, 1, 1)  # c1 out, c4 in
    assert figures("2024-04", "Pro") == (0, 7000, 84000, 0, 1)
    for period in ("2024-01", "2024-02", "2024-03", "2024-04"):
        total = metrics(engine, period, period)[0]
        assert (
            sum(rows[(period, g)]["mrr_end"] for g in ("Pro", "Scale", "Starter", "(none)"))
            == total["mrr_end"]
        )


def test_plan_breakdown_splits_mrr_by_plan(engine: Engine) -> None:
    ingest_mixed(engine)
    rows = grouped(metrics(engine, "2024-01", "2024-01", by="plan"))
    assert {group for _, group in rows} == {"pro-m", "pro-y", "scale-m", "starter-m", "pro-m-eur"}
    assert (rows[("2024-01", "pro-m")]["mrr_start"], rows[("2024-01", "pro-m")]["mrr_end"]) == (
        10000,
        5000,
    )
    assert (rows[("2024-01", "pro-y")]["mrr_start"], rows[("2024-01", "pro-y")]["mrr_end"]) == (
        3000,
        0,
    )
    assert rows[("2024-01", "pro-y")]["customers_end"] == 0
    assert rows[("2024-01", "pro-m-eur")]["arr"] == 102000
    assert sum(row["mrr_end"] for row in rows.values()) == 30500
