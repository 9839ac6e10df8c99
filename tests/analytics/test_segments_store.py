"""Segmentations stored by the daily analytics job and read back: the summary as the command
computes it, every customer's segment paged, once a day unless forced, old assignments
dropped, and too few customers recorded without stopping the churn scores."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Connection, Engine, func, select
from tests.analytics.test_churn_features import AS_OF as FEW_CUSTOMERS_AS_OF
from tests.analytics.test_churn_features import company as company
from tests.analytics.test_segments_company import AS_OF, kind_of, population
from typer.testing import CliRunner

from execmetrics.analytics.churn_features import churn_features
from execmetrics.analytics.churn_weights import DEFAULT_WEIGHTS
from execmetrics.analytics.company_segments import company_segments
from execmetrics.analytics.jobs import DailyReport, run_daily_analytics
from execmetrics.analytics.segments import (
    AT_RISK,
    CANONICAL_NAMES,
    INACTIVE,
    NEW,
    POWER_USERS,
    STEADY,
    segmentation_document,
)
from execmetrics.analytics.segments_store import (
    ASSIGNMENT_DAYS,
    latest_attempt,
    latest_segmentation,
    run_assignments,
    save_segmentation,
    segmented_on,
    why_none_yet,
)
from execmetrics.cli import app as cli
from execmetrics.demo import DemoSpec, write_demo
from execmetrics.ingest.service import ingest_files
from execmetrics.store.tables import segment_assignments
from execmetrics.timeutil import date_to_micros

NOW = date_to_micros(AS_OF) + 6 * 3600 * 10**6  # 06:00 UTC on the day


def daily_job(engine: Engine, day: date = AS_OF, force: bool = False) -> DailyReport:
    with engine.begin() as connection:
        return run_daily_analytics(
            connection, day, date_to_micros(day) + 6 * 3600 * 10**6, 60, DEFAULT_WEIGHTS, force
        )


def test_the_daily_job_stores_the_segmentation_the_command_computes(engine: Engine) -> None:
    population(engine)
    with engine.begin() as connection:
        report = run_daily_analytics(connection, AS_OF, NOW, 60, DEFAULT_WEIGHTS)
        stored = latest_segmentation(connection)
        computed = company_segments(connection, AS_OF)
    assert (report.customers, report.segmented, report.segment_problem) == (30, 30, None)
    run = report.segment_run_id
    assert report.segments_in_words() == f"segmented 30 customers (segmentation run {run})"
    assert stored is not None and stored.id == report.segment_run_id
    assert (stored.as_of, stored.computed_at, stored.k, stored.chosen_by, stored.rows) == (
        AS_OF, NOW, 5, "default", 30,
    )  # fmt: skip
    assert (stored.currency, stored.notes, stored.problem) == ("GBP", [], None)
    # The features read once for scoring give the same segments as reading them afresh.
    document = segmentation_document(computed)
    assert stored.silhouette == document["silhouette"]
    assert stored.segments == document["segments"]
    assert stored.names() == {1: STEADY, 2: INACTIVE, 3: AT_RISK, 4: NEW, 5: POWER_USERS}
    power = stored.segments[4]
    assert (power["size"], power["mrr"], power["centre"]["mrr"]) == (4, 80_600, 20_150)


def test_every_customers_segment_is_paged_in_order_of_id(engine: Engine) -> None:
    population(engine)
    daily_job(engine)
    with engine.connect() as connection:
        stored = latest_segmentation(connection)
        assert stored is not None
        total, everyone = run_assignments(connection, stored, None, limit=100)
        power_total, power = run_assignments(connection, stored, 5, limit=2, offset=1)
        none_total, nothing = run_assignments(connection, stored, 5, limit=10, offset=4)
    assert total == 30 and len(everyone) == 30
    ids = [row["customer_id"] for row in everyone]
    assert ids == sorted(ids)
    assert all(row["name"] == kind_of(row["customer_id"]) for row in everyone)
    assert power_total == 4
    assert power == [
        {"customer_id": "power_users-1", "segment": 5, "name": POWER_USERS},
        {"customer_id": "power_users-2", "segment": 5, "name": POWER_USERS},
    ]
    assert (none_total, nothing) == (4, [])


def test_the_job_segments_once_a_day_unless_forced(engine: Engine) -> None:
    population(engine)
    first = daily_job(engine)
    again = daily_job(engine)
    forced = daily_job(engine, force=True)
    tomorrow = daily_job(engine, AS_OF + timedelta(days=1))
    assert again.segment_run_id is None
    assert again.segments_in_words() == "already segmented today"
    assert first.segment_run_id is not None and forced.segment_run_id is not None
    assert forced.segment_run_id == first.segment_run_id + 1
    assert tomorrow.segment_run_id == forced.segment_run_id + 1
    with engine.connect() as connection:
        newest = latest_segmentation(connection)
        assert segmented_on(connection, AS_OF + timedelta(days=1))
        assert not segmented_on(connection, AS_OF + timedelta(days=2))
    assert newest is not None and newest.as_of == AS_OF + timedelta(days=1)


def test_assignments_older_than_the_kept_days_are_dropped_their_summaries_kept(
    engine: Engine,
) -> None:
    population(engine)
    with engine.begin() as connection:
        result = company_segments(connection, AS_OF)
        found = churn_features(connection, AS_OF)
        keys = dict(zip(found.table.ids, found.keys.tolist(), strict=True))
        old = save_segmentation(connection, result, keys, NOW)
        recent = save_segmentation(
            connection, replace(result, as_of=AS_OF + timedelta(days=ASSIGNMENT_DAYS)), keys, NOW
        )
        kept = {run: count_assignments(connection, run) for run in (old, recent)}
        later = AS_OF + timedelta(days=ASSIGNMENT_DAYS + 1)
        newest = save_segmentation(connection, replace(result, as_of=later), keys, NOW)
        after = {run: count_assignments(connection, run) for run in (old, recent, newest)}
        stored = latest_segmentation(connection)
    assert kept == {old: 30, recent: 30}
    assert after == {old: 0, recent: 30, newest: 30}
    assert stored is not None and stored.id == newest and stored.as_of == later


def count_assignments(connection: Connection, run: int) -> int:
    a = segment_assignments.c
    query = select(func.count()).select_from(segment_assignments).where(a.run_id == run)
    return int(connection.execute(query).scalar_one())


def test_too_few_customers_are_recorded_and_the_churn_scores_still_stored(
    company: Engine,
) -> None:
    with company.begin() as connection:
        before = why_none_yet(connection)
        report = run_daily_analytics(
            connection, FEW_CUSTOMERS_AS_OF, date_to_micros(FEW_CUSTOMERS_AS_OF), 60,
            DEFAULT_WEIGHTS,
        )  # fmt: skip
        attempt = latest_attempt(connection)
        made = latest_segmentation(connection)
        reason = why_none_yet(connection)
    assert before == "no customer segments yet: the daily analytics job stores them once a day"
    # The churn part is done: three customers scored.
    assert report.run_id is not None and report.customers == 3
    assert report.segment_problem == "k: expected 2 to 2 for 3 rows, got 5"
    assert report.segments_in_words() == "no segments: k: expected 2 to 2 for 3 rows, got 5"
    assert made is None
    assert attempt is not None and attempt.id == report.segment_run_id
    assert (attempt.rows, attempt.segments, attempt.silhouette) == (3, [], None)
    assert reason == (
        "no customer segments yet: the daily analytics job could not make them as of "
        "2025-06-01: k: expected 2 to 2 for 3 rows, got 5"
    )


def test_the_daily_analytics_command_says_what_it_segmented(engine: Engine) -> None:
    population(engine)
    url = engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    outputs = [
        runner.invoke(cli, ["daily-analytics", "--db", url, "--as-of", "2025-06-01", *extra])
        for extra in ([], [], ["--force"])
    ]
    assert [output.exit_code for output in outputs] == [0, 0, 0]
    assert "30 customers (run 1); segmented 30 customers (segmentation run 1)" in (
        outputs[0].output
    )
    assert "already scored today; already segmented today" in outputs[1].output
    assert "segmented 30 customers (segmentation run 2)" in outputs[2].output


def test_the_demo_company_is_segmented_daily_into_the_five_named_segments(
    engine: Engine, tmp_path: Path
) -> None:
    write_demo(DemoSpec(customers=300, months=24, seed=5, end_month="2025-06"), tmp_path)
    ingest_files(engine, [tmp_path])
    day = date(2025, 7, 1)
    report = daily_job(engine, day)
    with engine.connect() as connection:
        stored = latest_segmentation(connection)
        assert stored is not None
        total, _ = run_assignments(connection, stored, None, limit=1)
    assert report.segment_problem is None
    assert sorted(stored.names().values()) == sorted(CANONICAL_NAMES)
    assert stored.rows == total == report.customers
    assert sum(found["size"] for found in stored.segments) == stored.rows
    assert stored.notes == []
