"""The stored KPI definitions: the current set, every version, and applying a new set.

Functions take the caller's connection; the caller owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from execmetrics.kpi.definitions import KpiDefinition, check_references
from execmetrics.store import versions
from execmetrics.store.tables import kpi_versions
from execmetrics.store.versions import Diff, FieldChange

__all__ = [
    "Diff", "FieldChange", "StoredKpi", "apply_kpis", "current_kpi", "current_kpis", "kpi_history",
]  # fmt: skip


@dataclass(frozen=True)
class StoredKpi:
    version: int
    definition: KpiDefinition


def current_kpis(connection: Connection) -> dict[str, StoredKpi]:
    """Each KPI's latest version, unless that version removed it."""
    return {
        name: StoredKpi(stored.version, KpiDefinition.model_validate(stored.definition))
        for name, stored in versions.latest(connection, kpi_versions).items()
    }


def current_kpi(connection: Connection, name: str) -> StoredKpi | None:
    """One KPI's latest version, without reading every other definition."""
    stored = versions.latest(connection, kpi_versions, name).get(name)
    return (
        None
        if stored is None
        else StoredKpi(stored.version, KpiDefinition.model_validate(stored.definition))
    )


def kpi_history(connection: Connection, name: str) -> list[dict[str, Any]]:
    """Every version of one KPI, oldest first; a removal has no definition."""
    return versions.history(connection, kpi_versions, name)


def apply_kpis(
    connection: Connection,
    definitions: list[KpiDefinition],
    actor: str,
    prune: bool = False,
    dry_run: bool = False,
) -> Diff:
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
    as_stored = {name: d.model_dump(mode="json") for name, d in given.items()}
    return versions.apply(connection, kpi_versions, as_stored, actor, prune, dry_run)
