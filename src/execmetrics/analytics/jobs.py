"""The daily analytics job: retrain the churn model weekly (or when its settings change),
score every paying customer daily, and store both with the model's version and time."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, Engine

from execmetrics.analytics.churn import score_customers, train_churn_model
from execmetrics.analytics.churn_store import latest_model, save_model, save_scores, scored_on
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


def run_daily_analytics(
    connection: Connection,
    today: date,
    now: int,
    horizon_days: int,
    weights: dict[str, float],
    force: bool = False,
) -> DailyReport:
    """Retrain when the stored model is a week old, missing or made with other settings;
    score as of `today` unless that is done (or `force`)."""
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
    if scored_on(connection, today) and not (force or retrained):
        return DailyReport(version, False, model.method, None, 0)
    risk = score_customers(connection, model, today, reporting_currency(connection))
    run = save_scores(connection, version, risk, now)
    return DailyReport(version, retrained, model.method, run, len(risk.ids))


# In a server or worker process the job runs in a thread of its own: training takes minutes
# on a large company, which must not hold up the alerting scheduler.
LEASE = "analytics"
LEASE_SECONDS = 3600.0
FIRST_CHECK_SECONDS = 60.0  # after start-up, so that a server is serving first
CHECK_SECONDS = 600.0


def run_if_due(
    engine: Engine, holder: str, horizon_days: int, weights: dict[str, float], now: int
) -> DailyReport | None:
    """One check: when today (UTC) has no scores yet and this process takes the lease, the
    daily job, as an admin; else None."""
    today = from_micros(now).date()
    with engine.connect() as connection:
        as_role(connection, "admin")
        stored = latest_model(connection)
        if (
            stored is not None
            and scored_on(connection, today)
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


def start_analytics_thread(
    engine: Engine, holder: str, horizon_days: int, weights: dict[str, float],
    stopping: threading.Event,
) -> threading.Thread:  # fmt: skip
    def loop() -> None:
        wait = FIRST_CHECK_SECONDS
        while not stopping.wait(wait):
            wait = CHECK_SECONDS
            try:
                report = run_if_due(engine, holder, horizon_days, weights, now_micros())
            except Exception:
                log.exception("daily analytics failed")
                continue
            if report is not None:
                log.info("daily analytics: model %s (%s), %s customers scored",
                         report.model_version, report.method, report.customers)  # fmt: skip

    thread = threading.Thread(target=loop, name="execmetrics-analytics", daemon=True)
    thread.start()
    return thread
