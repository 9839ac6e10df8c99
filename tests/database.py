"""Emptying the shared PostgreSQL test database between tests."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, text

from execmetrics.kpi.config import starter_kpis
from execmetrics.kpi.service import apply_kpis
from execmetrics.store.tables import metadata, settings


def truncate_all(engine: Engine) -> None:
    names = ", ".join(table.name for table in metadata.sorted_tables)
    with engine.begin() as connection:
        # The audit log refuses TRUNCATE through a trigger; replica mode skips triggers.
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        # As a new database would be: with an id of its own (migration 0004), so documents
        # cached in the shared Redis for an earlier test's data never match.
        connection.execute(settings.insert().values(key="database_id", value=uuid.uuid4().hex))
        # And with the starter KPIs (migration 0005).
        apply_kpis(connection, starter_kpis(), "execmetrics")
