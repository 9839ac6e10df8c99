"""The daily analytics job: retrain the churn model weekly (or when its settings change),
score every paying customer daily, and store both with the model's version and time; segment
the paying customers daily (docs/segments.md) and store the segmentation. Beside it, the data
quality report the quality KPIs read, measured after each ingestion and at least hourly
(docs/quality.md)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import Connection, Engine

from execmetrics.analytics.churn import score_features, train_churn_model
from execmetrics.analytics.churn_features import ChurnFeatures, churn_features
from execmetrics.analytics.churn_store import latest_model, save_model, save_scores, scored_on
from execmetrics.analytics.company_segments import segments_of
from execmetrics.analytics.quality import DEFAULT_FRESHNESS_US
from execmetrics.analytics.quality_store import quality_due, refresh_quality
from execmetrics.analytics.segments import DEFAULT_K, SegmentsError
from execmetrics.analytics.segments_store import (
    save_problem,
    save_segmentation,
    segmented_on,
)
from execmetrics.settings_store import reporting_currency
from execmetrics.store.lease import release_lease, take_lease
from execmetrics.store.roles import as_role
from execmetrics.timeutil import from_micros, now_micros

log = logging.getLogger("execmetrics.analytics")

RETRAIN_DAYS = 7


@dataclass(frozen=True)
class DailyReport:
    model_version: int
    retrained: bool
    method: str
    run_id: int | None  # None: today's scores were stored already
    customers: int
    segment_run_id: int | None  # None: today's segmentation was stored (or tried) already
    segmented: int  # customers segmented
    segment_problem: str | None  # why no segmentation could be made today

    def segments_in_words(self) -> str:
        if self.segment_run_id is None:
            return "already segmented today"
        if self.segment_problem is not None:
            return f"no segments: {self.segment_problem}"
        return f"segmented {self.segmented:,} customers (segmentation run {self.segment_run_id})"


def run_daily_analytics(
    connection: Connection,
    today: date,
    now: int,
    horizon_days: int,
    weights: dict[str, float],
    force: bool = False,
) -> DailyReport:
    """Retrain when the stored model is a week old, missing or made with other settings;
    score and segment as of `today` unless that is done (or `force`)."""
    stored = latest_model(connection)
    retrained = (
        stored is None
        or (today - from_micros(stored.trained_at).date()).days >= RETRAIN_DAYS
        or stored.model.horizon_days != horizon_days
        or stored.model.weights != weights
    )
    if retrained:
        model = train_churn_model(connection, today, horizon_days, weights)
        version = save_model(connection, model, now)
    else:
        assert stored is not None
        model, version = stored.model, stored.version
    score = force or retrained or not scored_on(connection, today)
    segment = force or not segmented_on(connection, today)
    report = DailyReport(version, retrained, model.method, None, 0, None, 0, None)
    if not (score or segment):
        return report
    currency = reporting_currency(connection)
    # Read once for both: reading the features is most of the time either takes.
    features = churn_features(connection, today)
    if score:
        risk = score_features(model, features, currency)
        report = replace(
            report, run_id=save_scores(connection, version, risk, now), customers=len(risk.ids)
        )
    if segment:
        report = _segmented(connection, report, features, currency, now)
    return report


def _segmented(
    connection: Connection, report: DailyReport, features: ChurnFeatures, currency: str, now: int
) -> DailyReport:
    """The report with today's segmentation (default k) stored; too few customers for one is
    recorded with the reason, and leaves the churn scores as they are."""
    try:
        result = segments_of(features, currency)
    except SegmentsError as error:
        problem = str(error)
        run = save_problem(connection, features.as_of, DEFAULT_K, len(features), currency,
                           problem, now)  # fmt: skip
        return replace(report, segment_run_id=run, segment_problem=problem)
    keys = dict(zip(features.table.ids, features.keys.tolist(), strict=True))
    run = save_segmentation(connection, result, keys, now)
    return replace(report, segment_run_id=run, segmented=result.rows)


# In a server or worker process the job runs in a thread of its own: training takes minutes
# on a large company, which must not hold up the alerting scheduler. So does the quality
# report, which takes seconds on a large company, under a lease of its own so that a training
# in another process does not hold it up either.
LEASE = "analytics"
LEASE_SECONDS = 3600.0
QUALITY_LEASE = "quality"
QUALITY_LEASE_SECONDS = 600.0
FIRST_CHECK_SECONDS = 60.0  # after start-up, so that a server is serving first
CHECK_SECONDS = 600.0


def run_if_due(
    engine: Engine, holder: str, horizon_days: int, weights: dict[str, float], now: int
) -> DailyReport | None:
    """One check: when today (UTC) has no scores or segmentation yet (or the model is a week
    old) and this process takes the lease, the daily job, as an admin; else None."""
    today = from_micros(now).date()
    with engine.connect() as connection:
        as_role(connection, "admin")
        stored = latest_model(connection)
        if (
            stored is not None
            and scored_on(connection, today)
            and segmented_on(connection, today)
            and (today - from_micros(stored.trained_at).date()).days < RETRAIN_DAYS
        ):
            return None
    if not take_lease(engine, LEASE, holder, LEASE_SECONDS):
        return None
    try:
        with engine.begin() as connection:
            as_role(connection, "admin")
            return run_daily_analytics(connection, today, now, horizon_days, weights)
    finally:
        release_lease(engine, LEASE, holder)


def refresh_quality_if_due(engine: Engine, holder: str, now: int) -> int | None:
    """One check: when a quality report is due (analytics/quality_store.py) and this process
    takes the lease, measure and store one, as an admin; its id, else None."""
    with engine.connect() as connection:
        as_role(connection, "admin")
        if not quality_due(connection, now, DEFAULT_FRESHNESS_US):
            return None
    if not take_lease(engine, QUALITY_LEASE, holder, QUALITY_LEASE_SECONDS):
        return None
    try:
        with engine.begin() as connection:
            as_role(connection, "admin")
            return refresh_quality(connection, now, DEFAULT_FRESHNESS_US)
    finally:
        release_lease(engine, QUALITY_LEASE, holder)


def start_analytics_thread(
    engine: Engine, holder: str, horizon_days: int, weights: dict[str, float],
    stopping: threading.Event, wake: threading.Event,
    on_new_quality: Callable[[], None] = lambda: None,
) -> threading.Thread:  # fmt: skip
    """Checks every CHECK_SECONDS, and at once when `wake` is set (after an ingestion in
    this process; whoever sets `stopping` sets `wake` too): first the quality report, then
    the daily job. `on_new_quality` is called after a new report is stored (to wake this
    process's scheduler, which evaluates the quality KPIs on it)."""

    def loop() -> None:
        wait = FIRST_CHECK_SECONDS
        while True:
            wake.wait(wait)
            wake.clear()
            if stopping.is_set():
                return
            wait = CHECK_SECONDS
            try:
                if refresh_quality_if_due(engine, holder, now_micros()) is not None:
                    on_new_quality()
            except Exception:
                log.exception("data quality report failed")
            try:
                report = run_if_due(engine, holder, horizon_days, weights, now_micros())
            except Exception:
                log.exception("daily analytics failed")
                continue
            if report is not None:
                log.info("daily analytics: model %s (%s), %s customers scored; %s",
                         report.model_version, report.method, report.customers,
                         report.segments_in_words())  # fmt: skip

    thread = threading.Thread(target=loop, name="execmetrics-analytics", daemon=True)
    thread.start()
    return thread
