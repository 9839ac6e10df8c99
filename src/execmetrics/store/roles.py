"""Telling PostgreSQL's row-level security who is asking (docs/api.md, "Row-level security")."""

from __future__ import annotations

from sqlalchemy import Connection, func, select


def as_role(connection: Connection, role: str | None, user_id: int | None = None) -> None:
    """Act as `role` (and, for a user's own rows, as that user) for this transaction only, so
    that a pooled connection never carries it to the next request. SQLite has no row-level
    security: nothing to do there."""
    if connection.dialect.name != "postgresql":
        return
    connection.execute(
        select(
            func.set_config("execmetrics.role", role or "", True),
            func.set_config("execmetrics.user_id", "" if user_id is None else str(user_id), True),
        )
    )
