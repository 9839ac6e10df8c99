"""The stored KPI definitions: the current set, every version, and applying a new set.

Functions take the caller's connection; the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, insert, select

from execmetrics.kpi.definitions import KpiDefinition, check_references
from execmetrics.store.tables import kpi_versions
from execmetrics.timeutil import now_micros


@dataclass(frozen=True)
class StoredKpi:
    version: int
    definition: KpiDefinition


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


@dataclass
class KpiDiff:
    """What applying a set of definitions changes, by KPI name."""

    created: list[str] = field(default_factory=list)
    changed: dict[str, list[FieldChange]] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.created or self.changed or self.removed)


def current_kpis(connection: Connection) -> dict[str, StoredKpi]:
    """Each KPI's latest version, unless that version removed it."""
    k = kpi_versions.c
    latest = (
        select(k.name, func.max(k.version).label("version")).group_by(k.name).subquery("latest")
    )
    rows = connection.execute(
        select(k.name, k.version, k.definition)
        .join(latest, (latest.c.name == k.name) & (latest.c.version == k.version))
        .order_by(k.name)
    )
    return {
        row.name: StoredKpi(row.version, KpiDefinition.model_validate(row.definition))
        for row in rows
        if row.definition is not None
    }


def kpi_history(connection: Connection, name: str) -> list[dict[str, Any]]:
    """Every version of one KPI, oldest first; a removal has no definition."""
    k = kpi_versions.c
    rows = connection.execute(
        select(k.version, k.definition, k.created_at, k.created_by)
        .where(k.name == name)
        .order_by(k.version)
    )
    return [dict(row._mapping) for row in rows]


def apply_kpis(
    connection: Connection,
    definitions: list[KpiDefinition],
    actor: str,
    prune: bool = False,
    dry_run: bool = False,
) -> KpiDiff:
    """Make the stored KPIs match `definitions`: a new version for each new or changed KPI,
    none for an unchanged one, and with `prune` a removal for each stored KPI not given.

    The resulting set is checked as a whole before anything is written (a formula may not
    read a KPI that does not exist, or itself); FormulaError says which KPI is wrong.
    """
    stored = current_kpis(connection)
    given = {definition.name: definition for definition in definitions}
    kept = {} if prune else {name: kpi.definition for name, kpi in stored.items()}
    if len(given) < len(definitions):
        check_references(definitions)  # refuses, naming the KPI given twice
    check_references(list((kept | given).values()))
    diff = KpiDiff()
    rows: list[dict[str, Any]] = []
    for name, definition in sorted(given.items()):
        before = stored.get(name)
        if before is None:
            diff.created.append(name)
        elif before.definition == definition:
            diff.unchanged.append(name)
            continue
        else:
            diff.changed[name] = _field_changes(before.definition, definition)
        rows.append(_version_row(connection, name, definition))
    if prune:
        for name in sorted(set(stored) - set(given)):
            diff.removed.append(name)
            rows.append(_version_row(connection, name, None))
    if rows and not dry_run:
        now = now_micros()
        connection.execute(
            insert(kpi_versions), [row | {"created_at": now, "created_by": actor} for row in rows]
        )
    return diff


def _version_row(
    connection: Connection, name: str, definition: KpiDefinition | None
) -> dict[str, Any]:
    # The next version follows every earlier one, removals included.
    newest = connection.execute(
        select(func.max(kpi_versions.c.version)).where(kpi_versions.c.name == name)
    ).scalar()
    return {
        "name": name,
        "version": (newest or 0) + 1,
        "definition": None if definition is None else definition.model_dump(mode="json"),
    }


def _field_changes(before: KpiDefinition, after: KpiDefinition) -> list[FieldChange]:
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    return [FieldChange(name, old[name], new[name]) for name in old if old[name] != new[name]]
