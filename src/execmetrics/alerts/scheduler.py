"""The scheduler and the dispatcher: KPIs evaluated on their schedules, after each
ingestion and after each new data quality report, alert rules evaluated, escalations and
digests queued, notifications delivered.

They run inside `execmetrics serve` (a thread per server process) and on their own as
`execmetrics worker`. However many processes run, one evaluates at a time: the one holding
the scheduler lease (store/lease.py), renewed every tick. Delivery runs in every process,
since each notification is claimed by one dispatcher at a time (notify/outbox.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cronsim import CronSim
from sqlalchemy import Connection, Engine

from execmetrics.alerts.engine import CycleReport, evaluate_rules
from execmetrics.alerts.messages import AlertContext
from execmetrics.analytics.quality_store import newest_quality_id
from execmetrics.config import Settings
from execmetrics.kpi.benchmarks import load_bands
from execmetrics.kpi.evaluation import reads_quality, record_evaluations
from execmetrics.kpi.service import StoredKpi, current_kpis
from execmetrics.metrics.cache import data_version
from execmetrics.metrics.periods import time_zone
from execmetrics.notify.channels import Channel
from execmetrics.notify.digest import queue_due_digests
from execmetrics.notify.outbox import DispatchReport, dispatch_due
from execmetrics.notify.registry import Sealer, current_channels
from execmetrics.store.lease import release_lease, take_lease
from execmetrics.store.roles import as_role
from execmetrics.timeutil import from_micros, now_micros

if TYPE_CHECKING:
    from execmetrics.metrics.ledger_arrays import LedgerArrays

log = logging.getLogger("execmetrics.scheduler")

LEASE = "scheduler"
# Each KPI's values are stored for this many periods back, so that trend and anomaly rules
# have two years and more of history from the first evaluation.
HISTORY_PERIODS = 36


@dataclass(frozen=True)
class SchedulerConfig:
    context: AlertContext
    time_zone: str = "UTC"
    tick_seconds: float = 15.0
    lease_seconds: float = 60.0
    outbound_allow: tuple[str, ...] = ()
    benchmarks_file: Path | None = None
    holder: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )


@dataclass
class Scheduler:
    """One process's scheduler: `tick` once, or `run` until stopped. `wake` makes the next
    tick start at once (after an ingestion in this process)."""

    engine: Engine
    config: SchedulerConfig
    # The movement ledger at a data version, from the server's own snapshot when it keeps one;
    # None: read for each evaluation of the KPIs.
    ledger: Callable[[Connection, str], LedgerArrays] | None = None
    last_evaluated: int | None = None  # when KPIs were last evaluated, microseconds
    last_version: str | None = None
    last_quality: int | None = None  # the newest quality report at that evaluation
    wake: threading.Event = field(default_factory=threading.Event)

    def tick(self, now: int | None = None) -> tuple[CycleReport | None, DispatchReport]:
        """One round: evaluate (if this process holds the lease), then deliver what is due."""
        cycle = None
        if take_lease(self.engine, LEASE, self.config.holder, self.config.lease_seconds):
            cycle = self.evaluate(now)
        return cycle, self.dispatch()

    def evaluate(self, now: int | None = None) -> CycleReport:
        now = now_micros() if now is None else now
        with self.engine.begin() as connection:
            as_role(connection, "admin")
            version = data_version(connection)
            kpis = current_kpis(connection)  # read once for the whole cycle
            definitions = [kpi.definition for kpi in kpis.values()]
            quality = newest_quality_id(connection) if reads_quality(definitions) else None
            if self._kpis_due(kpis, version, quality, now):
                today = from_micros(now).astimezone(time_zone(self.config.time_zone)).date()
                ledger = self.ledger(connection, version) if self.ledger else None
                record_evaluations(
                    connection, today, self.config.time_zone, ledger, HISTORY_PERIODS, kpis
                )
                self.last_evaluated, self.last_version = now, version
                self.last_quality = quality
            report = evaluate_rules(connection, self.config.context, now, kpis)
            bands = load_bands(self.config.benchmarks_file)
            report.queued += queue_due_digests(connection, self.config.context, now, bands=bands)
        return report

    def _kpis_due(
        self, kpis: dict[str, StoredKpi], version: str, quality: int | None, now: int
    ) -> bool:
        """After an ingestion (a new data version), after a new quality report (`quality`:
        the newest, when a KPI reads one), and when a KPI's schedule says so."""
        if self.last_evaluated is None or (version, quality) != (
            self.last_version, self.last_quality
        ):  # fmt: skip
            return True
        since = from_micros(self.last_evaluated)
        schedules = {kpi.definition.schedule for kpi in kpis.values()}  # most KPIs share one
        return any(
            _next_run(schedule, since, self.config.time_zone) <= from_micros(now)
            for schedule in schedules
        )

    def dispatch(self) -> DispatchReport:
        sealer = Sealer.from_secret(self.config.context.secret_key)
        with self.engine.begin() as connection:
            as_role(connection, "admin")
            channels = current_channels(connection, sealer)

        def lookup(name: str) -> Channel | None:
            entry = channels.get(name)
            return None if entry is None else entry.channel

        return dispatch_due(self.engine, lookup, self.config.outbound_allow)

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set; a failed tick is logged and the next one tried."""
        try:
            while not stop.is_set():
                # Cleared before the round, so that a wake during it brings the next at once.
                self.wake.clear()
                try:
                    self.tick()
                except Exception:
                    log.exception("scheduler tick failed")
                self.wake.wait(self.config.tick_seconds)
        finally:
            release_lease(self.engine, LEASE, self.config.holder)


def _next_run(schedule: str, after: datetime, tz: str) -> datetime:
    local = after.astimezone(time_zone(tz))
    return next(iter(CronSim(schedule, local)))


@dataclass
class Running:
    """A scheduler running in a thread of this process, with the analytics job (the daily
    job and the quality report) in a thread of its own when asked for."""

    scheduler: Scheduler
    thread: threading.Thread
    stopping: threading.Event
    analytics: threading.Thread | None = None
    wake_analytics: threading.Event = field(default_factory=threading.Event)

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        self.scheduler.wake.set()
        self.wake_analytics.set()
        self.thread.join(timeout)
        if self.analytics is not None:
            # A training under way is not interrupted; the thread is a daemon.
            self.analytics.join(timeout)


def start_in_thread(
    scheduler: Scheduler,
    settings: Settings | None = None,
    wake_analytics: threading.Event | None = None,
) -> Running:
    """Starts the scheduler; with `settings`, also the analytics job, which `wake_analytics`
    wakes (after an ingestion) and which wakes the scheduler when it stores a quality
    report."""
    stopping = threading.Event()
    wake_analytics = wake_analytics or threading.Event()
    thread = threading.Thread(
        target=scheduler.run, args=(stopping,), name="execmetrics-scheduler", daemon=True
    )
    thread.start()
    analytics = None
    if settings is not None:
        # Here: the job brings scikit-learn, which a process without it need not load.
        from execmetrics.analytics.jobs import start_analytics_thread

        analytics = start_analytics_thread(
            scheduler.engine, scheduler.config.holder, settings.churn_horizon_days,
            settings.weights(), stopping, wake_analytics, scheduler.wake.set,
        )  # fmt: skip
    return Running(scheduler, thread, stopping, analytics, wake_analytics)


def scheduler_from_settings(
    settings: Settings,
    engine: Engine,
    wake: threading.Event | None = None,
    ledger: Callable[[Connection, str], LedgerArrays] | None = None,
) -> Scheduler:
    context = AlertContext(settings.public_url, settings.secret_key.get_secret_value())
    config = SchedulerConfig(
        context=context,
        time_zone=settings.time_zone,
        tick_seconds=settings.scheduler_tick_seconds,
        outbound_allow=tuple(settings.outbound_allow),
        benchmarks_file=settings.benchmarks_file,
    )
    return Scheduler(engine, config, ledger=ledger, wake=wake or threading.Event())


def start_scheduler(
    settings: Settings,
    engine: Engine,
    wake: threading.Event | None = None,
    ledger: Callable[[Connection, str], LedgerArrays] | None = None,
    wake_analytics: threading.Event | None = None,
) -> Running:
    """The scheduler of a server process, in a thread of its own, and the analytics job in
    another; setting `wake` makes the scheduler tick at once, `wake_analytics` the analytics
    job check at once, and `ledger` shares the server's snapshot of the movement ledger."""
    scheduler = scheduler_from_settings(settings, engine, wake, ledger)
    return start_in_thread(scheduler, settings, wake_analytics)
