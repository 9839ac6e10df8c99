"""Data quality scores: each dimension's checks, their failing rows, and the scores."""

from __future__ import annotations

import json
import statistics

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, update
from tests.builders import ingest, start
from typer.testing import CliRunner

from execmetrics.analytics.quality import (
    Check,
    QualityReport,
    _weighted_median,
    quality_report,
)
from execmetrics.cli import app as cli
from execmetrics.store.tables import mrr_movements, support_tickets
from execmetrics.timeutil import parse_timestamp

NOW = parse_timestamp("2024-06-01T00:00:00Z")
DAY = 86_400_000_000


def company(engine: Engine) -> None:
    events = [
        start(f"e{i}", f"c{i}", f"s{i}", f"2024-05-{10 + i}T00:00:00Z", 10_000, plan="pro-m")
        for i in range(9)
    ] + [start("e9", "c9", "s9", "2024-05-30T00:00:00Z", 990_000, plan="pro-m")]  # 99 times
    customers = [{"customer_id": f"c{i}", "country": "GB" if i % 2 else None} for i in range(10)]
    tickets = [
        {"ticket_id": "t1", "customer_id": "c1", "opened_at": "2024-05-20T10:00:00Z",
         "closed_at": "2024-05-20T09:00:00Z", "priority": "high", "category": "bug"},
        {"ticket_id": "t2", "customer_id": "c2", "opened_at": "2024-05-21T10:00:00Z",
         "priority": "low"},
    ]  # fmt: skip
    ingest(engine, customers=customers, events=events, tickets=tickets)


def by_name(
    engine: Engine, now: int = NOW, freshness: int = 2 * DAY
) -> tuple[QualityReport, dict[str, Check]]:
    with engine.connect() as connection:
        report = quality_report(connection, now, freshness)
    return report, {f"{c.dataset}/{c.name}": c for c in report.checks}


def test_an_amount_is_judged_per_seat_against_its_own_plan_and_billing_interval(
    engine: Engine,
) -> None:
    """Each group's median is the mean of its middle two when it has an even count; a price
    is per seat; another billing interval of the same plan is a group of its own."""
    at = "2024-05-10T00:00:00Z"
    events = [
        start("a1", "c1", "s1", at, 1_000, plan="team"),
        start("a2", "c2", "s2", at, 2_000, plan="team"),
        start("a3", "c3", "s3", at, 3_000, plan="team"),
        start("a4", "c4", "s4", at, 5_000, plan="team"),  # median (2,000 + 3,000) / 2 = 2,500
        start("a5", "c5", "s5", at, 250, plan="team"),  # a tenth of it: within
        start("a6", "c6", "s6", at, 249, plan="team"),  # below a tenth
        start("a7", "c7", "s7", at, 250_000, plan="team", quantity=10),  # 25,000 a seat: within
        start("a8", "c8", "s8", at, 250_001, plan="team", quantity=10),  # beyond ten times
        start("b1", "c9", "s9", at, 90_000, plan="team", interval_count=3),  # a group of its own
        start("b2", "c10", "s10", at, 30_000, plan="team", interval="year"),
    ]  # fmt: skip
    ingest(engine, events=events)
    _, checks = by_name(engine)
    odd = checks["subscription_events/amount within its plan's norm"]
    assert (odd.total, odd.failing, odd.examples) == (10, 2, ["a6", "a8"])


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 4)), min_size=1, max_size=8))
def test_the_median_of_counted_prices_is_that_of_the_prices_written_out(
    counted: list[tuple[int, int]],
) -> None:
    prices = [(price * 12.5, n) for price, n in counted]
    written_out = [price for price, n in prices for _ in range(n)]
    assert _weighted_median(prices) == statistics.median(written_out)


def test_each_check_names_its_failing_rows_and_scores_the_share_that_pass(engine: Engine) -> None:
    company(engine)
    report, checks = by_name(engine)
    country = checks["customers/country given"]
    assert (country.total, country.failing, country.score) == (10, 5, 50.0)
    assert country.examples == ["c0", "c2", "c4", "c6", "c8"]
    odd = checks["subscription_events/amount within its plan's norm"]
    assert (odd.failing, odd.examples) == (1, ["e9"])
    backwards = checks["support_tickets/closed after opened"]
    assert (backwards.failing, backwards.examples) == (1, ["t1"])
    assert checks["support_tickets/category given"].examples == ["t2"]
    assert checks["ledger/movements chain"].failing == 0
    assert checks["ledger/MRR agrees with the subscriptions"].failing == 0
    fresh = checks["subscription_events/fresh"]
    assert fresh.score == 100.0  # two days old, the limit
    assert report.datasets["support_tickets"]["dimensions"]["validity"] == 50.0
    assert 0 < report.overall < 100


def test_staleness_lowers_timeliness_to_zero_at_twice_the_limit(engine: Engine) -> None:
    company(engine)
    _, checks = by_name(engine, NOW + DAY)  # three days after the newest event
    assert checks["subscription_events/fresh"].score == 50.0
    _, checks = by_name(engine, NOW + 10 * DAY)
    assert checks["subscription_events/fresh"].score == 0.0
    # Events after the moment of the report are invalid, and not counted as fresh.
    _, checks = by_name(engine, parse_timestamp("2024-05-15T12:00:00Z"))
    future = checks["subscription_events/not in the future"]
    assert future.examples == ["e6", "e7", "e8", "e9"] and future.total == 10


def test_a_ledger_that_does_not_reconcile_is_found(engine: Engine) -> None:
    company(engine)
    with engine.begin() as connection:
        connection.execute(update(mrr_movements).where(mrr_movements.c.id == 3).values(mrr_after=1))
        connection.execute(update(support_tickets).values(category=None))
    _, checks = by_name(engine)
    mismatch = checks["ledger/MRR agrees with the subscriptions"]
    assert mismatch.failing == 1 and mismatch.examples == ["c2"]
    assert checks["support_tickets/category given"].score == 0.0


def test_the_command_prints_the_report(engine: Engine) -> None:
    company(engine)
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(cli, ["quality", "--format", "json", "--db", url])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert set(document["datasets"]) == {
        "customers", "subscription_events", "support_tickets", "ledger"
    }  # fmt: skip
    assert {"dataset", "dimension", "check", "score", "total", "failing", "examples"} <= set(
        document["checks"][0]
    )
    bad = CliRunner().invoke(cli, ["quality", "--freshness", "soon", "--db", url])
    assert bad.exit_code == 2 and "--freshness: expected a duration" in bad.output
