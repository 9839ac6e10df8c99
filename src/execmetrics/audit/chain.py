"""Appending to and verifying the hash chain of audit records.

Each record stores the SHA-256 of the record before it (`prev_hash`) and its own `hash`, over
a canonical JSON form of all its fields. Editing, deleting, inserting or reordering records
breaks the chain at that point unless every later hash is recomputed too; `audit verify`
prints the head hash, which an operator can keep elsewhere to detect even that.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from execmetrics.errors import Unavailable
from execmetrics.store.tables import audit_log
from execmetrics.timeutil import now_micros

GENESIS = "0" * 64
# Key of the PostgreSQL advisory lock that serialises appends, so concurrent writers queue
# instead of forking the chain (the unique seq and prev_hash refuse a fork regardless).
APPEND_LOCK = 0x6578_6D61_7564_6974 & 0x7FFF_FFFF_FFFF_FFFF
APPEND_ATTEMPTS = 20
VERIFY_BATCH = 5000


@dataclass
class AuditEntry:
    """What happened: filled in while a request runs, written when its outcome is known."""

    request_id: str
    identity: str
    role: str | None
    action: str
    resource: str
    parameters: dict[str, Any] = field(default_factory=dict)
    client: str | None = None
    user_agent: str | None = None
    outcome: str = "ok"


def canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(record: dict[str, Any]) -> str:
    """The hash of a stored record: every field but `hash` itself."""
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def _fit(column: str, value: str) -> str:
    """A value as the column can store it: NUL characters (which PostgreSQL text refuses)
    replaced, and cut to the column's length, so no request goes unrecorded for its shape."""
    length = getattr(audit_log.c[column].type, "length", None)
    value = value.replace("\x00", "\ufffd")
    return value[:length] if length else value


def append(connection: Connection, entry: AuditEntry) -> int:
    """Append within the caller's transaction; returns the record's seq."""
    return append_many(connection, [entry])[-1]


def append_many(connection: Connection, entries: Sequence[AuditEntry]) -> list[int]:
    """Append records in order within the caller's transaction; returns their seqs."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(APPEND_LOCK)))
    head = connection.execute(
        select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    seq, previous = (head.seq, head.hash) if head else (0, GENESIS)
    records = []
    for entry in entries:
        seq += 1
        record: dict[str, Any] = {
            "seq": seq,
            "at": now_micros(),
            **asdict(entry),
            "prev_hash": previous,
        }
        record["user_agent"] = record["user_agent"] or None
        for name, value in record.items():
            if isinstance(value, str):
                record[name] = _fit(name, value)
        record["hash"] = previous = record_hash(record)
        records.append(record)
    connection.execute(insert(audit_log), records)
    return [record["seq"] for record in records]


def append_now(engine: Engine, entry: AuditEntry) -> int:
    """Append in a transaction of its own; see `append_batch_now`."""
    return append_batch_now(engine, [entry])[0]


def append_batch_now(engine: Engine, entries: Sequence[AuditEntry]) -> list[int]:
    """Append in a transaction of its own, retrying when a concurrent writer got there first.

    Raises Unavailable when the records cannot be written: the caller must then fail the
    requests rather than let them go unrecorded.
    """
    for attempt in range(APPEND_ATTEMPTS):
        try:
            with _writer_turn(engine), engine.begin() as connection:
                if connection.dialect.name == "sqlite":
                    # Take the write lock before reading the head: a read-then-write
                    # transaction would otherwise race another writer for it.
                    connection.execute(text("UPDATE audit_log SET seq = seq WHERE 0"))
                return append_many(connection, entries)
        except (IntegrityError, OperationalError):
            time.sleep(0.005 * (attempt + 1))
    raise Unavailable("the audit record could not be written")


_turn_in_process = threading.Lock()


@contextmanager
def _writer_turn(engine: Engine) -> Iterator[None]:
    """On a SQLite file, wait for a lock on a file beside it before writing.

    SQLite's own busy handler polls for its write lock with growing sleeps (1 ms, 2 ms, 5 ms,
    ... 100 ms), so server processes appending at the same moment lose tens of milliseconds;
    a file lock wakes the next writer as soon as the previous one is done. SQLite's lock
    still guarantees correctness for writers that do not take this one.
    """
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or engine.url.query.get("mode") == "memory":
        yield
        return
    with _turn_in_process, open(f"{database}.audit-lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Verification:
    records: int
    head_hash: str
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_seq is None


def _stored_records(connection: Connection) -> Iterator[dict[str, Any]]:
    last = 0
    while True:
        rows = connection.execute(
            select(audit_log).where(audit_log.c.seq > last).order_by(audit_log.c.seq)
            .limit(VERIFY_BATCH)
        ).all()  # fmt: skip
        if not rows:
            return
        for row in rows:
            yield dict(row._mapping)
        last = rows[-1].seq


def verify(connection: Connection) -> Verification:
    """Walk the chain from the first record; report the first record that breaks it."""
    expected_seq, previous = 1, GENESIS
    count = 0
    for record in _stored_records(connection):
        seq = record["seq"]
        if seq != expected_seq:
            reason = (
                f"records {expected_seq} to {seq - 1} are missing"
                if seq > expected_seq
                else f"seq {seq} is out of order"
            )
            return Verification(count, previous, seq, reason)
        if record["prev_hash"] != previous:
            reason = "does not follow the record before it (deleted, inserted or reordered)"
            return Verification(count, previous, seq, reason)
        if record_hash(record) != record["hash"]:
            return Verification(count, previous, seq, "its content was changed after writing")
        previous = record["hash"]
        expected_seq += 1
        count += 1
    return Verification(count, previous)
