"""The migrations build exactly the tables the code defines, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
import threading
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool
from tests.conftest import POSTGRES_ADMIN_URL

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


def test_two_databases_migrated_at_once_both_get_the_shared_roles() -> None:
    """The roles belong to the server: when one migration creates a role while another is
    creating it too, the second waits for the first and carries on."""
    roles = importlib.import_module(
        "execmetrics.store.migrations.versions.0003_postgresql_roles_and_row_level_security"
    )
    name = f"execmetrics_test_{uuid.uuid4().hex[:12]}"
    statement = text(roles.create_role_statement(name, "NOLOGIN"))
    admin = create_engine(POSTGRES_ADMIN_URL, poolclass=NullPool)
    errors: list[BaseException] = []

    def create_too() -> None:
        try:
            with admin.begin() as second:
                second.execute(statement)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    try:
        with admin.begin() as first:
            first.execute(statement)  # the role exists, uncommitted
            racing = threading.Thread(target=create_too)
            racing.start()
            racing.join(timeout=2)
            assert racing.is_alive()  # waiting on the first transaction's new role
        racing.join(timeout=30)
        assert not racing.is_alive()
        assert errors == []
        with admin.connect() as connection:
            found = connection.execute(
                text("SELECT count(*) FROM pg_roles WHERE rolname = :name"), {"name": name}
            ).scalar_one()
        assert found == 1
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP ROLE IF EXISTS {name}"))
        admin.dispose()
