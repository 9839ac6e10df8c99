"""The migrations build exactly the tables the code defines, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
import threading
import uuid
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.pool import NullPool
from tests.conftest import POSTGRES_ADMIN_URL

from execmetrics.alerts.conditions import AnomalyCondition
from execmetrics.alerts.rules import AlertRule
from execmetrics.store import versions
from execmetrics.store.database import SCHEMA_REVISION, alembic_config, schema_revision
from execmetrics.store.tables import alert_rule_versions, metadata


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


def test_anomaly_rules_keep_their_band_when_sensitivity_counts_usual_deviations(
    engine: Engine,
) -> None:
    """Migration 0012: a sensitivity once counted scales and now counts the detector's usual
    deviations (1.82 scales), so each rule judging anomalies by its own sensitivity gains a
    version with it divided by 1.82; other rules and earlier versions are left alone."""
    config = alembic_config(engine)
    command.downgrade(config, "0011")

    def rule(name: str, condition: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "kpi": "mrr", "severity": "warning", "condition": condition}

    written = [
        ("mrr-drop", 1, rule("mrr-drop", {"kind": "anomaly", "sensitivity": 3.0})),
        ("mrr-drop", 2, rule("mrr-drop", {"kind": "anomaly", "sensitivity": 4, "direction": "up"})),
        ("signups", 1, rule("signups", {"kind": "anomaly", "sensitivity": None})),
        ("floor", 1, rule("floor", {"kind": "threshold", "above": "10"})),
        ("gone", 1, rule("gone", {"kind": "anomaly", "sensitivity": 3.0})),
        ("gone", 2, None),
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(
            insert(alert_rule_versions),
            [
                {"name": name, "version": number, "definition": definition,
                 "created_at": 1, "created_by": "admin@example.com"}
                for name, number, definition in written
            ],
        )  # fmt: skip
    command.upgrade(config, "head")  # the engine fixture empties the database afterwards
    with engine.connect() as connection:
        stored = [
            (row.name, row.version, row.definition, row.created_by)
            for row in connection.execute(
                select(alert_rule_versions).order_by(
                    alert_rule_versions.c.name, alert_rule_versions.c.version
                )
            )
        ]
        newest = versions.latest(connection, alert_rule_versions)
    before = {(name, number): definition for name, number, definition in written}
    after = {(name, number): definition for name, number, definition, _ in stored}
    assert set(after) == set(before) | {("mrr-drop", 3)}
    assert {key: after[key] for key in before} == before  # every earlier version as written
    assert after[("mrr-drop", 3)] == rule(
        "mrr-drop", {"kind": "anomaly", "sensitivity": 2.2, "direction": "up"}
    )  # 4 / 1.82
    assert stored[5][3].startswith("migration 0012")
    migrated = AlertRule.model_validate(newest["mrr-drop"].definition)
    assert isinstance(migrated.condition, AnomalyCondition)
    assert migrated.condition.threshold == 2.2
