"""The migrations build exactly the tables the code defines, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from execmetrics.store.database import SCHEMA_REVISION, alembic_config, schema_revision
from execmetrics.store.tables import metadata


def test_schema_revision_is_the_newest_migration(engine: Engine) -> None:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    assert head == SCHEMA_REVISION
    assert schema_revision(engine) == head


def test_migrated_schema_matches_the_table_definitions(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, metadata) == []
