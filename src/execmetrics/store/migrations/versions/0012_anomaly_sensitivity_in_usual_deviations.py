"""anomaly sensitivity in usual deviations

An anomaly rule's sensitivity used to count scales from the expected value (3 by default);
it now counts the anomaly detector's usual deviations, which are 1.82 scales on a KPI's
history. Each alert rule whose latest version has an anomaly condition with a sensitivity
gains a version with that sensitivity divided by 1.82 (to two decimal places), so that its
band stays where it was: 3 becomes 1.65. Earlier versions stay as they were written.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 16:00:00
"""

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The detector's usual deviation on a short history, in scales (2.576 / sqrt 2).
SHORT_USUAL = 2.576 / math.sqrt(2.0)
ACTOR = "migration 0012 (anomaly sensitivity in usual deviations)"
RULES = sa.table(
    "alert_rule_versions",
    sa.column("name", sa.String),
    sa.column("version", sa.Integer),
    sa.column("definition", sa.JSON),
    sa.column("created_at", sa.BigInteger),
    sa.column("created_by", sa.String),
)


def upgrade() -> None:
    _rescale(lambda sensitivity: round(sensitivity / SHORT_USUAL, 2))


def downgrade() -> None:
    _rescale(lambda sensitivity: round(sensitivity * SHORT_USUAL, 2))


def _rescale(convert: Callable[[float], float]) -> None:
    """A new version of each rule whose latest version judges anomalies by a sensitivity of
    its own, with that sensitivity converted."""
    connection = op.get_bind()
    latest: dict[str, tuple[int, Any]] = {}
    rows = connection.execute(sa.select(RULES.c.name, RULES.c.version, RULES.c.definition))
    for name, number, definition in rows:
        if name not in latest or number > latest[name][0]:
            latest[name] = (number, definition)
    now = int(time.time() * 1_000_000)
    added = []
    for name, (number, definition) in sorted(latest.items()):
        condition = (definition or {}).get("condition") or {}
        sensitivity = condition.get("sensitivity")
        if condition.get("kind") != "anomaly" or not isinstance(sensitivity, int | float):
            continue
        converted = {**condition, "sensitivity": max(convert(float(sensitivity)), 0.01)}
        added.append(
            {
                "name": name,
                "version": number + 1,
                "definition": {**definition, "condition": converted},
                "created_at": now,
                "created_by": ACTOR,
            }
        )
    if added:
        connection.execute(sa.insert(RULES), added)
