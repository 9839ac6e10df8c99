"""Activity events (logins and product feature use): bulk ingestion into daily counts.

A company sends tens of millions of these, so they take their own path. Each record is
checked in one pass over tuples, not dicts; customers and activity types are looked up in
memory; the staged events are folded by event id, then merged with set-based SQL into
`activity_daily` (events and quantity per customer, UTC day and type). Every event's id and
a checksum of its content are kept, so ingesting an event again is a no-op and a changed one
is refused; the raw rows are kept in `activity_events` only when asked for.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    TableClause,
    column,
    func,
    literal,
    select,
    table,
    text,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite

from execmetrics.ingest.problems import Problem, ProblemLog, RowError
from execmetrics.ingest.readers import FileError, Record
from execmetrics.ingest.rows import MAX_TEXT, count_value
from execmetrics.store.bulk import bulk_insert
from execmetrics.store.tables import (
    activity_daily,
    activity_event_ids,
    activity_events,
    activity_types,
    customers,
)
from execmetrics.timeutil import TimestampError, parse_timestamp, to_micros

MICROS_PER_DAY = 86_400 * 10**6
# A file naming more activity types than this has the wrong column as its type.
MAX_TYPES = 1000
BATCH = 20_000

STAGE = "staged_activity"
STAGE_ROWS = "staged_activity_rows"
STAGED_FIELDS = (
    "event_id", "source", "line", "customer_key", "user_id", "occurred_at", "day",
    "type_key", "quantity", "fingerprint",
)  # fmt: skip
# The first row of an event id wins. A later identical row counts as a repeat; the first
# later row with other content is remembered, to be reported.
FOLD_ON_CONFLICT = """
ON CONFLICT (event_id) DO UPDATE SET
  repeats = staged_activity.repeats + 1,
  conflict_source = CASE WHEN staged_activity.conflict_line IS NULL
    AND excluded.fingerprint != staged_activity.fingerprint THEN excluded.source
    ELSE staged_activity.conflict_source END,
  conflict_line = CASE WHEN staged_activity.conflict_line IS NULL
    AND excluded.fingerprint != staged_activity.fingerprint THEN excluded.line
    ELSE staged_activity.conflict_line END
"""


class ActivityStage:
    """This ingestion's activity events, one row per event id, until they are merged."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.sources: list[str] = []
        self.rows = 0
        self.postgres = connection.dialect.name == "postgresql"
        self._customer_keys: dict[str, int] | None = None
        self._type_keys: dict[str, int] = {}
        fields = """event_id VARCHAR(200) NOT NULL, source INTEGER NOT NULL,
            line INTEGER NOT NULL, customer_key INTEGER NOT NULL, user_id VARCHAR(200),
            occurred_at BIGINT NOT NULL, day INTEGER NOT NULL, type_key INTEGER NOT NULL,
            quantity INTEGER NOT NULL, fingerprint BIGINT NOT NULL"""
        self._drop()
        connection.execute(
            text(
                f"CREATE TEMPORARY TABLE {STAGE} ({fields}, repeats INTEGER NOT NULL DEFAULT 0,"
                " conflict_source INTEGER, conflict_line INTEGER, PRIMARY KEY (event_id))"
                + ("" if self.postgres else " WITHOUT ROWID")
            )
        )
        if self.postgres:
            # COPY cannot fold repeats as it loads, so PostgreSQL stages rows as they come.
            connection.execute(text(f"CREATE TEMPORARY TABLE {STAGE_ROWS} ({fields})"))

    def add(
        self,
        name: str,
        records: Iterable[tuple[int, Record | RowError | FileError]],
        problems: ProblemLog,
        on_rows: Callable[[int], None] | None = None,
    ) -> int:
        """Checks and stages one source's records; returns how many it had."""
        source = len(self.sources)
        self.sources.append(name)
        customer_keys = self._customers()
        received = 0
        batch: list[tuple[Any, ...]] = []
        append, type_key = batch.append, self._type_key
        for line, record in records:
            if type(record) is not tuple:  # a row or file the reader could not read
                if isinstance(record, FileError):
                    problems.add(Problem(name, record.line, None, record.reason))
                    break
                received += 1
                assert isinstance(record, RowError)
                problems.add(Problem(name, line, record.column, record.reason))
                continue
            received += 1
            try:
                append(staged_activity(record, customer_keys, type_key, source, line))
            except RowError as error:
                problems.add(Problem(name, line, error.column, error.reason))
            if len(batch) >= BATCH:
                self._stage(batch, on_rows)
        self._stage(batch, on_rows)
        return received

    def merge(self, ingestion_id: int, problems: ProblemLog, keep_rows: bool) -> tuple[int, int]:
        """Folds repeats, sets aside stored events, then adds the new ones to the daily
        counts (and the raw rows when `keep_rows`). Returns (inserted, unchanged)."""
        if self.postgres:
            self._fold_staged_rows()
        self._refuse_conflicts(problems)
        unchanged = self._set_aside_stored(problems)
        unchanged += int(
            self.connection.execute(
                text(f"SELECT coalesce(sum(repeats), 0) FROM {STAGE}")
            ).scalar_one()
        )
        if problems.total:
            return 0, unchanged
        staged = int(self.connection.execute(text(f"SELECT count(*) FROM {STAGE}")).scalar_one())
        self._insert_new(ingestion_id, keep_rows)
        return staged, unchanged

    def drop(self) -> None:
        self._drop()

    def _drop(self) -> None:
        self.connection.execute(text(f"DROP TABLE IF EXISTS {STAGE}"))
        self.connection.execute(text(f"DROP TABLE IF EXISTS {STAGE_ROWS}"))

    def _customers(self) -> dict[str, int]:
        # Read when the first activity source is staged: after this ingestion's customers.
        if self._customer_keys is None:
            c = customers.c
            found = self.connection.execute(select(c.customer_id, c.id))
            self._customer_keys = {customer_id: key for customer_id, key in found}
            t = activity_types.c
            known = self.connection.execute(select(t.name, t.id))
            self._type_keys = {name: key for name, key in known}
        return self._customer_keys

    def _type_key(self, name: str) -> int:
        key = self._type_keys.get(name)
        if key is None:
            if len(self._type_keys) >= MAX_TYPES:
                raise RowError(
                    "type", f"more than {MAX_TYPES} distinct activity types; is this the type?"
                )
            result = self.connection.execute(activity_types.insert().values(name=name))
            assert result.inserted_primary_key is not None
            key = self._type_keys[name] = int(result.inserted_primary_key[0])
        return key

    def _stage(self, batch: list[tuple[Any, ...]], on_rows: Callable[[int], None] | None) -> None:
        if not batch:
            return
        rows = batch
        if self.postgres:
            table = _named(STAGE_ROWS)
            bulk_insert(self.connection, table, STAGED_FIELDS, rows)
        else:
            names = ", ".join(STAGED_FIELDS)
            marks = ", ".join("?" for _ in STAGED_FIELDS)
            cursor = self.connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.executemany(
                    f"INSERT INTO {STAGE} ({names}) VALUES ({marks}) {FOLD_ON_CONFLICT}", rows
                )
            finally:
                cursor.close()
        self.rows += len(rows)
        if on_rows:
            on_rows(len(rows))
        batch.clear()  # the caller's list, refilled for the next batch

    def _fold_staged_rows(self) -> None:
        names = ", ".join(STAGED_FIELDS)
        self.connection.execute(
            text(
                f"""INSERT INTO {STAGE} ({names}, repeats, conflict_source, conflict_line)
                SELECT DISTINCT ON (r.event_id) {", ".join(f"r.{n}" for n in STAGED_FIELDS)},
                  count(*) OVER (PARTITION BY r.event_id) - 1,
                  c.source, c.line
                FROM {STAGE_ROWS} r LEFT JOIN (
                  SELECT DISTINCT ON (event_id) event_id, source, line FROM (
                    SELECT event_id, source, line, fingerprint, first_value(fingerprint)
                      OVER (PARTITION BY event_id ORDER BY source, line) AS first
                    FROM {STAGE_ROWS}) ranked
                  WHERE fingerprint != first ORDER BY event_id, source, line
                ) c ON c.event_id = r.event_id
                ORDER BY r.event_id, r.source, r.line"""
            )
        )
        self.connection.execute(text(f"DROP TABLE {STAGE_ROWS}"))

    def _refuse_conflicts(self, problems: ProblemLog) -> None:
        where = f"FROM {STAGE} WHERE conflict_line IS NOT NULL"
        total = int(self.connection.execute(text(f"SELECT count(*) {where}")).scalar_one())
        if not total:
            return
        shown = self.connection.execute(
            text(
                f"SELECT event_id, source, line, conflict_source, conflict_line {where} "
                "ORDER BY conflict_source, conflict_line LIMIT 100"
            )
        )
        problems.add_counted(
            [
                Problem(
                    self.sources[row.conflict_source], row.conflict_line, "event_id",
                    f"event_id {row.event_id!r} repeats {self.sources[row.source]}:{row.line} "
                    "with different content",
                )
                for row in shown
            ],
            total,
        )  # fmt: skip

    def _set_aside_stored(self, problems: ProblemLog) -> int:
        """Staged events already stored leave the stage: the same content is a no-op, other
        content a problem. Returns how many were the same."""
        join = f"FROM {STAGE} s JOIN activity_event_ids i ON i.event_id = s.event_id"
        counts = self.connection.execute(
            text(
                f"SELECT count(*), coalesce(sum(CASE WHEN s.fingerprint = i.fingerprint "
                f"THEN 1 ELSE 0 END), 0) {join}"
            )
        ).one()
        stored, same = int(counts[0]), int(counts[1])
        if stored == 0:
            return 0
        if stored > same:
            shown = self.connection.execute(
                text(
                    f"SELECT s.event_id, s.source, s.line, i.ingestion_id {join} "
                    "WHERE s.fingerprint != i.fingerprint ORDER BY s.source, s.line LIMIT 100"
                )
            )
            problems.add_counted(
                [
                    Problem(
                        self.sources[row.source], row.line, "event_id",
                        f"event_id {row.event_id!r} was already ingested with different "
                        f"content (ingestion {row.ingestion_id})",
                    )
                    for row in shown
                ],
                stored - same,
            )  # fmt: skip
        self.connection.execute(
            text(
                f"DELETE FROM {STAGE} WHERE EXISTS (SELECT 1 FROM activity_event_ids i "
                f"WHERE i.event_id = {STAGE}.event_id)"
            )
        )
        return same

    def _insert_new(self, ingestion_id: int, keep_rows: bool) -> None:
        stage = _named(STAGE, "event_id", "customer_key", "user_id", "occurred_at", "day",
                       "type_key", "quantity", "fingerprint")  # fmt: skip
        s = stage.c
        self.connection.execute(
            activity_event_ids.insert().from_select(
                ["event_id", "fingerprint", "ingestion_id"],
                select(s.event_id, s.fingerprint, _literal(ingestion_id)),
            )
        )
        dialect_insert = postgresql.insert if self.postgres else sqlite.insert
        daily = dialect_insert(activity_daily).from_select(
            ["customer_key", "day", "type_key", "events", "quantity"],
            # WHERE true: SQLite would otherwise read ON CONFLICT as part of the SELECT.
            select(s.customer_key, s.day, s.type_key, func.count(), func.sum(s.quantity))
            .where(true())
            .group_by(s.customer_key, s.day, s.type_key),
        )
        self.connection.execute(
            daily.on_conflict_do_update(
                index_elements=["customer_key", "day", "type_key"],
                set_={
                    "events": activity_daily.c.events + daily.excluded.events,
                    "quantity": activity_daily.c.quantity + daily.excluded.quantity,
                },
            )
        )
        if keep_rows:
            fields = ["event_id", "customer_key", "user_id", "occurred_at", "type_key", "quantity"]
            self.connection.execute(
                activity_events.insert().from_select(
                    [*fields, "ingestion_id"],
                    select(*(s[name] for name in fields), _literal(ingestion_id)),
                )
            )


def staged_activity(
    record: Record,
    customer_keys: dict[str, int],
    type_key: Callable[[str], int],
    source: int,
    line: int,
) -> tuple[Any, ...]:
    """One record in ACTIVITY_COLUMNS order as a staged row (STAGED_FIELDS); raises
    RowError naming the column at fault."""
    event_id, customer_id, user_id, occurred_at, kind, quantity = record
    # The hot path of a very large ingest: each field stripped once, common cases first.
    event_id = event_id.strip() if event_id else None
    if not event_id:
        raise RowError("event_id", "required but empty")
    if len(event_id) > MAX_TEXT:
        raise RowError("event_id", f"longer than {MAX_TEXT} characters ({len(event_id)})")
    customer = customer_keys.get(customer_id) if customer_id else None
    if customer is None:
        customer = _customer_key(customer_id, customer_keys)
    if user_id:
        user_id = user_id.strip() or None
        if user_id and len(user_id) > MAX_TEXT:
            raise RowError("user_id", f"longer than {MAX_TEXT} characters ({len(user_id)})")
    else:
        user_id = None
    at = _instant(occurred_at.strip() if occurred_at else None)
    kind = kind.strip() if kind else None
    if not kind:
        raise RowError("type", "required but empty")
    if len(kind) > MAX_TEXT:
        raise RowError("type", f"longer than {MAX_TEXT} characters ({len(kind)})")
    if not quantity:
        count = 1
    elif quantity.isdigit() and len(quantity) < 10 and quantity[0] != "0":
        count = int(quantity)
    else:
        count = count_value(quantity.strip(), "quantity", minimum=1)
    fingerprint = zlib.crc32(f"{customer}\x1f{user_id}\x1f{at}\x1f{kind}\x1f{count}".encode())
    return (event_id, source, line, customer, user_id, at, at // MICROS_PER_DAY, type_key(kind),
            count, fingerprint)  # fmt: skip


def _customer_key(customer_id: str | None, customer_keys: dict[str, int]) -> int:
    """The slow path: a customer id with spaces around it, or none, or unknown."""
    stripped = customer_id.strip() if customer_id else None
    if not stripped:
        raise RowError("customer_id", "required but empty")
    key = customer_keys.get(stripped)
    if key is None:
        raise RowError("customer_id", f"unknown customer {stripped!r}")
    return key


def _instant(value: str | None) -> int:
    if not value:
        raise RowError("occurred_at", "required but empty")
    try:
        # The common case, a full timestamp with an offset, without parse_timestamp's checks.
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None and len(value) > 10:
            seconds = moment.timestamp()
            if seconds >= 0:
                # Exact: a float's error at today's epoch seconds is far below a microsecond.
                return int(seconds) * 1_000_000 + moment.microsecond
            return to_micros(moment)
    except ValueError:
        pass
    try:
        return parse_timestamp(value)
    except TimestampError as error:
        raise RowError("occurred_at", str(error)) from None


def _named(name: str, *columns: str) -> TableClause:
    """A table clause for a temporary table this module creates with SQL text."""
    return table(name, *(column(c) for c in columns or STAGED_FIELDS))


def _literal(value: int) -> ColumnElement[int]:
    return literal(value, Integer)
