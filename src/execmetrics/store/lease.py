"""Leases: one holder at a time for a named job, across processes and machines.

A lease is a row with its holder and expiry. Taking it is one conditional write, so two
processes racing for it cannot both win on SQLite or PostgreSQL; the holder renews it before
it expires, and a holder that dies loses it when it expires.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert, or_, update
from sqlalchemy.exc import IntegrityError

from execmetrics.store.roles import as_role
from execmetrics.store.tables import leases
from execmetrics.timeutil import now_micros


def take_lease(engine: Engine, name: str, holder: str, seconds: float) -> bool:
    """Take or renew the lease `name` for `holder`; False while another holder has it."""
    now = now_micros()
    expires = now + int(seconds * 1_000_000)
    with engine.begin() as connection:
        as_role(connection, "admin")
        taken = connection.execute(
            update(leases)
            .where(
                leases.c.name == name,
                or_(leases.c.holder == holder, leases.c.expires_at <= now),
            )
            .values(holder=holder, expires_at=expires)
        ).rowcount
    if taken:
        return True
    try:
        with engine.begin() as connection:
            as_role(connection, "admin")
            connection.execute(insert(leases).values(name=name, holder=holder, expires_at=expires))
    except IntegrityError:
        return False  # another holder has it
    return True


def release_lease(engine: Engine, name: str, holder: str) -> None:
    with engine.begin() as connection:
        as_role(connection, "admin")
        connection.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))
