"""Alerting benchmark: scheduler cycles over 500 KPIs and 1,000 alert rules on the demo company,
and the dispatcher sending 1,000 emails to a local SMTP server.

Run with `.venv/bin/python bench/alerting.py --help`. For each database (a SQLite file, and a
PostgreSQL database of its own on the local server, dropped afterwards) it

1. ingests the demo company (`execmetrics demo --out`, then `execmetrics ingest`);
2. declares --kpis KPIs (the starter set; metric KPIs for the groups of every customer
   breakdown the demo company has; formula KPIs; over the four periods) and --rules alert
   rules of the four kinds, with thresholds and targets set near each KPI's current value so
   that some fire, two channels, an escalation policy and four users (three with a daily
   digest), and applies them with `parse_declared` and `apply_declared`;
3. times `Scheduler.evaluate` as the server runs it (with a ledger snapshot of its own; the
   PostgreSQL engine connects as execmetrics_app, under row-level security), each run on a
   fresh copy of that database:
   (a) the first cycle, (b) a second one a minute later at the same data version, (d) the
   hourly KPI schedule coming due at the same data version, (c) a cycle after --new-events
   new events were ingested, (e) a cycle after as many more, while the analytics job
   measures the data quality report in another thread (before the others it measures one,
   when due, timed apart); each split into KPI evaluation (`record_evaluations`), rule
   evaluation (`evaluate_rules`) and digests (`queue_due_digests`), with the peak resident
   memory of the process during the cycle (VmHWM, reset before it);
4. queues --notifications alert emails and times `dispatch_due(..., limit=N)` until every one
   is delivered to an aiosmtpd server (STARTTLS and AUTH, tests/notify/servers.py) running in
   a process of its own, and checks that it received N distinct Message-IDs.

stdout carries the machine and the Markdown table; raw figures go to the JSON file --out.
With --work-dir the demo files, the ingested SQLite database and the generated configuration
are kept there and reused by a later run with the same parameters (delete them after
changing the demo or the ingest).
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import functools
import io
import json
import logging
import multiprocessing
import os
import pstats
import random
import re
import secrets
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, ParamSpec, TypeVar

import yaml
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

import execmetrics.alerts.conditions as conditions_module
import execmetrics.alerts.engine as engine_module
import execmetrics.alerts.scheduler as scheduler_module
import execmetrics.kpi.evaluation as evaluation_module
import execmetrics.metrics.ledger_arrays as ledger_module
import execmetrics.notify.outbox as outbox_module
from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import create_user
from execmetrics.alerts.conditions import Outcome
from execmetrics.alerts.messages import AlertContext, alert_message
from execmetrics.alerts.rules import AlertRule
from execmetrics.alerts.scheduler import HISTORY_PERIODS, Scheduler, SchedulerConfig
from execmetrics.alerts.state import Event, Instance, State
from execmetrics.analytics.jobs import refresh_quality_if_due
from execmetrics.analytics.quality_store import refresh_quality
from execmetrics.analytics.service import quality_of
from execmetrics.as_code import apply_declared, parse_declared
from execmetrics.ingest.service import ingest_files
from execmetrics.kpi.config import starter_kpis
from execmetrics.kpi.evaluation import evaluate_kpis, measured_now
from execmetrics.metrics.cache import DocumentCache
from execmetrics.metrics.queries import customer_group_values
from execmetrics.notify.channels import parse_channel
from execmetrics.notify.email import message_id
from execmetrics.notify.message import Message
from execmetrics.notify.outbox import dispatch_due, enqueue
from execmetrics.notify.preferences import Preferences, save_preferences
from execmetrics.notify.registry import Sealer
from execmetrics.store.database import open_database
from execmetrics.store.roles import as_role
from execmetrics.store.tables import alert_instances, kpi_evaluations, notifications
from execmetrics.timeutil import format_micros, to_micros
from revenue_engine import (
    DEFAULT_POSTGRES_URL,
    database_list,
    git_commit,
    git_dirty,
    log,
    machine_info,
    month_label,
    month_start,
    positive,
    redact,
    run_child,
)

ROOT = Path(__file__).resolve().parent.parent
# The SMTP server of the notification tests (tests/notify/servers.py) is imported from the
# repository root, in the SMTP server's own process.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

DEFAULT_OUT = ROOT / "bench" / "results" / "alerting.json"
P = ParamSpec("P")
T = TypeVar("T")
SECRET_KEY = "bench-secret-key-of-sufficient-length-0123456789"
CONTEXT = AlertContext("https://metrics.example", SECRET_KEY)
ALLOW = ("127.0.0.1/32",)
SENDER = "alerts@metrics.example"
TEAM_ADDRESS = "exec-team@example.com"
EMAIL_CHANNEL = "exec-email"
SLACK_CHANNEL = "exec-slack"
POLICY = "revenue-oncall"
APP_ROLE = "execmetrics_app"
MINUTE = timedelta(minutes=1)

TARGET_CYCLE_SECONDS = 10.0
TARGET_DISPATCH_SECONDS = 10.0

# The cycles of one run, in the order they run, with the moment each is evaluated at, from
# the evaluation instant: 09:05 UTC on the 15th of the demo's last month.
CYCLES: tuple[tuple[str, str, timedelta], ...] = (
    ("first", "(a) first cycle on a new data version", timedelta()),
    ("again", "(b) second cycle, same data version, a minute later", MINUTE),
    ("hourly", "(d) hourly KPI schedule due, same data version", timedelta(minutes=55, seconds=30)),
    ("ingested", "(c) cycle after new events (a new data version)", timedelta(minutes=57)),
    (
        "overlap",
        "(e) cycle after more new events while the analytics job measures the quality report "
        "in another thread of the process, as after an ingestion through the API",
        timedelta(minutes=59),
    ),
)
TIMED_WITH_TARGET = ("first", "hourly", "ingested", "overlap")
# Ingested before these cycles, each a new data version.
INGESTED_BEFORE = ("ingested", "overlap")


# --------------------------------------------------------------------------- arguments


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark alert evaluation and notification delivery of execmetrics.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--customers", type=positive, default=100_000, help="demo customers")
    parser.add_argument("--months", type=positive, default=36, help="demo months")
    parser.add_argument("--seed", type=int, default=7, help="demo and configuration seed")
    parser.add_argument(
        "--end-month", type=month_label, default="2025-12", help="last demo month; fixed"
    )
    parser.add_argument(
        "--databases",
        type=database_list,
        default=["sqlite", "postgresql"],
        help="comma-separated: sqlite,postgresql",
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="server to create (and drop) execmetrics_bench_alerting_* databases on",
    )
    parser.add_argument("--kpis", type=positive, default=500, help="KPIs declared")
    parser.add_argument("--rules", type=positive, default=1000, help="alert rules declared")
    parser.add_argument("--new-events", type=positive, default=5, help="events before (c)")
    parser.add_argument(
        "--notifications", type=positive, default=1000, help="emails the dispatcher sends"
    )
    parser.add_argument("--repeat", type=positive, default=3, help="runs of each measurement")
    parser.add_argument(
        "--parts",
        type=parts_list,
        default=["cycles", "dispatch"],
        help="comma-separated: cycles,dispatch",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also run one first cycle under cProfile per database (top functions to stderr)",
    )
    parser.add_argument(
        "--dispatch-timeout", type=positive, default=600, help="seconds to wait for delivery"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="kept and reused when given (default: a temp dir, removed)",
    )
    return parser.parse_args(argv)


def parts_list(text_value: str) -> list[str]:
    names = [name.strip() for name in text_value.split(",") if name.strip()]
    if not names or any(name not in ("cycles", "dispatch") for name in names):
        raise argparse.ArgumentTypeError(f"expected cycles, dispatch or both, got {text_value!r}")
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- measuring


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "runs": values,
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def reset_peak_memory() -> bool:
    """Sets this process's VmHWM back to its current resident size (Linux 4.0 and later)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_kb(field_name: str) -> int | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    found = re.search(rf"^{field_name}:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else None


class Timers:
    """Wall time and calls of the product functions the cycle is split into."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def add(self, label: str, seconds: float) -> None:
        self.seconds[label] += seconds
        self.calls[label] += 1

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {
            label: {"seconds": self.seconds[label], "calls": self.calls[label]}
            for label in sorted(self.seconds)
        }


TIMERS = Timers()
_INSTRUMENTED: set[tuple[str, str]] = set()

# (module, function, label): each function is looked up in its module at call time by the
# code that calls it, so a timing wrapper put there sees every call. KPI evaluation
# (record_evaluations) includes the metrics computations; the movement ledger is read by the
# server's snapshot, or by KPI evaluation without one; rule evaluation includes the rest.
SPLIT: tuple[tuple[ModuleType, str, str], ...] = (
    (scheduler_module, "record_evaluations", "kpi_evaluation"),
    (scheduler_module, "evaluate_rules", "rule_evaluation"),
    (scheduler_module, "queue_due_digests", "digests"),
    (evaluation_module, "compute_metrics", "compute_metrics"),
    (ledger_module, "load_ledger", "load_ledger"),
    (engine_module, "kpi_series", "kpi_series"),
    (conditions_module, "check_anomaly", "check_anomaly"),
    (engine_module, "enqueue", "enqueue"),
    (engine_module, "_escalate", "escalation"),
)


def instrument() -> None:
    for module, name, label in SPLIT:
        if (module.__name__, name) in _INSTRUMENTED:
            continue
        original: Callable[..., Any] = getattr(module, name)
        setattr(module, name, _timed_call(original, label))
        _INSTRUMENTED.add((module.__name__, name))


def _timed_call(original: Callable[..., Any], label: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            TIMERS.add(label, time.perf_counter() - started)

    return call


# --------------------------------------------------------------------------- databases


@dataclass
class Databases:
    """The databases of one kind: created here, removed at the end."""

    kind: str
    work_dir: Path
    postgres_url: str
    created: list[str] = field(default_factory=list)  # PostgreSQL databases, or SQLite files
    server_version: str | None = None

    def new_name(self, label: str) -> str:
        return f"execmetrics_bench_alerting_{secrets.token_hex(4)}_{label}"

    def admin_url(self, name: str) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{name}"
        return make_url(self.postgres_url).set(database=name).render_as_string(False)

    def app_url(self, name: str) -> str:
        """The URL the server connects with: on PostgreSQL the application role, under
        row-level security (the roles are the server's, made by the first migration)."""
        if self.kind == "sqlite":
            return self.admin_url(name)
        url = make_url(self.admin_url(name)).set(username=APP_ROLE, password=None)
        return url.render_as_string(hide_password=False)

    def create(self, label: str, template: str | None = None) -> str:
        """A new database (a copy of `template` when given); its name or file."""
        if self.kind == "sqlite":
            path = self.work_dir / f"{self.new_name(label)}.sqlite3"
            self.created.append(str(path))
            if template is not None:
                with sqlite3.connect(template) as source, sqlite3.connect(path) as target:
                    source.backup(target)
                source.close()
                target.close()
            return str(path)
        name = self.new_name(label)
        admin = create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                if self.server_version is None:
                    version = connection.execute(text("SHOW server_version")).scalar_one()
                    self.server_version = str(version)
                copy = f' TEMPLATE "{template}"' if template else ""
                connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        finally:
            admin.dispose()
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        if name in self.created:
            self.created.remove(name)
        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{name}{suffix}").unlink(missing_ok=True)
            return
        admin = create_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()

    def drop_all(self) -> None:
        for name in list(reversed(self.created)):
            try:
                self.drop(name)
                if self.kind == "postgresql":
                    log(f"dropped PostgreSQL database {name}")
            except Exception as error:  # the others are still dropped
                log(f"could not drop {name}: {error}")

    @contextmanager
    def copy(self, template: str, label: str) -> Iterator[str]:
        name = self.create(label, template)
        try:
            yield name
        finally:
            self.drop(name)


def ingest_demo(
    databases: Databases, files: Path, cached: Path | None
) -> tuple[str, dict[str, Any]]:
    """A database holding the demo company: ingested by `execmetrics ingest`, or on SQLite
    the copy kept in --work-dir by an earlier run."""
    if databases.kind == "sqlite" and cached is not None and cached.exists():
        log(f"sqlite: reusing the demo company ingested in {cached}")
        name = databases.create("demo", str(cached))
        return name, {"reused": str(cached)}
    name = databases.create("demo")
    log(f"{databases.kind}: ingesting the demo company with the CLI")
    child = run_child(["ingest", str(files), "--db", databases.admin_url(name)])
    if databases.kind == "sqlite" and cached is not None:
        partial = cached.with_suffix(".partial")  # a run stopped while copying leaves no cache
        partial.unlink(missing_ok=True)
        with sqlite3.connect(name) as source, sqlite3.connect(partial) as target:
            source.backup(target)
        source.close()
        target.close()
        partial.replace(cached)
    return name, child.as_dict()


# --------------------------------------------------------------------------- demo files


def demo_files(arguments: argparse.Namespace, work_dir: Path) -> tuple[Path, dict[str, Any]]:
    spec = f"c{arguments.customers}-m{arguments.months}-s{arguments.seed}-{arguments.end_month}"
    files = work_dir / f"demo-{spec}"
    done = files / ".complete"
    if done.exists():
        log(f"reusing the demo company in {files}")
        return files, {"reused": str(files)}
    if files.exists():
        shutil.rmtree(files)
    log(f"generating the demo company: {arguments.customers:,} customers")
    child = run_child(
        [
            "demo",
            "--customers", str(arguments.customers),
            "--months", str(arguments.months),
            "--seed", str(arguments.seed),
            "--end", arguments.end_month,
            "--out", str(files),
        ]
    )  # fmt: skip
    done.write_text("")
    return files, child.as_dict()


def write_new_events(
    directory: Path, template: Path, count: int, instant: datetime, label: str
) -> None:
    """`count` new monthly subscriptions of existing customers, started in the hour before
    `instant`, in the demo's own CSV layout; `label` tells their ids from another batch's."""
    with template.open(encoding="utf-8", newline="") as handle:
        columns = next(csv.reader(handle))
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "subscription_events.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=columns, restval="")
        writer.writeheader()
        for number in range(1, count + 1):
            started = instant - timedelta(minutes=number)
            writer.writerow(
                {
                    "event_id": f"bench_alerting_{label}evt_{number}",
                    "customer_id": f"cus_{number:06d}",
                    "subscription_id": f"bench_alerting_{label}sub_{number}",
                    "occurred_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "type": "start",
                    "plan_id": "bench-monthly-gbp",
                    "tier": "Starter",
                    "amount_minor": "4900",
                    "quantity": "1",
                    "currency": "GBP",
                    "interval": "month",
                    "interval_count": "1",
                }
            )


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class GroupKpi:
    """A KPI every breakdown group gets: a metric of the group, or a formula in which
    {key} stands for the group's own KPI of that key."""

    key: str  # the start of the KPI's name
    metric: str | None
    formula: str | None
    period: str
    unit: str
    direction: str
    category: str
    title: str


def _group_kpi(key: str, source: str, period: str, unit: str, better: str, category: str,
               title: str) -> GroupKpi:  # fmt: skip
    formula = source if "{" in source else None
    return GroupKpi(
        key, None if formula else source, formula, period, unit, f"{better}_is_better",
        category, title,
    )  # fmt: skip


# Added in this order, each for every group, until --kpis is reached: the four periods,
# stocks, flows and rates, and formulas over them.
GROUP_KPIS = tuple(_group_kpi(*spec) for spec in (
    ("mrr", "mrr_end", "month_to_date", "money", "higher", "financial", "MRR"),
    ("new_mrr", "new_mrr", "last_complete_month", "money", "higher", "financial", "New MRR"),
    ("churned_mrr", "churned_mrr", "last_complete_month", "money", "lower", "financial",
     "Churned MRR"),
    ("churn", "customer_churn_rate", "last_complete_month", "ratio", "lower", "customer",
     "Logo churn rate"),
    ("customers", "customers_end", "month_to_date", "count", "higher", "customer",
     "Paying customers"),
    ("mrr_share", "{mrr} / mrr", "month_to_date", "ratio", "higher", "financial",
     "Share of MRR"),
    ("net_movement", "{new_mrr} - {churned_mrr}", "last_complete_month", "money", "higher",
     "financial", "New less churned MRR"),
    ("net_new_mrr_qtd", "net_new_mrr", "quarter_to_date", "money", "higher", "financial",
     "Net new MRR this quarter"),
    ("new_customers_ytd", "new_customers", "year_to_date", "count", "higher", "marketing",
     "New customers this year"),
    ("nrr", "nrr_12m", "last_complete_month", "ratio", "higher", "financial",
     "Net revenue retention, 12 months"),
    ("arpa", "arpa", "last_complete_month", "money", "higher", "financial", "ARPA"),
    ("expansion_qtd", "expansion_mrr", "quarter_to_date", "money", "higher", "financial",
     "Expansion MRR this quarter"),
    ("churn_gap", "{churn} - customer_churn_rate", "last_complete_month", "ratio", "lower",
     "customer", "Logo churn above the company's"),
    ("grr", "grr_12m", "last_complete_month", "ratio", "higher", "financial",
     "Gross revenue retention, 12 months"),
))  # fmt: skip
GROUP_SCHEDULE = "0 6 * * *"  # group KPIs daily at 06:00; the starter set hourly
BREAKDOWN_SLUGS = {
    "segment": "segment",
    "country": "country",
    "source": "source",
    "campaign": "campaign",
    "currency": "currency",
    "attr.business_type": "type",
}
MIN_GROUP_SHARE = 0.005  # groups with fewer customers than this share get no KPIs
MAX_GROUPS = 12  # per breakdown, the largest
PERIOD_INTERVAL = {
    "month_to_date": "month",
    "last_complete_month": "month",
    "quarter_to_date": "quarter",
    "year_to_date": "year",
}
USERS = (
    # email, time zone, daily digest, quiet hours
    ("cfo@example.com", "Europe/London", True, False),
    ("ceo@example.com", "Europe/London", True, True),
    ("vp-sales@example.com", "America/New_York", True, False),
    ("analyst@example.com", "Europe/London", False, False),
)


def slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_") or "none"


def breakdown_groups(engine: Engine) -> dict[str, list[str]]:
    """The groups of each customer breakdown the demo company has, largest first."""
    groups: dict[str, list[str]] = {}
    with engine.connect() as connection:
        for by in BREAKDOWN_SLUGS:
            counts = Counter(customer_group_values(connection, by).values())
            total = sum(counts.values()) or 1
            groups[by] = [
                str(value)
                for value, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
                if value not in (None, "") and count / total >= MIN_GROUP_SHARE
            ][:MAX_GROUPS]
    return groups


def declare_kpis(groups: dict[str, list[str]], count: int) -> list[dict[str, Any]]:
    """The starter set, then each kind of group KPI for every group in turn."""
    kpis: list[dict[str, Any]] = [
        definition.model_dump(mode="json", exclude_defaults=True) for definition in starter_kpis()
    ]
    for spec in GROUP_KPIS:
        for by, values in groups.items():
            for value in values:
                if len(kpis) >= count:
                    return kpis
                suffix = f"_{BREAKDOWN_SLUGS[by]}_{slug(value)}"
                name = (spec.key + suffix)[:64]
                item: dict[str, Any] = {
                    "name": name,
                    "title": f"{spec.title}, {by.removeprefix('attr.')} {value}",
                    "category": spec.category,
                    "unit": spec.unit,
                    "direction": spec.direction,
                    "period": spec.period,
                }
                if spec.formula is None:
                    item |= {"metric": spec.metric, "group": {"by": by, "value": value}}
                    item["schedule"] = GROUP_SCHEDULE
                else:
                    item["formula"] = group_formula(spec.formula, suffix)
                kpis.append(item)
    if len(kpis) < count:
        raise SystemExit(f"the demo company's breakdowns give only {len(kpis)} KPIs")
    return kpis


def group_formula(formula: str, suffix: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda found: (found.group(1) + suffix)[:64], formula)


def decimal_text(value: Fraction, unit: str) -> str:
    """An exact number as a configuration file writes it: whole for money and counts."""
    if unit in ("money", "count"):
        return str(round(value))
    return f"{float(value):.6f}"


def add_targets(
    kpis: list[dict[str, Any]], values: dict[str, Fraction | None], rng: random.Random
) -> None:
    """A recurring target near the current value for about a third of the KPIs with one."""
    for item in kpis:
        value = values.get(item["name"])
        if value is None or value == 0 or rng.random() > 0.35:
            continue
        higher = item["direction"] == "higher_is_better"
        # Mostly in reach: goals from 5% under to 10% over (the other way when lower is
        # better), so that some periods miss them.
        factor = (
            Fraction(rng.randint(95, 110), 100) if higher else Fraction(rng.randint(90, 105), 100)
        )
        goal = value + abs(value) * (factor - 1)
        every = PERIOD_INTERVAL[item.get("period", "last_complete_month")]
        item["targets"] = [
            {"kind": "recurring", "every": every, "value": decimal_text(goal, item["unit"])}
        ]


def declare_rules(
    kpis: list[dict[str, Any]],
    values: dict[str, Fraction | None],
    groups: dict[str, list[str]],
    count: int,
    rng: random.Random,
) -> list[dict[str, Any]]:
    """Rules of the four kinds (about 40% threshold, 25% trend, 20% anomaly, 15% target), a
    few of them watching every group of a breakdown at once."""
    by_name = {item["name"]: item for item in kpis}
    rules: list[dict[str, Any]] = []
    for by in groups:
        for key, kind in (("churn", "threshold"), ("mrr", "anomaly")):
            watched = [name for name in by_name if name.startswith(f"{key}_{BREAKDOWN_SLUGS[by]}_")]
            if len(watched) < 2 or len(rules) >= count:
                continue
            condition: dict[str, Any] = (
                {"kind": "threshold", "above": "0.05", "recover_below": "0.045"}
                if kind == "threshold"
                else {"kind": "anomaly", "sensitivity": 3.5, "direction": "down"}
            )
            rules.append(
                rule_item(f"{key}-{BREAKDOWN_SLUGS[by]}-{kind}", watched, condition, rng, by)
            )
    rest = count - len(rules)
    kinds = (
        ["threshold"] * round(rest * 0.40)
        + ["trend"] * round(rest * 0.25)
        + ["anomaly"] * round(rest * 0.20)
    )
    kinds += ["target"] * (rest - len(kinds))
    rng.shuffle(kinds)
    names = sorted(by_name)
    rng.shuffle(names)
    with_targets = [name for name in names if by_name[name].get("targets")]
    watched_any = iter(names * (count // max(len(names), 1) + 2))
    watched_target = iter(with_targets * (count // max(len(with_targets), 1) + 2))
    for number, kind in enumerate(kinds, start=1):
        name = next(watched_target) if kind == "target" and with_targets else next(watched_any)
        kind = kind if kind != "target" or with_targets else "threshold"
        item = by_name[name]
        condition = condition_for(kind, item, values.get(name), rng)
        rules.append(rule_item(f"r{number:04d}-{kind}-{name}", [name], condition, rng, None))
    return rules


def condition_for(
    kind: str, item: dict[str, Any], value: Fraction | None, rng: random.Random
) -> dict[str, Any]:
    higher = item["direction"] == "higher_is_better"
    unit = item["unit"]
    if kind == "threshold":
        # The line from 3% past the current value (firing) to 20% short of it (quiet).
        distance = Fraction(rng.randint(-3, 20), 100)
        base = value if value is not None else Fraction(0)
        size = abs(base) if base else Fraction(1, 100 if unit in ("ratio", "percent") else 1)
        if higher:
            line, recovery = base - size * distance, base - size * distance + size / 50
            return {
                "kind": "threshold",
                "below": decimal_text(line, unit),
                "recover_above": decimal_text(max(line, recovery), unit),
            }
        line, recovery = base + size * distance, base + size * distance - size / 50
        return {
            "kind": "threshold",
            "above": decimal_text(line, unit),
            "recover_below": decimal_text(min(line, recovery), unit),
        }
    if kind == "trend":
        condition: dict[str, Any] = {
            "kind": "trend",
            "compare_to": rng.choice(["previous_period"] * 3 + ["same_period_last_year"]),
        }
        if unit in ("money", "count") and rng.random() < 0.2 and value:
            step = max(abs(value) / 10, Fraction(1))
            condition |= {"change": "absolute"}
            amount = decimal_text(step, unit)
        else:
            amount = rng.choice(["10", "15", "25"]) if higher else rng.choice(["20", "50"])
        condition["falls_by" if higher else "rises_by"] = amount
        return condition
    if kind == "anomaly":
        return {
            "kind": "anomaly",
            "sensitivity": rng.choice([3.0, 3.5, 4.0]),
            "direction": rng.choice(["both", "down" if higher else "up"]),
            "min_history": rng.choice([6, 12]),
        }
    # Pacing judges a period under way: a KPI of the last complete month has none.
    to_date = item.get("period", "last_complete_month") != "last_complete_month"
    return {
        "kind": "target",
        "check": rng.choice(["both", "pacing", "missed"]) if to_date else "missed",
        "margin_percent": rng.choice(["0", "5"]),
    }


def expected_instances(rules: list[dict[str, Any]], kpis: list[dict[str, Any]]) -> int:
    """The alert instances the rules make: one per KPI watched, two for a target rule that
    checks both pacing and a missed target of a KPI for the period to date."""
    periods = {item["name"]: item.get("period", "last_complete_month") for item in kpis}
    count = 0
    for rule in rules:
        for name in rule["kpi"] if isinstance(rule["kpi"], list) else [rule["kpi"]]:
            both = rule["condition"]["kind"] == "target" and rule["condition"]["check"] == "both"
            count += 2 if both and periods[name] != "last_complete_month" else 1
    return count


def rule_item(
    name: str,
    watched: list[str],
    condition: dict[str, Any],
    rng: random.Random,
    by: str | None,
) -> dict[str, Any]:
    draw = rng.random()
    severity = "critical" if draw < 0.1 else "warning" if draw < 0.7 else "info"
    item: dict[str, Any] = {
        "name": name[:64].rstrip("-_"),
        "description": f"Benchmark rule watching {', '.join(watched[:3])}"[:2000],
        "kpi": watched[0] if len(watched) == 1 else watched,
        "severity": severity,
        "condition": condition,
        "labels": {"team": rng.choice(["finance", "growth", "success"])},
    }
    if by is not None:
        item["labels"]["breakdown"] = BREAKDOWN_SLUGS[by]
    if severity == "critical":
        item |= {"notify": [f"channel:{EMAIL_CHANNEL}", f"channel:{SLACK_CHANNEL}"]}
        item["policy"] = POLICY
    elif severity == "warning":
        item["notify"] = [f"channel:{SLACK_CHANNEL}"]
    else:
        item["notify"] = [f"channel:{EMAIL_CHANNEL}"]
    if rng.random() < 0.1:
        item["pending_minutes"] = 15
    if rng.random() < 0.1:
        item["keep_firing_minutes"] = 60
    return item


def declare_channels_and_policies() -> dict[str, list[dict[str, Any]]]:
    return {
        "policies": [
            {
                "name": POLICY,
                "levels": [
                    {"delay_minutes": 0, "recipients": ["user:cfo@example.com"]},
                    {
                        "delay_minutes": 30,
                        "recipients": ["user:ceo@example.com", f"channel:{SLACK_CHANNEL}"],
                    },
                ],
            }
        ],
        "channels": [
            {
                "name": EMAIL_CHANNEL,
                "kind": "email",
                "host": "127.0.0.1",
                "port": 2525,
                "username": "notifier",
                "password": "smtp-password-not-for-logs",
                "sender": SENDER,
                "to": [TEAM_ADDRESS],
            },
            {
                "name": SLACK_CHANNEL,
                "kind": "slack",
                "webhook_url": "https://hooks.slack.com/services/T0000000/B0000000/benchmark",
            },
        ],
    }


def build_configuration(
    engine: Engine, arguments: argparse.Namespace, instant: datetime
) -> tuple[str, dict[str, Any]]:
    """The configuration file, with thresholds and targets near each KPI's value at the
    instant the cycles are run."""
    rng = random.Random(f"alerting:{arguments.seed}")
    groups = breakdown_groups(engine)
    kpis = declare_kpis(groups, arguments.kpis)
    declared = parse_declared(yaml.safe_dump({"kpis": kpis}, sort_keys=False), "kpis.yaml")
    assert declared.kpis is not None
    log(f"evaluating the {len(kpis)} KPIs once, to set thresholds and targets near their values")
    started = time.perf_counter()
    with engine.connect() as connection:
        # The quality KPIs read a stored report: one measured here, and not kept (the
        # connection is not committed), so that each run measures its own.
        refresh_quality(connection, to_micros(instant))
        current = evaluate_kpis(connection, declared.kpis, instant.date())
    values = {name: found.value for name, found in current.items()}
    seconds = time.perf_counter() - started
    add_targets(kpis, values, rng)
    rules = declare_rules(kpis, values, groups, arguments.rules, rng)
    document = {"kpis": kpis, "rules": rules, **declare_channels_and_policies()}
    described = {
        "groups": groups,
        "kpis": len(kpis),
        "kpis_by_period": dict(Counter(item.get("period", "last_complete_month") for item in kpis)),
        "formula_kpis": sum("formula" in item for item in kpis),
        "kpis_with_targets": sum("targets" in item for item in kpis),
        "kpis_without_value": sum(values.get(item["name"]) is None for item in kpis),
        "measured_now_kpis": len(measured_now(declared.kpis)),
        "rules": len(rules),
        "rules_by_kind": dict(Counter(rule["condition"]["kind"] for rule in rules)),
        "rules_by_severity": dict(Counter(rule["severity"] for rule in rules)),
        "multi_kpi_rules": sum(isinstance(rule["kpi"], list) for rule in rules),
        "alert_instances_expected": expected_instances(rules, kpis),
        "evaluate_kpis_seconds": seconds,
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True), described


def apply_configuration(url: str, config: str) -> dict[str, Any]:
    """Apply the file as `execmetrics kpis apply` does, then add the users and their
    preferences (email to the email channel, quiet hours, a daily 08:00 digest)."""
    engine = open_database(url)
    try:
        started = time.perf_counter()
        declared = parse_declared(config, "alerting.yaml")
        parsed = time.perf_counter() - started
        started = time.perf_counter()
        with engine.begin() as connection:
            diffs = apply_declared(
                connection, declared, "bench", Sealer.from_secret(SECRET_KEY), allow=ALLOW
            )
        applied = time.perf_counter() - started
        with engine.begin() as connection:
            for email, zone, digest, quiet in USERS:
                user = create_user(connection, email, "a long enough password", Role.EXECUTIVE)
                preferences: dict[str, Any] = {"time_zone": zone, "email_channel": EMAIL_CHANNEL}
                if digest:
                    preferences["digest"] = {"schedule": "0 8 * * *", "channel": EMAIL_CHANNEL}
                if quiet:
                    preferences["quiet_hours"] = {
                        "time_zone": zone,
                        "windows": [{"start": "22:00", "end": "07:00"}],
                    }
                save_preferences(connection, user, Preferences.model_validate(preferences))
    finally:
        engine.dispose()
    return {
        "parse_seconds": parsed,
        "apply_seconds": applied,
        "changes": {section: _diff_size(diff) for section, diff in diffs.items()},
    }


def _diff_size(diff: object) -> Any:
    """How many items a section's apply created, changed and removed, as far as it says."""
    counts = {}
    for name in ("created", "changed", "removed"):
        found = getattr(diff, name, None)
        if found is not None:
            counts[name] = len(found)
    return counts or str(diff)[:200]


# --------------------------------------------------------------------------- cycles


def evaluation_instant(end_month: str) -> datetime:
    start = month_start(end_month)
    return datetime(start.year, start.month, 15, 9, 5, tzinfo=UTC)


def database_counts(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        values = connection.execute(select(func.count()).select_from(kpi_evaluations)).scalar()
        a = alert_instances.c
        states = connection.execute(
            select(func.coalesce(a.health, a.phase), func.count()).group_by(
                func.coalesce(a.health, a.phase)
            )
        ).all()
        n = notifications.c
        queued = connection.execute(
            select(n.event, func.count()).group_by(n.event).order_by(n.event)
        ).all()
    return {
        "kpi_values": int(values or 0),
        "alert_instances": {str(state): int(number) for state, number in states},
        "notifications": {str(event): int(number) for event, number in queued},
    }


def run_cycles(
    databases: Databases, configured: str, context: RunContext, run_number: int
) -> dict[str, Any]:
    """One run: a fresh copy of the configured database, its cycles in order."""
    instant = context.instant
    result: dict[str, Any] = {"cycles": {}, "checks_failed": []}
    with databases.copy(configured, f"run{run_number}") as name:
        admin = open_database(databases.admin_url(name))
        engine = open_database(databases.app_url(name))
        try:
            scheduler = server_scheduler(engine)
            for key, _, offset in CYCLES:
                if key == "ingested":
                    started = time.perf_counter()
                    outcome = ingest_files(admin, [context.new_events])
                    result["new_events_ingest_seconds"] = time.perf_counter() - started
                    result["new_events_reported_seconds"] = getattr(outcome, "seconds", None)
                if key == "overlap":
                    ingest_files(admin, [context.overlap_events])
                    figures = overlapping_cycle(scheduler, engine, instant + offset)
                else:
                    figures = cycle_after_quality(scheduler, engine, instant + offset)
                figures["counts"] = database_counts(admin)
                result["cycles"][key] = figures
                parts = ", ".join(
                    f"{label} {figures['split'][label]['seconds']:.2f} s"
                    for label in ("load_ledger", "kpi_evaluation", "rule_evaluation", "digests")
                    if label in figures["split"]
                )
                log(
                    f"{databases.kind} run {run_number}: {key} {figures['seconds']:.2f} s ({parts})"
                )
        finally:
            engine.dispose()
            admin.dispose()
    result["checks_failed"] = check_cycles(result["cycles"], context)
    return result


def timed_quality(engine: Engine, instant: datetime) -> tuple[int | None, float]:
    """The analytics job's check: a quality report measured and stored when one is due (a
    new data version, or the last an hour old); its id (None: none was due) and seconds."""
    started = time.perf_counter()
    stored = refresh_quality_if_due(engine, "bench", to_micros(instant))
    return stored, time.perf_counter() - started


def cycle_after_quality(scheduler: Scheduler, engine: Engine, instant: datetime) -> dict[str, Any]:
    """As the analytics job does beside the scheduler: a quality report when one is due,
    timed on its own; then the cycle."""
    stored, quality_seconds = timed_quality(engine, instant)
    figures = one_cycle(scheduler, to_micros(instant))
    figures["quality_report_seconds"] = None if stored is None else quality_seconds
    figures["quality_document_seconds"] = (
        None if stored is None else served_quality_seconds(engine, instant)
    )
    return figures


def overlapping_cycle(scheduler: Scheduler, engine: Engine, instant: datetime) -> dict[str, Any]:
    """The cycle while the analytics job measures the quality report in another thread, as a
    server does after an ingestion through the API, which wakes both: the two share the
    process (and its interpreter lock) and the machine's cores."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.perf_counter()
        measuring = pool.submit(timed_quality, engine, instant)
        figures = one_cycle(scheduler, to_micros(instant))
        stored, quality_seconds = measuring.result()
        figures["both_seconds"] = time.perf_counter() - started
    if stored is None:
        raise RuntimeError("no quality report was measured beside the cycle after new events")
    figures["quality_report_seconds"] = quality_seconds
    figures["quality_document_seconds"] = None
    return figures


def served_quality_seconds(engine: Engine, instant: datetime) -> float:
    """Seconds for the quality document the command, API and page serve (`quality_of`, as
    an analyst) a second after the report measured at `instant` was stored: read, not
    measured again."""
    with engine.connect() as connection:
        as_role(connection, "analyst")
        started = time.perf_counter()
        document = quality_of(connection, now_us=to_micros(instant + timedelta(seconds=1)))
        seconds = time.perf_counter() - started
    if document["measured_at"] != format_micros(to_micros(instant)):
        raise RuntimeError("the quality document was measured again, not read from the store")
    return seconds


def server_scheduler(engine: Engine) -> Scheduler:
    """The scheduler as `execmetrics serve` makes it: sharing the server's snapshot of the
    movement ledger (one per data version), here a new, empty one, so that a cycle at a new
    data version reads the ledger as the server does after an ingestion."""
    config = SchedulerConfig(context=CONTEXT, time_zone="UTC")
    return Scheduler(engine, config, ledger=DocumentCache().ledger)


def one_cycle(scheduler: Scheduler, now: int) -> dict[str, Any]:
    TIMERS.reset()
    resident = memory_kb("VmRSS")
    reset = reset_peak_memory()
    started = time.perf_counter()
    report = scheduler.evaluate(now)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "split": TIMERS.snapshot(),
        # Others' work on the machine during the cycle shows here: the benchmark uses one core.
        "load_average_after": os.getloadavg(),
        "rss_before_kb": resident,
        "peak_rss_kb": memory_kb("VmHWM") if reset else None,
        "report": {
            "evaluated": report.evaluated,
            "unchanged": report.unchanged,
            "fired": report.fired,
            "resolved": report.resolved,
            "queued": report.queued,
            "errors": report.errors[:20],
        },
    }


def check_cycles(cycles: dict[str, Any], context: RunContext) -> list[str]:
    """The cycles did the work they are timed for (a no-op would flatter the timing)."""
    problems = []
    now_only = context.measured_now_kpis  # quality KPIs: the current period only
    history = (context.kpis - now_only) * HISTORY_PERIODS + now_only
    # The first evaluation stores every period; at a new data version the current period's
    # value is stored again (a quality score's only when it changed), and an earlier
    # period's when it changed.
    expected = {key: (history, history) for key in ("first", "again", "hourly")}
    expected["ingested"] = (history + context.kpis - now_only, 2 * history)
    # (e) evaluates while the new report is being measured: the quality KPIs read the last.
    expected["overlap"] = (
        expected["ingested"][0] + context.kpis - now_only,
        expected["ingested"][1] + history,
    )
    for key, (fewest, most) in expected.items():
        found = cycles.get(key, {}).get("counts", {}).get("kpi_values")
        if found is not None and not fewest <= found <= most:
            between = f"{fewest}" if fewest == most else f"{fewest} to {most}"
            problems.append(f"{key}: {found} KPI values stored, expected {between}")
    if "first" in cycles:
        instances = sum(cycles["first"]["counts"]["alert_instances"].values())
        if instances < context.rule_instances:
            problems.append(
                f"first: {instances} alert instances, expected {context.rule_instances}"
            )
        if "kpi_evaluation" not in cycles["first"]["split"]:
            problems.append("first: the KPIs were not evaluated")
    if "again" in cycles and "kpi_evaluation" in cycles["again"]["split"]:
        problems.append("again: the KPIs were evaluated again at the same data version")
    for key in ("hourly", *INGESTED_BEFORE):
        if key in cycles and "kpi_evaluation" not in cycles[key]["split"]:
            problems.append(f"{key}: the KPIs were not evaluated")
    for key, figures in cycles.items():
        if figures["report"]["errors"]:
            problems.append(f"{key}: cycle errors: {figures['report']['errors'][:3]}")
    return problems


def profile_first_cycle(
    databases: Databases, configured: str, context: RunContext
) -> dict[str, Any]:
    """One more first cycle, under cProfile (which slows it): the functions by cumulative and
    by own time."""
    with databases.copy(configured, "profile") as name:
        engine = open_database(databases.app_url(name))
        try:
            scheduler = server_scheduler(engine)
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.enable()
            scheduler.evaluate(to_micros(context.instant))
            profiler.disable()
            seconds = time.perf_counter() - started
        finally:
            engine.dispose()
    path = context.work_dir / f"profile-{databases.kind}-first-cycle.prof"
    profiler.dump_stats(path)
    listings = {}
    for order, count in (("cumulative", 40), ("tottime", 25)):
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats(order).print_stats(count)
        listings[order] = buffer.getvalue()
        log(f"{databases.kind}: first cycle under cProfile, by {order}:\n{buffer.getvalue()}")
    return {"seconds_under_profiler": seconds, "stats_file": str(path), **listings}


# --------------------------------------------------------------------------- dispatcher


def serve_smtp(ca_file: str, cert_file: str, key_file: str, pipe: Pipe) -> None:
    """The SMTP server's process: serves, telling the CPU time it has used when asked, until
    asked for the Message-ID of every message it accepted."""
    from tests.notify.servers import TlsFiles, smtp_server

    # aiosmtpd logs a deprecation warning for every AUTH.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    tls = TlsFiles(Path(ca_file), Path(cert_file), Path(key_file))
    with smtp_server(tls) as server:
        pipe.send((server.port, server.username, server.password))
        try:
            while pipe.recv() == "cpu":
                pipe.send(time.process_time())
        except EOFError:  # the benchmark stopped without asking
            return
        pipe.send([str(mail.parsed()["Message-ID"]) for mail in server.received])


@dataclass
class SmtpProcess:
    port: int
    username: str
    password: str
    pipe: Pipe

    def cpu_seconds(self) -> float:
        self.pipe.send("cpu")
        return float(self.pipe.recv())

    def message_ids(self) -> list[str]:
        self.pipe.send("report")
        if not self.pipe.poll(120):
            raise RuntimeError("the SMTP server did not report what it received")
        ids: list[str] = self.pipe.recv()
        return ids


@contextmanager
def smtp_process(tls_dir: Path) -> Iterator[SmtpProcess]:
    from tests.notify.servers import make_tls_files

    ca, cert, key = tls_dir / "ca.pem", tls_dir / "server.pem", tls_dir / "server.key"
    if not ca.exists():
        tls_dir.mkdir(parents=True, exist_ok=True)
        make_tls_files(tls_dir)
    spawn = multiprocessing.get_context("spawn")
    ours, theirs = spawn.Pipe()
    process = spawn.Process(
        target=serve_smtp, args=(str(ca), str(cert), str(key), theirs), daemon=True
    )
    process.start()
    try:
        if not ours.poll(120):
            raise RuntimeError("the SMTP server did not start")
        port, username, password = ours.recv()
        yield SmtpProcess(port, username, password, ours)
    finally:
        ours.close()  # a server still waiting to be asked stops
        process.join(30)
        if process.is_alive():
            process.terminate()
            process.join(10)


def alert_email(key: str, number: int) -> Message:
    """An alert email as the engine writes one: a critical threshold rule firing."""
    rule = AlertRule.model_validate(
        {
            "name": f"mrr-floor-{number % 50}",
            "description": "MRR fell below the floor the board agreed for the quarter.",
            "kpi": "mrr",
            "severity": "critical",
            "condition": {"kind": "threshold", "below": "200000000"},
            "notify": [f"channel:{EMAIL_CHANNEL}"],
        }
    )
    instance = Instance(
        phase=State.FIRING, since=to_micros(datetime.now(UTC)), firing_since=None, episode=1
    )
    outcome = Outcome(
        True,
        Fraction(195_000_000 + number),
        Fraction(200_000_000),
        f"GBP {1_950_000 + number / 100:,.2f} is below the threshold of GBP 2,000,000.00.",
    )
    return alert_message(
        CONTEXT, rule, number, instance, Event.FIRING, {"kpi": "mrr", "team": "finance"},
        outcome, key=key,
    )  # fmt: skip


def dispatch_run(
    engine: Engine,
    admin: Engine,
    tls_dir: Path,
    count: int,
    run_number: int,
    timeout: float,
    profile: bool = False,
) -> dict[str, Any]:
    keys = [f"bench:dispatch:{run_number}:{number}" for number in range(1, count + 1)]
    with smtp_process(tls_dir) as server:
        channel = parse_channel(
            {
                "kind": "email", "host": "127.0.0.1", "port": server.port,
                "security": "starttls", "username": server.username,
                "password": server.password, "sender": SENDER, "to": [TEAM_ADDRESS],
                "ca_file": str(tls_dir / "ca.pem"),
            }
        )  # fmt: skip
        messages = [alert_email(key, number) for number, key in enumerate(keys, start=1)]
        started = time.perf_counter()
        with admin.begin() as connection:
            queued = sum(enqueue(connection, message, EMAIL_CHANNEL) for message in messages)
        queue_seconds = time.perf_counter() - started
        lookup = {EMAIL_CHANNEL: channel}.get
        server_cpu = server.cpu_seconds()
        our_cpu = time.process_time()
        profiling = profiled_dispatcher() if profile else nullcontext(None)
        started = time.perf_counter()
        with profiling as profiler:
            delivered, retrying, dead, calls = deliver_all(engine, lookup, count, timeout)
        seconds = time.perf_counter() - started
        our_cpu = time.process_time() - our_cpu
        server_cpu = server.cpu_seconds() - server_cpu
        received = server.message_ids()
    expected = {message_id(key, SENDER) for key in keys}
    with admin.connect() as connection:
        n = notifications.c
        statuses: dict[str, int] = dict(
            connection.execute(
                select(n.status, func.count())
                .where(n.idempotency_key.startswith(f"bench:dispatch:{run_number}:"))
                .group_by(n.status)
            ).all()
        )
    checks = []
    if queued != count:
        checks.append(f"{queued} of {count} notifications queued")
    if delivered != count:
        checks.append(f"{delivered} of {count} delivered within {timeout} s")
    if len(received) != count or set(received) != expected:
        checks.append(
            f"the SMTP server received {len(received)} messages, {len(set(received))} distinct "
            f"Message-IDs, {len(set(received) & expected)} of the {count} expected"
        )
    listings = {}
    if profiler is not None:
        what = f"{count:,} emails dispatched (all threads; times add up across threads)"
        listings = profile_listings([profiler, *ProfilingPool.profiles], what)
    return {
        "queue_seconds": queue_seconds,
        "seconds": seconds,
        "per_second": delivered / seconds if seconds else None,
        "profile": listings,
        "delivered": delivered,
        "retrying": retrying,
        "dead": dead,
        "dispatch_calls": calls,
        "dispatcher_cpu_seconds": our_cpu,
        "smtp_server_cpu_seconds": server_cpu,
        "received": len(received),
        "distinct_message_ids": len(set(received)),
        "expected_message_ids_received": len(set(received) & expected),
        "statuses": {str(status): int(number) for status, number in statuses.items()},
        "checks_failed": checks,
    }


class ProfilingPool(ThreadPoolExecutor):
    """A thread pool whose every task runs under a cProfile profiler of its own thread (a
    profiler sees only the thread that enabled it)."""

    profiles: ClassVar[list[cProfile.Profile]] = []

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        def profiled(*inner_args: P.args, **inner_kwargs: P.kwargs) -> T:
            profiler = cProfile.Profile()
            profiler.enable()
            try:
                return fn(*inner_args, **inner_kwargs)
            finally:
                profiler.disable()
                ProfilingPool.profiles.append(profiler)

        return super().submit(profiled, *args, **kwargs)


@contextmanager
def profiled_dispatcher() -> Iterator[cProfile.Profile]:
    """The dispatcher's own thread under the profiler given, and the threads of its pool
    under theirs (outbox.py's ThreadPoolExecutor replaced for the while)."""
    ProfilingPool.profiles = []
    name = "ThreadPoolExecutor"  # what dispatch_due makes its pool with
    original = getattr(outbox_module, name)
    setattr(outbox_module, name, ProfilingPool)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield profiler
    finally:
        profiler.disable()
        setattr(outbox_module, name, original)


def deliver_all(
    engine: Engine, lookup: Callable[[str], Any], count: int, timeout: float
) -> tuple[int, int, int, list[dict[str, Any]]]:
    """`dispatch_due` until `count` notifications are delivered or dead: delivered,
    retrying (attempts that failed and were retried), dead, and each call's figures."""
    delivered = retrying = dead = 0
    calls: list[dict[str, Any]] = []
    started = time.perf_counter()
    while delivered + dead < count and time.perf_counter() - started < timeout:
        call_started = time.perf_counter()
        report = dispatch_due(engine, lookup, ALLOW, limit=count)
        calls.append(
            {
                "seconds": time.perf_counter() - call_started,
                "delivered": report.delivered,
                "retrying": report.retrying,
                "dead": report.dead,
                "errors": report.errors[:5],
            }
        )
        delivered += report.delivered
        retrying += report.retrying
        dead += report.dead
        if not (report.delivered or report.retrying or report.dead):
            time.sleep(0.2)  # what is left waits for its retry
    return delivered, retrying, dead, calls


def profile_listings(profilers: Sequence[cProfile.Profile], what: str) -> dict[str, str]:
    listings = {}
    for order, lines in (("cumulative", 40), ("tottime", 25)):
        buffer = io.StringIO()
        stats = pstats.Stats(profilers[0], stream=buffer)
        for other in profilers[1:]:
            stats.add(other)
        stats.strip_dirs().sort_stats(order).print_stats(lines)
        listings[order] = buffer.getvalue()
        log(f"{what} under cProfile, by {order}:\n{buffer.getvalue()}")
    return listings


def bench_dispatch(databases: Databases, context: RunContext) -> dict[str, Any]:
    name = databases.create("dispatch")
    admin = open_database(databases.admin_url(name))  # creates the schema
    engine = open_database(databases.app_url(name))
    runs = []
    try:
        for run_number in range(1, context.repeat + 1):
            log(f"{databases.kind}: dispatching {context.notifications:,} emails, run {run_number}")
            figures = dispatch_run(
                engine,
                admin,
                context.work_dir / "tls",
                context.notifications,
                run_number,
                context.dispatch_timeout,
            )
            log(
                f"{databases.kind}: {figures['delivered']:,} delivered in "
                f"{figures['seconds']:.2f} s; the SMTP server saw "
                f"{figures['distinct_message_ids']:,} distinct Message-IDs"
            )
            runs.append(figures)
        profile: dict[str, Any] = {}
        if context.arguments.profile:
            log(f"{databases.kind}: dispatching {context.notifications:,} more, under cProfile")
            profiled = dispatch_run(
                engine,
                admin,
                context.work_dir / "tls",
                context.notifications,
                context.repeat + 1,
                context.dispatch_timeout,
                profile=True,
            )
            profile = {"seconds_under_profiler": profiled["seconds"], **profiled["profile"]}
    finally:
        engine.dispose()
        admin.dispose()
        databases.drop(name)
    return {
        "runs": runs,
        "profile": profile,
        "seconds": summary([run["seconds"] for run in runs]),
        "per_second": summary([run["per_second"] or 0.0 for run in runs]),
        "queue_seconds": summary([run["queue_seconds"] for run in runs]),
        "dispatcher_cpu_seconds": summary([run["dispatcher_cpu_seconds"] for run in runs]),
        "smtp_server_cpu_seconds": summary([run["smtp_server_cpu_seconds"] for run in runs]),
        "distinct_message_ids": min(run["distinct_message_ids"] for run in runs),
        "checks_failed": [
            f"run {i}: {c}" for i, r in enumerate(runs, 1) for c in r["checks_failed"]
        ],
    }


# --------------------------------------------------------------------------- one database


@dataclass
class RunContext:
    arguments: argparse.Namespace
    work_dir: Path
    files: Path
    new_events: Path
    overlap_events: Path
    instant: datetime
    config: str | None = None
    config_description: dict[str, Any] = field(default_factory=dict)

    @property
    def repeat(self) -> int:
        return int(self.arguments.repeat)

    @property
    def kpis(self) -> int:
        return int(self.config_description.get("kpis", self.arguments.kpis))

    @property
    def measured_now_kpis(self) -> int:
        """The KPIs (quality scores) that store their current period only."""
        return int(self.config_description.get("measured_now_kpis", 0))

    @property
    def rule_instances(self) -> int:
        return int(self.config_description.get("alert_instances_expected", 0))

    @property
    def notifications(self) -> int:
        return int(self.arguments.notifications)

    @property
    def dispatch_timeout(self) -> float:
        return float(self.arguments.dispatch_timeout)


def config_cache(context: RunContext) -> Path:
    a = context.arguments
    return context.work_dir / (
        f"alerting-c{a.customers}-m{a.months}-s{a.seed}-{a.end_month}-k{a.kpis}-r{a.rules}.yaml"
    )


def bench_database(databases: Databases, context: RunContext) -> dict[str, Any]:
    kind = databases.kind
    result: dict[str, Any] = {}
    if "cycles" in context.arguments.parts:
        a = context.arguments
        cached = (
            context.work_dir / f"demo-c{a.customers}-m{a.months}-s{a.seed}-{a.end_month}.sqlite3"
        )
        data, result["demo_ingest"] = ingest_demo(
            databases, context.files, cached if context.arguments.work_dir else None
        )
        if context.config is None:
            cache = config_cache(context)
            if cache.exists() and cache.with_suffix(".json").exists():
                log(f"reusing the configuration in {cache}")
                context.config = cache.read_text(encoding="utf-8")
                context.config_description = json.loads(cache.with_suffix(".json").read_text())
            else:
                engine = open_database(databases.admin_url(data))
                try:
                    context.config, context.config_description = build_configuration(
                        engine, context.arguments, context.instant
                    )
                finally:
                    engine.dispose()
                cache.write_text(context.config, encoding="utf-8")
                cache.with_suffix(".json").write_text(
                    json.dumps(context.config_description, indent=2, default=str)
                )
        log(
            f"{kind}: applying {context.config_description['kpis']} KPIs and "
            f"{context.config_description['rules']} rules"
        )
        result["apply"] = apply_configuration(databases.admin_url(data), context.config)
        log(
            f"{kind}: parsed in {result['apply']['parse_seconds']:.2f} s, applied in "
            f"{result['apply']['apply_seconds']:.2f} s"
        )
        runs = []
        for run_number in range(1, context.repeat + 1):
            runs.append(run_cycles(databases, data, context, run_number))
        result["runs"] = runs
        result["cycles"] = {
            key: cycle_summary([run["cycles"][key] for run in runs]) for key, _, _ in CYCLES
        }
        result["new_events_ingest_seconds"] = summary(
            [run["new_events_ingest_seconds"] for run in runs]
        )
        result["checks_failed"] = [
            f"run {i}: {problem}"
            for i, run in enumerate(runs, 1)
            for problem in run["checks_failed"]
        ]
        cycles = [run["cycles"][key] for run in runs for key in run["cycles"]]
        measured = [c for c in cycles if c["peak_rss_kb"] and c["rss_before_kb"]]
        result["memory"] = {
            "peak_rss_kb": max(c["peak_rss_kb"] for c in measured),
            "growth_kb": max(c["peak_rss_kb"] - c["rss_before_kb"] for c in measured),
        } if measured else None  # fmt: skip
        if context.arguments.profile:
            result["profile"] = profile_first_cycle(databases, data, context)
        databases.drop(data)
    if "dispatch" in context.arguments.parts:
        result["dispatch"] = bench_dispatch(databases, context)
    for problem in all_checks(result):
        log(f"{kind}: CHECK FAILED: {problem}")
    return result


def cycle_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    labels = sorted({label for run in runs for label in run["split"]})
    peaks = [run["peak_rss_kb"] for run in runs if run["peak_rss_kb"] is not None]
    quality = [run["quality_report_seconds"] for run in runs if run["quality_report_seconds"]]
    served = [run["quality_document_seconds"] for run in runs if run["quality_document_seconds"]]
    both = [run["both_seconds"] for run in runs if "both_seconds" in run]
    return {
        "seconds": summary([run["seconds"] for run in runs]),
        "split": {
            label: {
                "median_seconds": statistics.median(
                    run["split"].get(label, {}).get("seconds", 0.0) for run in runs
                ),
                "calls": max(int(run["split"].get(label, {}).get("calls", 0)) for run in runs),
            }
            for label in labels
        },
        "peak_rss_kb": max(peaks) if peaks else None,
        "quality_report_seconds": summary(quality) if quality else None,
        "quality_document_seconds": summary(served) if served else None,
        "both_seconds": summary(both) if both else None,
        "report": runs[-1]["report"],
        "counts": runs[-1]["counts"],
    }


# --------------------------------------------------------------------------- the table


@dataclass
class Row:
    measurement: str
    cells: dict[str, str]
    target: str = ""
    met: dict[str, bool | None] = field(default_factory=dict)

    def markdown(self, kinds: Sequence[str]) -> str:
        values = [self.cells.get(kind, "n/a") for kind in kinds]
        verdicts = [self.met.get(kind) for kind in kinds]
        if all(verdict is None for verdict in verdicts):
            met = ""
        else:
            met = " / ".join("-" if v is None else ("yes" if v else "no") for v in verdicts)
        return "| " + " | ".join([self.measurement, *values, self.target, met]) + " |"


def seconds_text(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def milliseconds_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.1f} ms"


def dig(result: dict[str, Any], *path: str) -> Any:
    """result[path[0]][path[1]]...; None where the path does not lead."""
    found: Any = result
    for key in path:
        if not isinstance(found, dict) or key not in found:
            return None
        found = found[key]
    return found


def table_rows(results: dict[str, dict[str, Any]], context: RunContext) -> list[Row]:
    kinds = [kind for kind in results if "error" not in results[kind]]
    described = context.config_description

    def cells(show: Callable[[Any], str], *path: str) -> dict[str, str]:
        values = {kind: dig(results[kind], *path) for kind in kinds}
        return {kind: "n/a" if v is None else show(v) for kind, v in values.items()}

    def under(limit: float, *path: str) -> dict[str, bool | None]:
        values = {kind: dig(results[kind], *path) for kind in kinds}
        return {kind: None if v is None else v < limit for kind, v in values.items()}

    rows: list[Row] = []
    if any("cycles" in results[kind] for kind in kinds):
        rows += [
            Row(
                "demo company ingest, CLI (setup)",
                cells(lambda d: "reused" if "reused" in d else seconds_text(d["seconds"]),
                      "demo_ingest"),
            ),
            Row(
                f"parse + apply {described.get('kpis')} KPIs and {described.get('rules')} rules "
                "(`parse_declared`, `apply_declared`)",
                cells(lambda d: f"{seconds_text(d['parse_seconds'])} + "
                      f"{seconds_text(d['apply_seconds'])}", "apply"),
            ),
        ]  # fmt: skip
        for key, title, _ in CYCLES:
            limit = TARGET_CYCLE_SECONDS if key in TIMED_WITH_TARGET else None
            rows.append(
                Row(
                    f"{title}, median of {context.repeat}",
                    cells(seconds_text, "cycles", key, "seconds", "median"),
                    "" if limit is None else f"< {limit:g} s",
                    {} if limit is None else under(limit, "cycles", key, "seconds", "median"),
                )
            )
            letter = title.split()[0]
            if key == "overlap":
                rows += [
                    Row(
                        "... the data quality report measured meanwhile in the other thread "
                        "(`refresh_quality_if_due`)",
                        cells(seconds_text, "cycles", key, "quality_report_seconds", "median"),
                    ),
                    Row(
                        "... until both were done",
                        cells(seconds_text, "cycles", key, "both_seconds", "median"),
                    ),
                ]
            elif any(dig(results[kind], "cycles", key, "quality_report_seconds") for kind in kinds):
                rows.append(
                    Row(
                        f"data quality report measured before {letter} (the analytics job's "
                        "`refresh_quality_if_due`, not part of the cycle)",
                        cells(seconds_text, "cycles", key, "quality_report_seconds", "median"),
                    )
                )
                rows.append(
                    Row(
                        "... the quality document served from it (`quality_of`, as the "
                        "quality command, API and page do)",
                        cells(milliseconds_text, "cycles", key, "quality_document_seconds",
                              "median"),
                    )
                )  # fmt: skip
            for label, what in SPLIT_ROWS:
                if any(dig(results[kind], "cycles", key, "split", label) for kind in kinds):
                    rows.append(
                        Row(f"{letter} {what}", cells(split_text, "cycles", key, "split", label))
                    )
            if key == "hourly":
                rows.append(
                    Row(
                        f"{context.arguments.new_events} new events, `ingest_files` (before (c))",
                        cells(seconds_text, "new_events_ingest_seconds", "median"),
                    )
                )
        rows += [
            Row(
                "peak resident memory of the process during a cycle (VmHWM), and its growth "
                "during the cycle",
                cells(memory_text, "memory"),
            ),
            Row(
                "alerts fired / notifications queued by (a)",
                cells(lambda r: f"{r['fired']:,} / {r['queued']:,}", "cycles", "first", "report"),
            ),
        ]
    if any("dispatch" in results[kind] for kind in kinds):
        count = context.notifications
        rows += [
            Row(
                f"queue {count:,} notifications (`enqueue`, one transaction)",
                cells(seconds_text, "dispatch", "queue_seconds", "median"),
            ),
            Row(
                f"deliver {count:,} emails, STARTTLS + AUTH (`dispatch_due`), "
                f"median of {context.repeat}",
                cells(seconds_text, "dispatch", "seconds", "median"),
                f"< {TARGET_DISPATCH_SECONDS:g} s",
                under(TARGET_DISPATCH_SECONDS, "dispatch", "seconds", "median"),
            ),
            Row(
                "CPU during delivery: dispatcher process + SMTP server process, median",
                cells(cpu_text, "dispatch"),
            ),
            Row(
                "delivery throughput, median",
                cells(lambda rate: f"{rate:,.0f} emails/s", "dispatch", "per_second", "median"),
            ),
            Row(
                "distinct Message-IDs the SMTP server received (fewest of the runs)",
                cells(lambda ids: f"{ids:,}", "dispatch", "distinct_message_ids"),
                f"{count:,}",
                {
                    kind: dig(results[kind], "dispatch", "distinct_message_ids") == count
                    for kind in kinds
                },
            ),
        ]
    for kind, result in results.items():
        if "error" in result:
            rows.append(Row(f"{kind}: FAILED: {result['error'][:80]}", {}))
        failed = all_checks(result)
        if failed:
            rows.append(Row(f"{kind}: sanity checks failed: {len(failed)}", {}, "0", {kind: False}))
    return rows


SPLIT_ROWS = (
    ("load_ledger", "movement ledger read (`load_ledger`)"),
    ("kpi_evaluation", "KPI evaluation (`record_evaluations`)"),
    ("compute_metrics", "... in metrics computations (`compute_metrics`)"),
    ("rule_evaluation", "rule evaluation (`evaluate_rules`)"),
    ("check_anomaly", "... in anomaly conditions (`check_anomaly`)"),
    ("digests", "digests (`queue_due_digests`)"),
)


def memory_text(memory: dict[str, int]) -> str:
    peak, growth = memory["peak_rss_kb"] * 1024 / 1e6, memory["growth_kb"] * 1024 / 1e6
    return f"{peak:,.0f} MB (+{growth:,.0f} MB)"


def cpu_text(dispatch: dict[str, Any]) -> str:
    ours = dispatch["dispatcher_cpu_seconds"]["median"]
    theirs = dispatch["smtp_server_cpu_seconds"]["median"]
    return f"{seconds_text(ours)} + {seconds_text(theirs)}"


def all_checks(result: dict[str, Any]) -> list[str]:
    checks: list[str] = result.get("checks_failed", [])
    return checks + list(dig(result, "dispatch", "checks_failed") or [])


def split_text(found: dict[str, Any]) -> str:
    """The median seconds of one part of a cycle, with its calls when there are several."""
    calls = int(found["calls"])
    times = f" ({calls} calls)" if calls > 1 else ""
    return f"{seconds_text(found['median_seconds'])}{times}"


def markdown(rows: list[Row], kinds: Sequence[str]) -> str:
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    header = ["measurement", *(names.get(kind, kind) for kind in kinds), "target", "met"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *(row.markdown(kinds) for row in rows),
    ]
    return "\n".join(lines)


def machine_line(machine: dict[str, Any]) -> str:
    memory = machine.get("memory_total_gib")
    postgres = machine.get("postgresql")
    return (
        f"Machine: {machine.get('cpu_model')}, {machine.get('cpu_count')} cores, "
        f"{memory} GiB, {machine.get('platform')}; Python {machine.get('python')}, "
        f"SQLite {machine.get('sqlite')}"
        + (f", PostgreSQL {postgres} on the same machine" if postgres else "")
        + f"; commit {machine.get('git_commit')}"
        + (" with uncommitted changes" if machine.get("git_dirty") else "")
        + "."
    )


# --------------------------------------------------------------------------- main


def reproduce_command(arguments: argparse.Namespace) -> str:
    command = (
        ".venv/bin/python bench/alerting.py"
        f" --customers {arguments.customers} --months {arguments.months}"
        f" --seed {arguments.seed} --end-month {arguments.end_month}"
        f" --databases {','.join(arguments.databases)} --kpis {arguments.kpis}"
        f" --rules {arguments.rules} --new-events {arguments.new_events}"
        f" --notifications {arguments.notifications} --repeat {arguments.repeat}"
        f" --parts {','.join(arguments.parts)}"
    )
    return command + (" --profile" if arguments.profile else "")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    # Stopped with SIGTERM, the run still drops its PostgreSQL databases and removes its files.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    keep = arguments.work_dir is not None
    work_dir = (
        arguments.work_dir
        if arguments.work_dir is not None
        else Path(tempfile.mkdtemp(prefix="execmetrics-bench-alerting-"))
    )
    work_dir = work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        return run(arguments, work_dir, started_at)
    finally:
        if not keep:
            shutil.rmtree(work_dir, ignore_errors=True)


def run(arguments: argparse.Namespace, work_dir: Path, started_at: str) -> int:
    instrument()
    # The code measured is the code imported now: others may commit while this runs.
    commit, dirty = git_commit(), git_dirty()
    instant = evaluation_instant(arguments.end_month)
    files, new_events = work_dir / "demo", work_dir / "new_events"
    overlap_events = work_dir / "overlap_events"
    demo: dict[str, Any] = {}
    if "cycles" in arguments.parts:  # the dispatcher needs no demo company
        files, demo = demo_files(arguments, work_dir)
        template = files / "subscription_events.csv"
        write_new_events(
            new_events, template, arguments.new_events, instant + timedelta(minutes=56), ""
        )
        write_new_events(
            overlap_events, template, arguments.new_events, instant + timedelta(minutes=58),
            "overlap_",
        )  # fmt: skip
    context = RunContext(arguments, work_dir, files, new_events, overlap_events, instant)
    results: dict[str, dict[str, Any]] = {}
    postgres_version: str | None = None
    for kind in arguments.databases:
        databases = Databases(kind, work_dir, arguments.postgres_url)
        try:
            results[kind] = bench_database(databases, context)
        except Exception as error:  # one database failing must not hide the other's figures
            log(f"{kind}: FAILED: {error!r}\n{traceback.format_exc()}")
            results[kind] = {
                "error": str(error).splitlines()[0] if str(error) else repr(error),
                "detail": str(error),
            }
        finally:
            databases.drop_all()
            postgres_version = databases.server_version or postgres_version

    machine = machine_info(postgres_version) | {"git_commit": commit, "git_dirty": dirty}
    rows = table_rows(results, context)
    kinds = list(results)
    document = {
        "benchmark": "alerting",
        "started_at": started_at,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": reproduce_command(arguments),
        "parameters": {
            key: value if isinstance(value, int | str | list | bool) else str(value)
            for key, value in vars(arguments).items()
        }
        | {
            "postgres_url": redact([arguments.postgres_url])[0],
            "evaluated_at": instant.isoformat(),
            "history_periods": HISTORY_PERIODS,
            "cycles": {key: str(offset) for key, _, offset in CYCLES},
        },
        "machine": machine,
        "demo": demo,
        "configuration": context.config_description,
        "results": results,
        "table": [row.__dict__ for row in rows],
    }
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    log(f"results written to {arguments.out}")
    sys.stdout.write(machine_line(machine) + "\n\n" + markdown(rows, kinds) + "\n")
    failed = any("error" in result or all_checks(result) for result in results.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
