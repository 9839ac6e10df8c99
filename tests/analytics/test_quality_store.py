"""Stored data quality reports: read back exactly, measured again when due, kept 35 days; the
analytics job measures them under a lease, and its thread when woken."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, func, select
from tests.builders import ingest, start

from execmetrics.analytics.churn_weights import DEFAULT_WEIGHTS
from execmetrics.analytics.jobs import refresh_quality_if_due, start_analytics_thread
from execmetrics.analytics.quality import DEFAULT_FRESHNESS_US, quality_report
from execmetrics.analytics.quality_store import (
    KEEP_DAYS,
    MAX_AGE_US,
    latest_quality,
    newest_quality_id,
    quality_due,
    refresh_quality,
    save_quality,
)
from execmetrics.metrics.cache import data_version
from execmetrics.store.lease import take_lease
from execmetrics.store.tables import quality_reports
from execmetrics.timeutil import parse_timestamp

NOW = parse_timestamp("2024-06-01T00:00:00Z")
DAY = 86_400_000_000


def company(engine: Engine) -> None:
    events = [
        start("e1", "c1", "s1", "2024-05-10T00:00:00Z", 10_000, plan="pro-m"),
        start("e2", "c2", "s2", "2024-05-30T00:00:00Z", 990_000, plan="pro-m"),
        start("e3", "c3", "s3", "2024-05-31T00:00:00Z", 10_000, plan="pro-m"),
    ]
    tickets = [
        {"ticket_id": "t1", "customer_id": "c1", "opened_at": "2024-05-20T10:00:00Z",
         "closed_at": "2024-05-20T09:00:00Z", "priority": "high"},
    ]  # fmt: skip
    ingest(engine, customers=[{"customer_id": "c1", "country": "GB"}], events=events,
           tickets=tickets)  # fmt: skip


def test_a_stored_report_reads_back_exactly_as_measured(engine: Engine) -> None:
    company(engine)
    with engine.begin() as connection:
        report = quality_report(connection, NOW, DAY)
        version = data_version(connection)
        saved = save_quality(connection, report, NOW, version, DAY)
    with engine.connect() as connection:
        stored = latest_quality(connection)
    assert stored is not None
    assert (stored.id, stored.measured_at, stored.data_version, stored.freshness_us) == (
        saved, NOW, version, DAY,
    )  # fmt: skip
    assert stored.report == report
    assert report.overall is not None and report.overall.denominator > 1  # exact, not rounded
    assert any(check.failing and check.examples for check in report.checks)


def test_a_report_is_due_after_new_data_an_hour_or_another_freshness_limit(
    engine: Engine,
) -> None:
    company(engine)
    with engine.begin() as connection:
        assert quality_due(connection, NOW, DEFAULT_FRESHNESS_US)  # none yet
        first = refresh_quality(connection, NOW)
        assert first is not None
        assert refresh_quality(connection, NOW + MAX_AGE_US - 1) is None
        assert not quality_due(connection, NOW + MAX_AGE_US - 1, DEFAULT_FRESHNESS_US)
        assert quality_due(connection, NOW + MAX_AGE_US, DEFAULT_FRESHNESS_US)
        assert quality_due(connection, NOW + 1, DAY)
        assert quality_due(connection, NOW - 1, DEFAULT_FRESHNESS_US)  # the clock went back
    ingest(engine, events=[start("e4", "c4", "s4", "2024-05-31T12:00:00Z", 10_000)])
    with engine.begin() as connection:
        assert quality_due(connection, NOW + 1, DEFAULT_FRESHNESS_US)
        second = refresh_quality(connection, NOW + 1)
        stored = latest_quality(connection)
    assert second == first + 1
    assert stored is not None and stored.id == second
    assert any(check.total == 4 for check in stored.report.checks)  # the new event is counted


def test_reports_are_kept_for_35_days_and_the_newest_always(engine: Engine) -> None:
    company(engine)
    with engine.begin() as connection:
        report = quality_report(connection, NOW)
        version = data_version(connection)
        ids = [
            save_quality(connection, report, NOW + day * DAY, version, DEFAULT_FRESHNESS_US)
            for day in (0, 1, KEEP_DAYS + 1)
        ]
        kept = connection.execute(select(quality_reports.c.id).order_by(quality_reports.c.id))
        assert list(kept.scalars()) == ids[1:]  # the first is more than 35 days older
        old = NOW - 100 * DAY  # stored later but measured earlier: the newest is kept
        newest = save_quality(connection, report, old, version, DEFAULT_FRESHNESS_US)
        assert newest_quality_id(connection) == newest


def test_server_processes_measure_quality_once_under_a_lease(engine: Engine) -> None:
    company(engine)
    assert take_lease(engine, "quality", "server-b", 600)
    assert refresh_quality_if_due(engine, "server-a", NOW) is None  # b holds the lease
    first = refresh_quality_if_due(engine, "server-b", NOW)
    assert first is not None
    assert refresh_quality_if_due(engine, "server-a", NOW + 1) is None  # not due
    assert refresh_quality_if_due(engine, "server-a", NOW + MAX_AGE_US) == first + 1
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(quality_reports)).scalar()
    assert count == 2


def test_the_analytics_thread_measures_quality_when_woken(engine: Engine) -> None:
    company(engine)
    stopping, wake, stored = threading.Event(), threading.Event(), threading.Event()
    thread = start_analytics_thread(
        engine, "server-a", 60, DEFAULT_WEIGHTS, stopping, wake, stored.set
    )
    try:
        wake.set()  # as an ingestion does, long before the first check is due
        assert stored.wait(60), "no quality report was stored"
    finally:
        stopping.set()
        wake.set()
        thread.join(120)
    assert not thread.is_alive()
    with engine.connect() as connection:
        found = latest_quality(connection)
    assert found is not None and found.report.overall is not None
