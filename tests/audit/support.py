"""Writing audit records, reading them back, and tampering with them as an attacker would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, text

from execmetrics.audit.chain import AuditEntry, append
from execmetrics.store.tables import audit_log


def entry(number: int = 0, **changes: Any) -> AuditEntry:
    values: dict[str, Any] = {
        "request_id": f"req-{number:04d}",
        "identity": "token:t",
        "role": "admin",
        "action": "GET /api/v1/metrics",
        "resource": "/api/v1/metrics",
        "parameters": {"from": "2024-01"},
    }
    return AuditEntry(**(values | changes))


def append_records(engine: Engine, count: int) -> list[int]:
    """Append count records in one transaction; returns their seqs."""
    with engine.begin() as connection:
        return [append(connection, entry(number)) for number in range(1, count + 1)]


def stored(connection: Connection) -> list[dict[str, Any]]:
    rows = connection.execute(select(audit_log).order_by(audit_log.c.seq)).all()
    return [dict(row._mapping) for row in rows]


def stored_records(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return stored(connection)


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def bypass_append_only(connection: Connection) -> None:
    """Switch off the append-only triggers, as someone with direct database access can."""
    if connection.dialect.name == "postgresql":
        # Replica mode skips ordinary triggers, for this transaction only (superuser).
        connection.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        connection.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
        connection.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))


@contextmanager
def tampering(engine: Engine) -> Iterator[Connection]:
    """A committed transaction in which audit_log can be changed at will."""
    with engine.begin() as connection:
        bypass_append_only(connection)
        yield connection


def replace_records(connection: Connection, records: list[dict[str, Any]]) -> None:
    """Put records in place of the stored ones with the same seqs (all columns).

    Deleting first, then inserting, lets contents move between seqs without tripping the
    unique seq, hash and prev_hash half-way through.
    """
    seqs = [record["seq"] for record in records]
    connection.execute(delete(audit_log).where(audit_log.c.seq.in_(seqs)))
    connection.execute(insert(audit_log), records)


def drop_unique_prev_hash(connection: Connection) -> None:
    """Remove the constraint that keeps two records from claiming the same predecessor."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("ALTER TABLE audit_log DROP CONSTRAINT uq_audit_log_prev_hash"))
        return
    # SQLite cannot drop a constraint: rebuild the table without any.
    connection.execute(text("CREATE TABLE audit_log_copy AS SELECT * FROM audit_log"))
    connection.execute(text("DROP TABLE audit_log"))
    connection.execute(text("ALTER TABLE audit_log_copy RENAME TO audit_log"))
