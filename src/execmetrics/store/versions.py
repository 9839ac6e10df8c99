"""Versioned definitions (KPIs, alert rules, escalation policies, channels): every version is
appended and never changed, a removal is a version without a definition, and applying a set
reports what it changes field by field.

Functions take the caller's connection; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select

from execmetrics.timeutil import now_micros

Definition = dict[str, Any]  # a definition as stored: its JSON form


@dataclass(frozen=True)
class Stored:
    version: int
    definition: Definition


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


@dataclass
class Diff:
    """What applying a set of definitions changes, by name."""

    created: list[str] = field(default_factory=list)
    changed: dict[str, list[FieldChange]] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.created or self.changed or self.removed)


def latest(connection: Connection, table: Table, name: str | None = None) -> dict[str, Stored]:
    """Each name's latest version (or only `name`'s), unless that version removed it."""
    t = table.c
    query = select(t.name, func.max(t.version).label("version")).group_by(t.name)
    if name is not None:
        query = query.where(t.name == name)
    newest = query.subquery()
    rows = connection.execute(
        select(t.name, t.version, t.definition)
        .join(newest, (newest.c.name == t.name) & (newest.c.version == t.version))
        .order_by(t.name)
    )
    return {
        row.name: Stored(row.version, row.definition) for row in rows if row.definition is not None
    }


def version(connection: Connection, table: Table, name: str, number: int) -> Definition | None:
    """One version of a definition; None when that version removed it or never existed."""
    t = table.c
    found: Definition | None = connection.execute(
        select(t.definition).where(t.name == name, t.version == number)
    ).scalar()
    return found


def history(connection: Connection, table: Table, name: str) -> list[dict[str, Any]]:
    """Every version of one definition, oldest first; a removal has no definition."""
    t = table.c
    rows = connection.execute(
        select(t.version, t.definition, t.created_at, t.created_by)
        .where(t.name == name)
        .order_by(t.version)
    )
    return [dict(row._mapping) for row in rows]


def apply(
    connection: Connection,
    table: Table,
    given: Mapping[str, Definition],
    actor: str,
    prune: bool = False,
    dry_run: bool = False,
) -> Diff:
    """Make the stored definitions match `given`: a new version for each new or changed one,
    none for an unchanged one, and with `prune` a removal for each stored one not given."""
    stored = latest(connection, table)
    diff = Diff()
    changes: dict[str, Definition | None] = {}
    for name, definition in sorted(given.items()):
        before = stored.get(name)
        if before is None:
            diff.created.append(name)
        elif before.definition == definition:
            diff.unchanged.append(name)
            continue
        else:
            diff.changed[name] = field_changes(before.definition, definition)
        changes[name] = definition
    if prune:
        for name in sorted(set(stored) - set(given)):
            diff.removed.append(name)
            changes[name] = None
    if changes and not dry_run:
        _append(connection, table, changes, actor)
    return diff


def _append(
    connection: Connection, table: Table, changes: Mapping[str, Definition | None], actor: str
) -> None:
    t = table.c
    # The next version follows every earlier one, removals included.
    newest = dict(
        connection.execute(
            select(t.name, func.max(t.version)).where(t.name.in_(changes)).group_by(t.name)
        ).all()
    )
    now = now_micros()
    connection.execute(
        insert(table),
        [
            {
                "name": name,
                "version": (newest.get(name) or 0) + 1,
                "definition": definition,
                "created_at": now,
                "created_by": actor,
            }
            for name, definition in changes.items()
        ],
    )


def field_changes(before: Definition, after: Definition) -> list[FieldChange]:
    names = list(before) + [name for name in after if name not in before]
    return [
        FieldChange(name, before.get(name), after.get(name))
        for name in names
        if before.get(name) != after.get(name)
    ]
