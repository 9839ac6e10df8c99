"""compute_metrics end to end: published cases, identities, ratios, growth, retention, LTV, CAC."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine
from tests.builders import cancel, change, customer, fx, ingest, metrics, spend, start
from tests.metrics.scenarios import ingest_mixed, steady_churn_events

from execmetrics.settings_store import set_setting

D = Decimal


def by_period(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    assert all(row["group"] is None for row in rows)
    return {row["period"]: row for row in rows}


def set_gross_margin(engine: Engine, value: str) -> None:
    with engine.begin() as connection:
        set_setting(connection, "gross_margin", value, database_is_empty=False)


# --- published cases -------------------------------------------------------------------------


def test_published_mrr_of_100_monthly_and_50_annual_customers(engine: Engine) -> None:
    events = [start(f"m{i}", f"m{i}", f"m{i}-s", "2024-01-05T10:00:00Z", 10000) for i in range(100)]
    events += [
        start(
            f"y{i}",
            f"y{i}",
            f"y{i}-s",
            "2024-01-06T10:00:00Z",
            60000,
            interval="year",
            plan="pro-annual",
        )
        for i in range(50)
    ]
    ingest(engine, events=events)
    [jan, feb] = metrics(engine, "2024-01", "2024-02")
    assert jan["mrr_start"] == 0
    assert jan["mrr_end"] == 1250000
    assert jan["arr"] == 15000000
    assert jan["new_mrr"] == 1250000
    assert jan["new_customers"] == 150
    assert jan["customers_end"] == 150
    assert jan["arpa"] == 8333  # 1250000 / 150 = 8333.33
    assert feb["mrr_start"] == 1250000 and feb["mrr_end"] == 1250000
    assert feb["arr"] == 15000000


def test_published_customer_churn_rate_excludes_a_customer_who_joined_that_month(
    engine: Engine,
) -> None:
    events = [
        start(f"s{i}", f"c{i:03d}", f"c{i}-s", "2023-12-01T00:00:00Z", 1000) for i in range(100)
    ]
    events += [
        cancel(f"x{i}", f"c{i:03d}", f"c{i}-s", f"2024-01-{10 + i}T12:00:00Z") for i in range(10)
    ]
    events += [
        start("late-1", "late", "late-s", "2024-01-05T00:00:00Z", 1000),
        cancel("late-2", "late", "late-s", "2024-01-25T00:00:00Z"),
    ]
    ingest(engine, events=events)
    [jan] = metrics(engine, "2024-01", "2024-01")
    assert jan["customers_start"] == 100
    assert jan["churned_customers"] == 11
    assert jan["customer_churn_rate"] == D("0.1")
    assert jan["new_customers"] == 1
    assert jan["churned_mrr"] == 11000
    assert jan["customers_end"] == 90


def test_published_gross_and_net_mrr_churn(engine: Engine) -> None:
    ingest(
        engine,
        events=[
            start("a1", "a", "a-s", "2023-12-01T00:00:00Z", 1000),
            start("b1", "b", "b-s", "2023-12-01T00:00:00Z", 2000),
            start("c1", "c", "c-s", "2023-12-01T00:00:00Z", 3000),
            start("d1", "d", "d-s", "2023-12-01T00:00:00Z", 4000),
            cancel("a2", "a", "a-s", "2024-01-10T00:00:00Z"),  # churn 1000
            change("b2", "b", "b-s", "2024-01-11T00:00:00Z", 1000),  # contraction 1000
            change("c2", "c", "c-s", "2024-01-12T00:00:00Z", 4000),  # expansion 1000
        ],
    )
    [jan] = metrics(engine, "2024-01", "2024-01")
    assert jan["mrr_start"] == 10000
    assert (jan["churned_mrr"], jan["contraction_mrr"], jan["expansion_mrr"]) == (1000, 1000, 1000)
    assert jan["gross_mrr_churn_rate"] == D("0.2")
    assert jan["net_mrr_churn_rate"] == D("0.1")
    assert jan["grr"] == D("0.8")
    assert jan["nrr"] == D("0.9")
    assert jan["quick_ratio"] == D("0.5")  # 1000 / (1000 + 1000)


def test_published_ltv_from_arpa_and_six_period_mean_churn(engine: Engine) -> None:
    ingest(engine, events=steady_churn_events())
    rows = by_period(metrics(engine, "2024-01", "2024-08"))
    assert [rows[f"2024-0{m}"]["customer_churn_rate"] for m in range(1, 7)] == [
        D("0.1"),
        D("0"),
        D("0.05"),
        D("0.05"),
        D("0.05"),
        D("0.05"),
    ]
    assert all(rows[f"2024-0{m}"]["customers_start"] == 20 for m in range(1, 8))
    july = rows["2024-07"]
    assert july["arpa"] == 10000
    assert july["ltv"] == 200000  # 10000 x 1.0 / 0.05
    # August: ARPA 10000, churn history Feb-Jul 0, .05, .05, .05, .05, .05: mean 1/24.
    assert rows["2024-08"]["ltv"] == 240000
    # June's history includes December 2023, which had no customers at its start.
    assert rows["2024-06"]["ltv"] is None
    assert rows["2024-01"]["ltv"] is None


def test_ltv_is_null_when_one_of_the_six_periods_had_no_customers(engine: Engine) -> None:
    events = steady_churn_events()
    # Move every December start to 2 January: January now starts with no customers.
    for row in events:
        if row["occurred_at"] == "2023-12-01T00:00:00Z":
            row["occurred_at"] = "2024-01-01T00:00:00Z"
    ingest(engine, events=events)
    rows = by_period(metrics(engine, "2024-07", "2024-08"))
    assert rows["2024-07"]["arpa"] == 10000
    assert rows["2024-07"]["ltv"] is None
    assert rows["2024-08"]["ltv"] == 240000


def test_ltv_is_null_when_the_mean_churn_is_zero(engine: Engine) -> None:
    ingest(
        engine,
        events=[
            start(f"s{i}", f"c{i}", f"c{i}-s", "2023-06-01T00:00:00Z", 10000) for i in range(3)
        ],
    )
    [row] = metrics(engine, "2024-01", "2024-01")
    assert row["arpa"] == 10000
    assert row["customer_churn_rate"] == D("0")
    assert row["ltv"] is None


def test_ltv_uses_the_gross_margin_setting(engine: Engine) -> None:
    ingest(engine, events=steady_churn_events())
    set_gross_margin(engine, "0.8")
    [july] = metrics(engine, "2024-07", "2024-07")
    assert july["ltv"] == 160000  # 10000 x 0.8 / 0.05


# --- a non-trivial company: every field by hand, and the identities ---------------------------

MIXED_EXPECTED: dict[str, dict[str, Any]] = {
    "2024-01": {
        "mrr_start": 13000,
        "mrr_end": 30500,
        "new_mrr": 13500,
        "expansion_mrr": 7000,
        "reactivation_mrr": 3000,
        "contraction_mrr": 0,
        "churned_mrr": 6000,
        "net_new_mrr": 17500,
        "arr": 366000,
        "customers_start": 2,
        "customers_end": 3,
        "new_customers": 2,
        "reactivated_customers": 1,
        "churned_customers": 2,
        "arpa": 10167,
        "customer_churn_rate": D("0.5"),
        "gross_mrr_churn_rate": D("0.461538"),
        "net_mrr_churn_rate": D("-0.307692"),
        "grr": D("0.538462"),
        "nrr": D("1.307692"),
        "quick_ratio": D("3.916667"),
        "mrr_growth": D("1.346154"),
    },
    "2024-02": {
        "mrr_start": 30500,
        "mrr_end": 25500,
        "new_mrr": 4000,
        "expansion_mrr": 0,
        "reactivation_mrr": 0,
        "contraction_mrr": 5000,
        "churned_mrr": 4000,
        "net_new_mrr": -5000,
        "arr": 306000,
        "customers_start": 3,
        "customers_end": 3,
        "new_customers": 1,
        "reactivated_customers": 0,
        "churned_customers": 1,
        "arpa": 8500,
        "customer_churn_rate": D("0"),
        "gross_mrr_churn_rate": D("0.295082"),
        "net_mrr_churn_rate": D("0.295082"),
        "grr": D("0.704918"),
        "nrr": D("0.704918"),
        "quick_ratio": D("0.444444"),
        "mrr_growth": D("-0.163934"),
    },
    "2024-03": {
        "mrr_start": 25500,
        "mrr_end": 16500,
        "new_mrr": 8000,
        "expansion_mrr": 0,
        "reactivation_mrr": 0,
        "contraction_mrr": 0,
        "churned_mrr": 17000,
        "net_new_mrr": -9000,
        "arr": 198000,
        "customers_start": 3,
        "customers_end": 2,
        "new_customers": 1,
        "reactivated_customers": 0,
        "churned_customers": 2,
        "arpa": 8250,
        "customer_churn_rate": D("0.666667"),
        "gross_mrr_churn_rate": D("0.666667"),
        "net_mrr_churn_rate": D("0.666667"),
        "grr": D("0.333333"),
        "nrr": D("0.333333"),
        "quick_ratio": D("0.470588"),
        "mrr_growth": D("-0.352941"),
    },
    "2024-04": {
        "mrr_start": 16500,
        "mrr_end": 23500,
        "new_mrr": 0,
        "expansion_mrr": 0,
        "reactivation_mrr": 7000,
        "contraction_mrr": 0,
        "churned_mrr": 0,
        "net_new_mrr": 7000,
        "arr": 282000,
        "customers_start": 2,
        "customers_end": 3,
        "new_customers": 0,
        "reactivated_customers": 1,
        "churned_customers": 0,
        "arpa": 7833,
        "customer_churn_rate": D("0"),
        "gross_mrr_churn_rate": D("0"),
        "net_mrr_churn_rate": D("-0.424242"),
        "grr": D("1"),
        "nrr": D("1.424242"),
        "quick_ratio": None,
        "mrr_growth": D("0.424242"),
    },
}


def test_every_field_of_a_mixed_company_by_hand(engine: Engine) -> None:
    ingest_mixed(engine)
    rows = by_period(metrics(engine, "2024-01", "2024-04"))
    assert list(rows) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    for period, expected in MIXED_EXPECTED.items():
        actual = {name: rows[period][name] for name in expected}
        assert actual == expected, period
        # No one paid twelve months earlier, nor a year before: these have no denominator.
        assert rows[period]["nrr_12m"] is None
        assert rows[period]["grr_12m"] is None
        assert rows[period]["mrr_growth_yoy"] is None
        assert rows[period]["ltv"] is None


@pytest.mark.parametrize(
    ("interval", "tz", "first", "last"),
    [
        ("month", "UTC", "2023-10", "2024-06"),
        ("month", "Europe/London", "2023-10", "2024-06"),
        ("week", "America/New_York", "2023-W50", "2024-W16"),
        ("quarter", "Asia/Tokyo", "2023-Q3", "2024-Q3"),
    ],
)
def test_identities_hold_in_every_period(
    engine: Engine, interval: str, tz: str, first: str, last: str
) -> None:
    ingest_mixed(engine)
    rows = metrics(engine, first, last, interval=interval, tz=tz)
    assert len(rows) >= 4
    # Every new movement is counted once whatever the periods (c3 Nov, c1 Dec, then 2024).
    opening_new = 13000 if rows[0]["mrr_start"] else 0
    assert sum(row["new_mrr"] for row in rows) + opening_new == 3000 + 10000 + 13500 + 4000 + 8000
    for row in rows:
        assert row["net_new_mrr"] == (
            row["new_mrr"]
            + row["expansion_mrr"]
            + row["reactivation_mrr"]
            - row["contraction_mrr"]
            - row["churned_mrr"]
        )
        assert row["net_new_mrr"] == row["mrr_end"] - row["mrr_start"]
        assert row["customers_end"] == (
            row["customers_start"]
            + row["new_customers"]
            + row["reactivated_customers"]
            - row["churned_customers"]
        )
        assert row["arr"] == 12 * row["mrr_end"]
    for previous, row in itertools.pairwise(rows):
        assert row["mrr_start"] == previous["mrr_end"]
        assert row["customers_start"] == previous["customers_end"]
    assert rows[0]["mrr_start"] == 0 or interval == "week"
    assert rows[-1]["mrr_end"] == 23500 and rows[-1]["customers_end"] == 3


def test_churn_rate_counts_a_customer_who_churns_twice_once_and_ignores_a_same_period_joiner(
    engine: Engine,
) -> None:
    events = [start(f"s{i}", f"c{i}", f"c{i}-s", "2023-12-01T00:00:00Z", 1000) for i in range(4)]
    events += [
        cancel("p1", "c0", "c0-s", "2024-01-05T00:00:00Z"),
        start("p2", "c0", "c0-s2", "2024-01-10T00:00:00Z", 1000),
        cancel("p3", "c0", "c0-s2", "2024-01-15T00:00:00Z"),
        start("q1", "joiner", "q-s", "2024-01-03T00:00:00Z", 500),
        cancel("q2", "joiner", "q-s", "2024-01-20T00:00:00Z"),
    ]
    ingest(engine, events=events)
    [jan] = metrics(engine, "2024-01", "2024-01")
    assert jan["customers_start"] == 4
    assert jan["customer_churn_rate"] == D("0.25")
    assert jan["churned_customers"] == 3  # churn movements: c0 twice, the joiner once
    assert jan["reactivated_customers"] == 1
    assert jan["customers_end"] == 3
    assert jan["churned_mrr"] == 2500


def test_movements_at_the_same_instant_are_netted_for_a_customer(engine: Engine) -> None:
    ingest(
        engine,
        events=[
            start("a1", "a", "a-s1", "2023-12-01T00:00:00Z", 3000),
            # Swap plans at one instant: one movement, an expansion of 1000.
            cancel("a2", "a", "a-s1", "2024-01-10T00:00:00Z"),
            start("a3", "a", "a-s2", "2024-01-10T00:00:00Z", 4000),
        ],
    )
    [jan] = metrics(engine, "2024-01", "2024-01")
    assert (jan["expansion_mrr"], jan["churned_mrr"], jan["new_mrr"]) == (1000, 0, 0)
    assert jan["churned_customers"] == 0 and jan["customer_churn_rate"] == D("0")


# --- zero denominators -----------------------------------------------------------------------


def test_ratios_with_a_zero_denominator_are_null(engine: Engine) -> None:
    ingest(
        engine,
        events=[
            start("a1", "a", "a-s", "2024-01-10T00:00:00Z", 5000),
            cancel("a2", "a", "a-s", "2024-02-10T00:00:00Z"),
        ],
    )
    rows = by_period(metrics(engine, "2023-12", "2024-03"))
    empty, jan, feb, mar = (rows[p] for p in ("2023-12", "2024-01", "2024-02", "2024-03"))
    # No customers at all.
    for row in (empty, mar):
        assert row["customers_end"] == 0
        for name in (
            "arpa",
            "customer_churn_rate",
            "gross_mrr_churn_rate",
            "net_mrr_churn_rate",
            "grr",
            "nrr",
            "quick_ratio",
            "ltv",
            "cac",
            "ltv_to_cac",
            "cac_payback_months",
            "mrr_growth",
            "nrr_12m",
            "grr_12m",
            "mrr_growth_yoy",
        ):
            assert row[name] is None, name
    # Growth from nothing and no customers at the start: no denominators.
    assert jan["customers_start"] == 0 and jan["mrr_start"] == 0
    for name in (
        "customer_churn_rate",
        "gross_mrr_churn_rate",
        "net_mrr_churn_rate",
        "grr",
        "nrr",
        "mrr_growth",
    ):
        assert jan[name] is None, name
    assert jan["quick_ratio"] is None  # 5000 new, no losses
    assert jan["arpa"] == 5000
    # February: the only customer churns; ARPA has no customers to divide by.
    assert feb["customer_churn_rate"] == D("1")
    assert feb["gross_mrr_churn_rate"] == D("1") and feb["grr"] == D("0")
    assert feb["quick_ratio"] == D("0")
    assert feb["arpa"] is None
    assert feb["mrr_growth"] == D("-1")
    # March: mrr_end 0 in February, so growth has no denominator.
    assert mar["mrr_growth"] is None


# --- growth ----------------------------------------------------------------------------------


def growth_company(engine: Engine) -> None:
    """mrr_end: Jan 2023 10000, Jun-Dec 2023 15000, Jan 2024 20000."""
    ingest(
        engine,
        events=[
            start("x1", "x", "x-s", "2023-01-15T00:00:00Z", 10000),
            start("y1", "y", "y-s", "2023-06-10T00:00:00Z", 5000),
            change("x2", "x", "x-s", "2024-01-10T00:00:00Z", 15000),
        ],
    )


def test_mrr_growth_and_year_on_year_growth_by_month(engine: Engine) -> None:
    growth_company(engine)
    rows = by_period(metrics(engine, "2023-01", "2024-01"))
    assert rows["2023-01"]["mrr_growth"] is None
    assert rows["2023-01"]["mrr_growth_yoy"] is None
    assert rows["2023-02"]["mrr_growth"] == D("0")
    assert rows["2023-06"]["mrr_growth"] == D("0.5")
    assert rows["2023-12"]["mrr_growth_yoy"] is None  # Dec 2022 had no MRR
    assert rows["2024-01"]["mrr_growth"] == D("0.333333")  # 20000 against 15000
    assert rows["2024-01"]["mrr_growth_yoy"] == D("1")  # 20000 against 10000
    # Asking for January 2024 alone still reaches back a year.
    [alone] = metrics(engine, "2024-01", "2024-01")
    assert alone["mrr_growth_yoy"] == D("1")
    assert alone["mrr_growth"] == D("0.333333")


def test_mrr_growth_by_quarter_and_year(engine: Engine) -> None:
    growth_company(engine)
    [q1] = metrics(engine, "2024-Q1", "2024-Q1", interval="quarter")
    assert q1["period"] == "2024-Q1"
    assert q1["mrr_growth"] == D("0.333333")  # 2023-Q4 15000
    assert q1["mrr_growth_yoy"] == D("1")  # 2023-Q1 10000
    [y2024] = metrics(engine, "2024", "2024", interval="year")
    assert y2024["period"] == "2024"
    assert y2024["mrr_growth"] == D("0.333333")
    assert y2024["mrr_growth_yoy"] == D("0.333333")


# --- 12-month retention ----------------------------------------------------------------------


def test_nrr_12m_and_grr_12m(engine: Engine) -> None:
    ingest(
        engine,
        events=[
            start("a1", "a", "a-s", "2023-06-10T00:00:00Z", 1000),
            change("a2", "a", "a-s", "2024-05-10T00:00:00Z", 2500),  # expansion
            start("b1", "b", "b-s", "2023-06-10T00:00:00Z", 2000),
            change("b2", "b", "b-s", "2024-03-10T00:00:00Z", 1000),  # contraction
            start("c1", "c", "c-s", "2023-06-10T00:00:00Z", 3000),
            cancel("c2", "c", "c-s", "2024-04-10T00:00:00Z"),
            start("c3", "c", "c-s", "2024-08-10T00:00:00Z", 4000),  # back, above its old MRR
            start("d1", "d", "d-s", "2023-06-10T00:00:00Z", 500),
            cancel("d2", "d", "d-s", "2024-02-10T00:00:00Z"),  # gone
            start("e1", "e", "e-s", "2024-03-10T00:00:00Z", 9999),  # joined within the 12 months
            start("f1", "f", "f-s", "2024-01-01T00:00:00Z", 7777),  # joined exactly at e - 12m
        ],
    )
    rows = by_period(metrics(engine, "2024-01", "2024-12"))
    # Period 2024-12: customers paying at 2024-01-01 were a 1000, b 2000, c 3000, d 500 (6500).
    # Now: a 2500, b 1000, c 4000, d 0 = 7500; capped: 1000, 1000, 3000, 0 = 5000.
    assert rows["2024-12"]["nrr_12m"] == D("1.153846")
    assert rows["2024-12"]["grr_12m"] == D("0.769231")
    # Period 2024-06 (then 2023-07-01): now a 2500, b 1000, c 0, d 0; capped 1000+1000.
    assert rows["2024-06"]["nrr_12m"] == D("0.538462")
    assert rows["2024-06"]["grr_12m"] == D("0.307692")
    # Period 2024-01 looks back to 2023-02-01, when no one paid.
    assert rows["2024-01"]["nrr_12m"] is None
    assert rows["2024-01"]["grr_12m"] is None


def test_grr_12m_never_exceeds_one_while_nrr_12m_does(engine: Engine) -> None:
    ingest(
        engine,
        events=[
            start("a1", "a", "a-s", "2022-12-10T00:00:00Z", 1000),
            change("a2", "a", "a-s", "2023-09-10T00:00:00Z", 3000),
        ],
    )
    [dec] = metrics(engine, "2023-12", "2023-12")
    assert dec["nrr_12m"] == D("3")
    assert dec["grr_12m"] == D("1")


# --- CAC -------------------------------------------------------------------------------------


def cac_company(engine: Engine, extra_spend: list[dict[str, Any]] | None = None) -> None:
    """The steady-churn company (July ARPA 10000, LTV history mean 0.05) with two July joiners:
    n070 from google_ads/winter and n071 from instagram/reels; b19 came from referral."""
    ingest(
        engine,
        customers=[
            customer(
                "n070",
                acquisition_source="google_ads",
                acquisition_campaign="winter",
                segment="SMB",
            ),
            customer(
                "n071",
                acquisition_source="instagram",
                acquisition_campaign="reels",
                segment="Enterprise",
            ),
            customer("b19", acquisition_source="referral", segment="SMB"),
        ],
        events=steady_churn_events(target_new=2),
        fx_rates=[
            fx("2024-06-20", "EUR", "0.8"),
            fx("2024-07-02", "EUR", "0.9"),
            fx("2024-06-01", "JPY", "0.005"),
            fx("2024-07-05", "JPY", "0.006"),
        ],
        marketing_spend=[
            spend("2024-06", "google_ads", 5000, campaign="winter"),
            spend("2024-07", "google_ads", 30000, campaign="winter"),
            spend("2024-07", "instagram", 10000, currency="EUR", campaign="reels"),
            spend("2024-07", "referral", 2002, currency="JPY"),
            *(extra_spend or []),
        ],
    )


def test_cac_converts_spend_at_the_rate_on_the_periods_first_day(engine: Engine) -> None:
    cac_company(engine)
    set_gross_margin(engine, "0.8")
    rows = by_period(metrics(engine, "2024-06", "2024-07"))
    june, july = rows["2024-06"], rows["2024-07"]
    # June: 5000 on one new customer; ARPA 10000 x margin 0.8.
    assert june["new_customers"] == 1
    assert june["marketing_spend"] == 5000
    assert june["cac"] == 5000
    assert june["cac_payback_months"] == D("0.625")
    assert june["ltv_to_cac"] is None  # June has no LTV (December had no customers)
    # July: GBP 30000 + EUR 10000 at 0.8, the rate in force on 1 July (8000) + JPY 2002 at
    # 0.005 (1001 pence) = 39001 on two new customers: 19500.5, rounded half up.
    assert july["new_customers"] == 2
    assert july["arpa"] == 10000
    assert july["ltv"] == 160000
    assert july["marketing_spend"] == 39001
    assert july["cac"] == 19501
    assert july["ltv_to_cac"] == D("8.204707")  # 160000 / 19501
    assert july["cac_payback_months"] == D("2.437625")  # 19501 / (10000 x 0.8)


def test_cac_split_by_source_and_campaign(engine: Engine) -> None:
    cac_company(engine)
    set_gross_margin(engine, "0.8")
    rows = {r["group"]: r for r in metrics(engine, "2024-07", "2024-07", by="source")}
    assert set(rows) == {"google_ads", "instagram", "referral", "(none)"}
    assert rows["google_ads"]["marketing_spend"] == 30000
    assert rows["google_ads"]["new_customers"] == 1
    assert rows["google_ads"]["cac"] == 30000
    assert rows["google_ads"]["cac_payback_months"] == D("3.75")
    assert rows["instagram"]["marketing_spend"] == 8000
    assert rows["instagram"]["cac"] == 8000
    assert rows["instagram"]["cac_payback_months"] == D("1")
    assert rows["referral"]["marketing_spend"] == 1001
    assert rows["referral"]["new_customers"] == 0
    assert rows["referral"]["cac"] is None
    assert rows["(none)"]["marketing_spend"] == 0
    assert sum(r["marketing_spend"] for r in rows.values()) == 39001
    campaigns = {r["group"]: r for r in metrics(engine, "2024-07", "2024-07", by="campaign")}
    assert set(campaigns) == {"winter", "reels", "(none)"}
    assert campaigns["winter"]["marketing_spend"] == 30000
    assert campaigns["winter"]["cac"] == 30000
    assert campaigns["reels"]["cac"] == 8000
    assert campaigns["(none)"]["marketing_spend"] == 1001
    assert campaigns["(none)"]["cac"] is None


def test_cac_is_null_under_a_breakdown_that_does_not_split_spend(engine: Engine) -> None:
    cac_company(engine)
    rows = metrics(engine, "2024-07", "2024-07", by="segment")
    assert {r["group"] for r in rows} == {"SMB", "Enterprise", "(none)"}
    assert sum(r["new_customers"] for r in rows) == 2
    for row in rows:
        assert row["cac"] is None
        assert row["ltv_to_cac"] is None
        assert row["cac_payback_months"] is None


def test_spend_on_a_source_that_won_no_customers_still_counts_under_by_source(
    engine: Engine,
) -> None:
    cac_company(engine, extra_spend=[spend("2024-07", "wedding_fair", 999)])
    [total] = metrics(engine, "2024-07", "2024-07")
    assert total["marketing_spend"] == 40000
    rows = {r["group"]: r for r in metrics(engine, "2024-07", "2024-07", by="source")}
    assert sum(r["marketing_spend"] for r in rows.values()) == 40000
    assert rows["wedding_fair"]["marketing_spend"] == 999
    assert rows["wedding_fair"]["cac"] is None


def test_quarterly_cac_converts_every_month_at_the_quarters_first_day(engine: Engine) -> None:
    cac_company(
        engine, extra_spend=[spend("2024-08", "instagram", 1000, currency="EUR", campaign="reels")]
    )
    [q2, q3] = metrics(engine, "2024-Q2", "2024-Q3", interval="quarter")
    # Q2: June's 5000 on the April, May and June joiners (one each).
    assert (q2["marketing_spend"], q2["new_customers"], q2["cac"]) == (5000, 3, 1667)
    # Q3: July's 39001 + August's EUR 1000 at the 1 July rate 0.8 (not 0.9): 39801 on 2.
    assert q3["marketing_spend"] == 39801
    assert q3["new_customers"] == 2
    assert q3["cac"] == 19901


def test_spend_on_a_campaign_that_won_no_customers_still_counts_under_by_campaign(
    engine: Engine,
) -> None:
    cac_company(engine, extra_spend=[spend("2024-07", "google_ads", 500, campaign="spring")])
    [total] = metrics(engine, "2024-07", "2024-07")
    assert total["marketing_spend"] == 39501
    rows = {r["group"]: r for r in metrics(engine, "2024-07", "2024-07", by="campaign")}
    assert sum(r["marketing_spend"] for r in rows.values()) == 39501
    assert rows["spring"]["marketing_spend"] == 500
    assert rows["spring"]["new_customers"] == 0
    assert rows["spring"]["cac"] is None
