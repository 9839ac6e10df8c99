"""Ingesting input files: all or nothing, idempotent by id, ledger rebuilt for what changed."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, and_, select

from execmetrics.fx import FxRates, load_fx_rates
from execmetrics.ingest.activity import ActivityStage
from execmetrics.ingest.problems import IngestError, Problem, ProblemLog, RowError
from execmetrics.ingest.readers import (
    KINDS,
    SUFFIXES,
    FileError,
    Record,
    Row,
    kind_of,
    read_records,
    read_rows,
)
from execmetrics.ingest.rows import ACTIVITY_COLUMNS, PARSERS, REQUIRED_COLUMNS
from execmetrics.ingest.staging import DATA_SETS, Stage
from execmetrics.ledger.service import LedgerCounts, rebuild_ledger
from execmetrics.settings_store import reporting_currency
from execmetrics.store.tables import fx_rates, ingestions, subscription_events
from execmetrics.timeutil import date_to_micros, now_micros

BATCH = 5000
JSON_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")


@dataclass
class KindCounts:
    received: int = 0
    inserted: int = 0
    unchanged: int = 0
    updated: int = 0  # stored rows a later version changed (support tickets)


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


Source = tuple[str, str, Iterable[tuple[int, Any]]]  # (kind, name, numbered rows or records)


def ingest_files(
    engine: Engine,
    paths: Iterable[Path],
    actor: str = "cli",
    progress: IngestProgress | None = None,
    keep_activity_rows: bool = False,
) -> IngestResult:
    files = input_files(paths)
    return ingest_sources(
        engine,
        [(kind, str(path), _file_rows(kind, path)) for kind, path in files],
        actor,
        progress,
        keep_activity_rows,
    )


def ingest_sources(
    engine: Engine,
    sources: list[Source],
    actor: str = "cli",
    progress: IngestProgress | None = None,
    keep_activity_rows: bool = False,
) -> IngestResult:
    """Ingest (kind, source name, rows) in one transaction; raises IngestError, writing nothing."""
    with engine.begin() as connection:
        return ingest_in_transaction(connection, sources, actor, progress, keep_activity_rows)


def ingest_in_transaction(
    connection: Connection,
    sources: list[Source],
    actor: str = "cli",
    progress: IngestProgress | None = None,
    keep_activity_rows: bool = False,
) -> IngestResult:
    """Ingest within the caller's transaction, which must be rolled back on IngestError.

    Rows come as dicts (Row), activity events as tuples in ACTIVITY_COLUMNS order (Record:
    see readers.record_of_row). Activity events keep their raw rows only when `keep_activity_rows`.
    """
    started = time.perf_counter()
    progress = progress or IngestProgress()
    problems = ProblemLog()
    counts = {kind: KindCounts() for kind in KINDS}
    ingestion_id = _start_ingestion(connection, actor, [name for _, name, _ in sources])
    stages = {kind: Stage(connection, data_set) for kind, data_set in DATA_SETS.items()}
    ordered = sorted(sources, key=lambda item: KINDS.index(item[0]))
    for kind, name, rows in ordered:
        if kind in stages:
            if progress.on_file:
                progress.on_file(kind, Path(name))
            _stage_rows(stages[kind], name, rows, counts[kind], problems, progress)
    changes = _merge(connection, stages, counts, problems, ingestion_id)
    activity = [(name, rows) for kind, name, rows in ordered if kind == "activity_events"]
    if activity:
        _ingest_activity(
            connection, activity, counts["activity_events"], problems, progress,
            ingestion_id, keep_activity_rows,
        )  # fmt: skip
    fx = load_fx_rates(connection)
    currency = reporting_currency(connection)
    _check_marketing_fx(changes.spend, fx, currency, problems)
    affected = _affected_customers(connection, changes)
    if progress.on_ledger_start:
        progress.on_ledger_start(len(affected))
    ledger = rebuild_ledger(connection, affected, fx, currency, problems, progress.on_ledger)
    problems.raise_if_any()
    for staged in stages.values():
        staged.drop()
    connection.execute(
        ingestions.update()
        .where(ingestions.c.id == ingestion_id)
        .values(finished_at=now_micros(), counts={k: vars(c) for k, c in counts.items()})
    )
    return IngestResult(ingestion_id, counts, ledger, time.perf_counter() - started)


@dataclass
class _Changes:
    """What an ingestion adds that decides which customers' ledgers to rebuild."""

    event_customers: list[int]
    fx_days: dict[str, set[date]]
    spend: list[dict[str, Any]]


def _merge(
    connection: Connection,
    stages: dict[str, Stage],
    counts: dict[str, KindCounts],
    problems: ProblemLog,
    ingestion_id: int,
) -> _Changes:
    changes = _Changes([], defaultdict(set), [])
    for kind, stage in stages.items():
        if not stage.rows:
            continue
        counts[kind].unchanged += stage.refuse_repeats_with_other_content(problems)
        counts[kind].unchanged += stage.set_aside_stored(problems)
        counts[kind].updated += stage.updated
        if stage.data_set.by_customer:
            stage.refuse_unknown_customers(problems)
        if kind == "subscription_events":
            changes.event_customers = stage.customer_keys()
        elif kind == "fx_rates":
            for record in stage.records():
                changes.fx_days[record["currency"]].add(record["date"])
        elif kind == "marketing_spend":
            changes.spend = stage.records()
        counts[kind].inserted += stage.insert_new(ingestion_id)
    return changes


def _ingest_activity(
    connection: Connection,
    sources: list[tuple[str, Iterable[tuple[int, Any]]]],
    counts: KindCounts,
    problems: ProblemLog,
    progress: IngestProgress,
    ingestion_id: int,
    keep_rows: bool,
) -> None:
    stage = ActivityStage(connection)
    for name, rows in sources:
        if progress.on_file:
            progress.on_file("activity_events", Path(name))
        counts.received += stage.add(name, rows, problems, progress.on_rows)
    counts.inserted, counts.unchanged = stage.merge(ingestion_id, problems, keep_rows)
    stage.drop()


def _start_ingestion(connection: Connection, actor: str, sources: list[str]) -> int:
    result = connection.execute(
        ingestions.insert().values(started_at=now_micros(), actor=actor, sources=sources, counts={})
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _file_rows(kind: str, path: Path) -> Iterable[tuple[int, Row | Record | RowError]]:
    try:
        if kind == "activity_events":
            yield from read_records(path, ACTIVITY_COLUMNS, REQUIRED_COLUMNS[kind])
        else:
            yield from read_rows(path)
    except FileError as error:
        yield (error.line or 0), error  # type: ignore[misc]


def _stage_rows(
    stage: Stage,
    name: str,
    rows: Iterable[tuple[int, Row | RowError | FileError]],
    counts: KindCounts,
    problems: ProblemLog,
    progress: IngestProgress,
) -> None:
    parse = PARSERS[stage.data_set.kind]
    required = REQUIRED_COLUMNS[stage.data_set.kind]
    batch: list[tuple[int, dict[str, Any]]] = []
    header_checked = name.endswith(JSON_SUFFIXES)
    for line, row in rows:
        if isinstance(row, FileError):
            problems.add(Problem(name, row.line, None, row.reason))
            return
        if isinstance(row, RowError):
            problems.add(Problem(name, line, row.column, row.reason))
            continue
        if not header_checked:
            missing = [column for column in required if column not in row]
            for column in missing:
                problems.add(Problem(name, 1, column, "required column missing from the header"))
            if missing:
                return
            header_checked = True
        counts.received += 1
        try:
            batch.append((line, parse(row)))
        except RowError as error:
            reason = error.reason
            if error.column and error.column not in row:
                reason = "required but missing"
            problems.add(Problem(name, line, error.column, reason))
        if len(batch) >= BATCH:
            _flush(stage, name, batch, progress)
    _flush(stage, name, batch, progress)


def _flush(
    stage: Stage, name: str, batch: list[tuple[int, dict[str, Any]]], progress: IngestProgress
) -> None:
    if batch:
        stage.add(name, batch)
        if progress.on_rows:
            progress.on_rows(len(batch))
        batch.clear()


def _check_marketing_fx(
    spend: list[dict[str, Any]], fx: FxRates, currency: str, problems: ProblemLog
) -> None:
    for record in spend:
        first_day = date.fromisoformat(f"{record['month']}-01")
        if record["currency"] != currency and fx.rate_on(record["currency"], first_day) is None:
            problems.add(
                Problem(
                    record["source_file"], record["line"], "currency",
                    f"no {record['currency']} fx rate on or before {first_day}",
                )
            )  # fmt: skip


def _affected_customers(connection: Connection, changes: _Changes) -> list[int]:
    """Customers with new events, and those whose events' fx rate a new rate replaces."""
    affected = set(changes.event_customers)
    e = subscription_events.c
    for currency, new_days in changes.fx_days.items():
        all_days = sorted(
            connection.execute(
                select(fx_rates.c.date).where(fx_rates.c.currency == currency)
            ).scalars()
        )
        for start, end in _new_day_ranges(all_days, new_days):
            condition = and_(e.currency == currency, e.occurred_at >= date_to_micros(start))
            if end is not None:
                condition = and_(condition, e.occurred_at < date_to_micros(end))
            affected.update(
                connection.execute(select(e.customer_key).where(condition).distinct()).scalars()
            )
    return sorted(affected)


def _new_day_ranges(all_days: list[date], new_days: set[date]) -> list[tuple[date, date | None]]:
    """Ranges [first new day of a run, the next stored day after it or None) in which the
    rate in force changed."""
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


def ingestion_history(
    connection: Connection, limit: int, before: int | None = None
) -> list[dict[str, Any]]:
    """Ingestions newest first: who, when, which sources, how many rows of each kind."""
    query = select(ingestions).order_by(ingestions.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(ingestions.c.id < before)
    return [dict(row._mapping) for row in connection.execute(query)]
