"""Each user's in-app notifications: written by the dispatcher (notify/outbox.py), read and
marked read by the user through the API and the dashboard."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from execmetrics.accounts.service import Identity
from execmetrics.notify.preferences import user_id
from execmetrics.store.roles import as_role
from execmetrics.store.tables import inbox
from execmetrics.timeutil import now_micros


def acting_user(connection: Connection, caller: Identity) -> int | None:
    """The signed-in user behind `caller`, acting from now on in this transaction as that
    user for their own rows (row-level security); None for API tokens and external
    identities, which have no notifications of their own."""
    user = user_id(connection, caller.name) if caller.kind == "user" else None
    if user is not None:
        as_role(connection, caller.role.value, user)
    return user


def list_inbox(
    connection: Connection, user: int, *, unread: bool = False, limit: int = 200
) -> list[dict[str, Any]]:
    """The user's in-app notifications, newest first."""
    query = select(inbox).where(inbox.c.user_id == user)
    if unread:
        query = query.where(inbox.c.read_at.is_(None))
    rows = connection.execute(query.order_by(inbox.c.id.desc()).limit(limit))
    return [dict(row._mapping) for row in rows]


def mark_all_read(connection: Connection, user: int) -> None:
    connection.execute(
        update(inbox)
        .where(inbox.c.user_id == user, inbox.c.read_at.is_(None))
        .values(read_at=now_micros())
    )
