"""Alembic environment: runs migrations on the engine handed over by execmetrics."""

from __future__ import annotations

from alembic import context

from execmetrics.store.tables import metadata

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()
