"""subscription event prices index

A partial index of the starts' and changes' prices in plan order, from which the data
quality check of amounts against their plan's median counts them without sorting the table.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRICED_EVENTS = "type IN ('start', 'change')"


def upgrade() -> None:
    op.create_index(
        "ix_subscription_events_prices",
        "subscription_events",
        ["plan_id", "currency", "interval", "interval_count", "amount_minor", "quantity"],
        sqlite_where=sa.text(PRICED_EVENTS),
        postgresql_where=sa.text(PRICED_EVENTS),
    )


def downgrade() -> None:
    op.drop_index("ix_subscription_events_prices", table_name="subscription_events")
