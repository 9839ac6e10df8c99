"""Ingesting input files: all or nothing, idempotent by id, ledger rebuilt for what changed."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, select, tuple_

from execmetrics.fx import FxRates, load_fx_rates
from execmetrics.ingest.problems import IngestError, Problem, ProblemLog, RowError
from execmetrics.ingest.readers import KINDS, SUFFIXES, FileError, Row, kind_of, read_rows
from execmetrics.ingest.rows import EVENT_COLUMNS, PARSERS, REQUIRED_COLUMNS
from execmetrics.ledger.service import LedgerCounts, problem_at, rebuild_ledger
from execmetrics.money import parse_rate
from execmetrics.settings_store import reporting_currency
from execmetrics.store.bulk import bulk_insert
from execmetrics.store.tables import (
    customers,
    fx_rates,
    ingestions,
    marketing_spend,
    subscription_events,
)
from execmetrics.timeutil import date_to_micros, to_micros

BATCH = 5000
# The column a duplicate-with-different-content problem is reported against.
CONFLICT_COLUMNS = {
    "customers": "customer_id",
    "subscription_events": "event_id",
    "fx_rates": "rate",
    "marketing_spend": "amount_minor",
}
CUSTOMER_FIELDS = (
    "customer_id",
    "name",
    "created_at",
    "country",
    "segment",
    "employees",
    "acquisition_source",
    "acquisition_campaign",
    "attributes",
)
STORED_EVENT_COLUMNS = (
    "event_id",
    "customer_key",
    "subscription_id",
    "occurred_at",
    "type",
    "plan_id",
    "tier",
    "amount_minor",
    "quantity",
    "currency",
    "interval",
    "interval_count",
    "trial_ends_at",
    "ingestion_id",
    "source",
)


@dataclass
class KindCounts:
    received: int = 0
    inserted: int = 0
    unchanged: int = 0


@dataclass
class IngestResult:
    ingestion_id: int
    counts: dict[str, KindCounts]
    ledger: LedgerCounts
    seconds: float


@dataclass
class IngestProgress:
    """Callbacks for a progress display; every one is optional."""

    on_file: Callable[[str, Path], None] | None = None
    on_rows: Callable[[int], None] | None = None
    on_ledger_start: Callable[[int], None] | None = None
    on_ledger: Callable[[int], None] | None = None


@dataclass
class _Batch:
    kind: str
    source: str
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


def input_files(paths: Iterable[Path]) -> list[tuple[str, Path]]:
    """(kind, file) pairs in ingestion order, from files and directories given by the user."""
    found: list[tuple[str, Path]] = []
    problems: list[Problem] = []
    for path in paths:
        if not path.exists():
            problems.append(Problem(str(path), None, None, "no such file or directory"))
            continue
        candidates = sorted(path.iterdir()) if path.is_dir() else [path]
        for candidate in candidates:
            if not candidate.name.removesuffix(".gz").endswith(SUFFIXES):
                if not path.is_dir():
                    problems.append(
                        Problem(
                            str(candidate),
                            None,
                            None,
                            "expected a .csv, .jsonl or .ndjson file (.gz allowed)",
                        )
                    )
                continue
            kind = kind_of(candidate)
            if kind is None:
                problems.append(
                    Problem(
                        str(candidate),
                        None,
                        None,
                        f"unknown data set; name the file after one of {', '.join(KINDS)}",
                    )
                )
                continue
            found.append((kind, candidate))
    if not found and not problems:
        problems.append(
            Problem(", ".join(str(p) for p in paths), None, None, "no input files found")
        )
    if problems:
        raise IngestError(problems)
    return sorted(found, key=lambda item: KINDS.index(item[0]))


def ingest_files(
    engine: Engine,
    paths: Iterable[Path],
    actor: str = "cli",
    progress: IngestProgress | None = None,
) -> IngestResult:
    files = input_files(paths)
    return ingest_sources(
        engine, [(kind, str(path), _file_rows(path)) for kind, path in files], actor, progress
    )


def ingest_sources(
    engine: Engine,
    sources: list[tuple[str, str, Iterable[tuple[int, Row | RowError]]]],
    actor: str = "cli",
    progress: IngestProgress | None = None,
) -> IngestResult:
    """Ingest (kind, source name, rows) in one transaction; raises IngestError, writing nothing."""
    started = time.perf_counter()
    progress = progress or IngestProgress()
    problems = ProblemLog()
    counts = {kind: KindCounts() for kind in KINDS}
    with engine.begin() as connection:
        ingestion_id = _start_ingestion(connection, actor, [name for _, name, _ in sources])
        store = _Store(connection, ingestion_id, problems)
        for kind, name, rows in sorted(sources, key=lambda item: KINDS.index(item[0])):
            if progress.on_file:
                progress.on_file(kind, Path(name))
            _ingest_rows(store, kind, name, rows, counts[kind], problems, progress)
        fx = load_fx_rates(connection)
        currency = reporting_currency(connection)
        store.check_marketing_fx(fx, currency)
        affected = store.affected_customers()
        if progress.on_ledger_start:
            progress.on_ledger_start(len(affected))
        ledger = rebuild_ledger(connection, affected, fx, currency, problems, progress.on_ledger)
        problems.raise_if_any()
        connection.execute(
            ingestions.update()
            .where(ingestions.c.id == ingestion_id)
            .values(
                finished_at=to_micros_now(),
                counts={k: vars(c) for k, c in counts.items()},
            )
        )
    return IngestResult(ingestion_id, counts, ledger, time.perf_counter() - started)


def to_micros_now() -> int:
    return time.time_ns() // 1000


def _start_ingestion(connection: Connection, actor: str, sources: list[str]) -> int:
    result = connection.execute(
        ingestions.insert().values(
            started_at=to_micros_now(), actor=actor, sources=sources, counts={}
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _file_rows(path: Path) -> Iterable[tuple[int, Row | RowError]]:
    try:
        yield from read_rows(path)
    except FileError as error:
        yield (error.line or 0), error  # type: ignore[misc]


def _ingest_rows(
    store: _Store,
    kind: str,
    name: str,
    rows: Iterable[tuple[int, Row | RowError | FileError]],
    counts: KindCounts,
    problems: ProblemLog,
    progress: IngestProgress,
) -> None:
    parse = PARSERS[kind]
    required = REQUIRED_COLUMNS[kind]
    batch = _Batch(kind, name)
    header_checked = False
    for line, row in rows:
        if isinstance(row, FileError):
            problems.add(Problem(name, row.line, None, row.reason))
            return
        if isinstance(row, RowError):
            problems.add(Problem(name, line, row.column, row.reason))
            continue
        if not header_checked and not name.endswith(
            (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
        ):
            missing = [column for column in required if column not in row]
            for column in missing:
                problems.add(Problem(name, 1, column, "required column missing from the header"))
            if missing:
                return
        header_checked = True
        counts.received += 1
        try:
            batch.rows.append((line, parse(row)))
        except RowError as error:
            reason = error.reason
            if error.column and error.column not in row:
                reason = "required but missing"
            problems.add(Problem(name, line, error.column, reason))
        if len(batch.rows) >= BATCH:
            store.write(batch, counts)
            if progress.on_rows:
                progress.on_rows(len(batch.rows))
            batch.rows.clear()
    if batch.rows:
        store.write(batch, counts)
        if progress.on_rows:
            progress.on_rows(len(batch.rows))


class _Store:
    """Writes validated rows, refusing ids already stored with different content."""

    def __init__(self, connection: Connection, ingestion_id: int, problems: ProblemLog) -> None:
        self.connection = connection
        self.ingestion_id = ingestion_id
        self.problems = problems
        self.event_customers: set[int] = set()
        self.new_fx: dict[str, set[date]] = defaultdict(set)
        self.spend_rows: list[tuple[str, dict[str, Any]]] = []

    def write(self, batch: _Batch, counts: KindCounts) -> None:
        rows = self._unique_in_batch(batch)
        getattr(self, f"_write_{batch.kind}")(batch.source, rows, counts)

    def _key(self, kind: str, record: dict[str, Any]) -> Any:
        if kind == "customers":
            return record["customer_id"]
        if kind == "subscription_events":
            return record["event_id"]
        if kind == "fx_rates":
            return (record["currency"], record["date"])
        return (record["month"], record["source"], record["campaign"])

    def _unique_in_batch(self, batch: _Batch) -> list[tuple[int, dict[str, Any]]]:
        seen: dict[Any, tuple[int, dict[str, Any]]] = {}
        for line, record in batch.rows:
            key = self._key(batch.kind, record)
            if key in seen:
                first_line, first = seen[key]
                if first != record:
                    self.problems.add(
                        Problem(
                            batch.source,
                            line,
                            CONFLICT_COLUMNS[batch.kind],
                            f"{_describe(batch.kind, key)} repeats line "
                            f"{first_line} with different content",
                        )
                    )
                continue
            seen[key] = (line, record)
        return list(seen.values())

    def _conflict(self, source: str, line: int, kind: str, key: Any, stored_at: str) -> None:
        self.problems.add(
            Problem(
                source,
                line,
                CONFLICT_COLUMNS[kind],
                f"{_describe(kind, key)} was already ingested with different "
                f"content (from {stored_at})",
            )
        )

    def _write_customers(
        self, source: str, rows: list[tuple[int, dict[str, Any]]], counts: KindCounts
    ) -> None:
        c = customers.c
        ids = [record["customer_id"] for _, record in rows]
        stored = {
            row.customer_id: row
            for row in self.connection.execute(
                select(*(c[name] for name in CUSTOMER_FIELDS), c.source).where(
                    c.customer_id.in_(ids)
                )
            )
        }
        new = []
        for line, record in rows:
            existing = stored.get(record["customer_id"])
            if existing is None:
                new.append(
                    {**record, "ingestion_id": self.ingestion_id, "source": f"{source}:{line}"}
                )
            elif all(existing._mapping[name] == record[name] for name in CUSTOMER_FIELDS):
                counts.unchanged += 1
            else:
                self._conflict(source, line, "customers", record["customer_id"], existing.source)
        if new:
            self.connection.execute(customers.insert(), new)
        counts.inserted += len(new)

    def _write_subscription_events(
        self, source: str, rows: list[tuple[int, dict[str, Any]]], counts: KindCounts
    ) -> None:
        e = subscription_events.c
        customer_keys = dict(
            self.connection.execute(
                select(customers.c.customer_id, customers.c.id).where(
                    customers.c.customer_id.in_({record["customer_id"] for _, record in rows})
                )
            )
            .tuples()
            .all()
        )
        stored = {
            row.event_id: row
            for row in self.connection.execute(
                select(
                    e.event_id,
                    customers.c.customer_id,
                    *(e[name] for name in EVENT_COLUMNS[2:]),
                    e.source,
                )
                .join_from(subscription_events, customers, customers.c.id == e.customer_key)
                .where(e.event_id.in_([record["event_id"] for _, record in rows]))
            )
        }
        new = []
        for line, record in rows:
            existing = stored.get(record["event_id"])
            if existing is not None:
                if all(existing._mapping[name] == record[name] for name in EVENT_COLUMNS):
                    counts.unchanged += 1
                else:
                    self._conflict(
                        source, line, "subscription_events", record["event_id"], existing.source
                    )
                continue
            customer_key = customer_keys.get(record["customer_id"])
            if customer_key is None:
                self.problems.add(
                    Problem(
                        source, line, "customer_id", f"unknown customer {record['customer_id']!r}"
                    )
                )
                continue
            record.update(
                customer_key=customer_key, ingestion_id=self.ingestion_id, source=f"{source}:{line}"
            )
            new.append(tuple(record[column] for column in STORED_EVENT_COLUMNS))
            self.event_customers.add(customer_key)
        bulk_insert(self.connection, subscription_events, STORED_EVENT_COLUMNS, new)
        counts.inserted += len(new)

    def _write_fx_rates(
        self, source: str, rows: list[tuple[int, dict[str, Any]]], counts: KindCounts
    ) -> None:
        f = fx_rates.c
        keys = [(record["currency"], record["date"]) for _, record in rows]
        stored = {
            (row.currency, row.date): (row.rate, row.source)
            for row in self.connection.execute(
                select(f.currency, f.date, f.rate, f.source).where(
                    tuple_(f.currency, f.date).in_(keys)
                )
            )
        }
        new = []
        for line, record in rows:
            key = (record["currency"], record["date"])
            existing = stored.get(key)
            if existing is None:
                new.append(
                    {**record, "ingestion_id": self.ingestion_id, "source": f"{source}:{line}"}
                )
                self.new_fx[record["currency"]].add(record["date"])
            elif parse_rate(existing[0]) == parse_rate(record["rate"]):
                counts.unchanged += 1
            else:
                self._conflict(source, line, "fx_rates", key, existing[1])
        if new:
            self.connection.execute(fx_rates.insert(), new)
        counts.inserted += len(new)

    def _write_marketing_spend(
        self, source: str, rows: list[tuple[int, dict[str, Any]]], counts: KindCounts
    ) -> None:
        m = marketing_spend.c
        keys = [(r["month"], r["source"], r["campaign"]) for _, r in rows]
        stored = {
            (row.month, row.source, row.campaign): (row.amount_minor, row.currency, row.source_ref)
            for row in self.connection.execute(
                select(
                    m.month, m.source, m.campaign, m.amount_minor, m.currency, m.source_ref
                ).where(tuple_(m.month, m.source, m.campaign).in_(keys))
            )
        }
        new = []
        for line, record in rows:
            key = (record["month"], record["source"], record["campaign"])
            existing = stored.get(key)
            if existing is None:
                new.append(
                    {**record, "ingestion_id": self.ingestion_id, "source_ref": f"{source}:{line}"}
                )
                self.spend_rows.append((f"{source}:{line}", record))
            elif existing[:2] == (record["amount_minor"], record["currency"]):
                counts.unchanged += 1
            else:
                self._conflict(source, line, "marketing_spend", key, existing[2])
        if new:
            self.connection.execute(marketing_spend.insert(), new)
        counts.inserted += len(new)

    def check_marketing_fx(self, fx: FxRates, currency: str) -> None:
        for where, record in self.spend_rows:
            first_day = date.fromisoformat(f"{record['month']}-01")
            if record["currency"] != currency and fx.rate_on(record["currency"], first_day) is None:
                self.problems.add(
                    problem_at(
                        where,
                        "currency",
                        f"no {record['currency']} fx rate on or before {first_day}",
                    )
                )

    def affected_customers(self) -> list[int]:
        """Customers with new events, and those whose events' fx rate a new rate replaces."""
        affected = set(self.event_customers)
        e = subscription_events.c
        for currency, new_days in self.new_fx.items():
            all_days = sorted(
                self.connection.execute(
                    select(fx_rates.c.date).where(fx_rates.c.currency == currency)
                ).scalars()
            )
            for start, end in _new_day_ranges(all_days, new_days):
                condition = and_(e.currency == currency, e.occurred_at >= date_to_micros(start))
                if end is not None:
                    condition = and_(condition, e.occurred_at < date_to_micros(end))
                affected.update(
                    self.connection.execute(
                        select(e.customer_key).where(condition).distinct()
                    ).scalars()
                )
        return sorted(affected)


def _new_day_ranges(all_days: list[date], new_days: set[date]) -> list[tuple[date, date | None]]:
    """Ranges [first new day of a run, next older day or None) in which rates changed."""
    ranges: list[tuple[date, date | None]] = []
    run_start: date | None = None
    for day in all_days:
        if day in new_days:
            run_start = run_start or day
        elif run_start is not None:
            ranges.append((run_start, day))
            run_start = None
    if run_start is not None:
        ranges.append((run_start, None))
    return ranges


def _describe(kind: str, key: Any) -> str:
    labels = {
        "customers": "customer_id",
        "subscription_events": "event_id",
        "fx_rates": "fx rate (currency, date)",
        "marketing_spend": "marketing spend (month, source, campaign)",
    }
    return f"{labels[kind]} {key!r}"


__all__ = [
    "IngestError",
    "IngestProgress",
    "IngestResult",
    "ingest_files",
    "ingest_sources",
    "to_micros",
]
