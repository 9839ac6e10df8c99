"""Stored KPIs: applying a set creates, versions and removes, idempotently, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select
from tests.builders import kpi_definition as kpi

from execmetrics.kpi.config import starter_kpis
from execmetrics.kpi.definitions import KpiDefinition
from execmetrics.kpi.formula import FormulaError
from execmetrics.kpi.service import FieldChange, apply_kpis, current_kpis, kpi_history
from execmetrics.store.database import open_database
from execmetrics.store.tables import kpi_versions


@pytest.fixture(autouse=True)
def no_kpis(engine: Engine) -> None:
    """Each test starts without the starter set, which a new database has."""
    with engine.begin() as connection:
        connection.execute(delete(kpi_versions))


def apply(engine: Engine, definitions: list[KpiDefinition], **options: Any) -> Any:
    with engine.begin() as connection:
        return apply_kpis(connection, definitions, "cli", **options)


def stored(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        return {name: (s.version, s.definition) for name, s in current_kpis(connection).items()}


def versions(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(kpi_versions)).scalar_one())


def test_applying_creates_then_versions_only_what_changed(engine: Engine) -> None:
    first = apply(engine, [kpi("mrr"), kpi("churned", metric="churned_customers", unit="count")])
    assert first.created == ["churned", "mrr"] and not first.changed
    again = apply(engine, [kpi("mrr"), kpi("churned", metric="churned_customers", unit="count")])
    assert again.empty and again.unchanged == ["churned", "mrr"]
    assert versions(engine) == 2
    changed = apply(engine, [kpi("mrr", title="Monthly recurring revenue", schedule="0 6 * * *")])
    assert changed.changed == {
        "mrr": [
            FieldChange("title", "MRR", "Monthly recurring revenue"),
            FieldChange("schedule", "0 * * * *", "0 6 * * *"),
        ]
    }
    now = stored(engine)
    assert now["mrr"][0] == 2 and now["mrr"][1].title == "Monthly recurring revenue"
    assert now["churned"][0] == 1  # not given, not pruned: kept as it was


def test_pruning_removes_and_a_later_return_continues_the_versions(engine: Engine) -> None:
    apply(engine, [kpi("mrr"), kpi("arr", metric="arr")])
    diff = apply(engine, [kpi("mrr")], prune=True)
    assert diff.removed == ["arr"]
    assert set(stored(engine)) == {"mrr"}
    apply(engine, [kpi("arr", metric="arr")])
    assert stored(engine)["arr"][0] == 3
    with engine.connect() as connection:
        history = kpi_history(connection, "arr")
    assert [(v["version"], v["definition"] is None) for v in history] == [
        (1, False),
        (2, True),
        (3, False),
    ]
    assert all(v["created_by"] == "cli" for v in history)


def test_a_dry_run_reports_without_writing(engine: Engine) -> None:
    diff = apply(engine, [kpi("mrr")], dry_run=True)
    assert diff.created == ["mrr"]
    assert versions(engine) == 0


@pytest.mark.parametrize(
    ("definitions", "options", "message"),
    [
        ([kpi("ratio", metric=None, formula="mrr / nothing")], {}, "unknown KPI 'nothing'"),
        ([kpi("a", metric=None, formula="b"), kpi("b", metric=None, formula="a")], {}, "cycle"),
        ([kpi("mrr"), kpi("mrr", title="again")], {}, "mrr: defined more than once"),
        # Removing a KPI that a kept formula reads.
        ([kpi("other")], {"prune": True}, "share: unknown KPI 'mrr'"),
    ],
)
def test_a_bad_set_writes_nothing(
    engine: Engine, definitions: list[KpiDefinition], options: dict[str, Any], message: str
) -> None:
    apply(engine, [kpi("mrr"), kpi("share", metric=None, formula="mrr / 2")])
    before = versions(engine)
    with pytest.raises(FormulaError, match=message):
        apply(engine, [*definitions, kpi("share", metric=None, formula="mrr / 2")], **options)
    assert versions(engine) == before


def test_a_new_database_starts_with_the_starter_set(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    names = {definition.name for definition in starter_kpis()}
    assert len(names) >= 15
    assert set(stored(engine)) == names
    assert all(version == 1 for version, _ in stored(engine).values())
    assert apply(engine, starter_kpis()).empty  # applying it again changes nothing
