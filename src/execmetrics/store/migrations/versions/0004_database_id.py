"""database id

A random identifier of this database, part of every cached document's key: servers of
different databases may share one Redis, and a database created again after being dropped
starts its ingestions from 1 again, so the data version alone could repeat.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 18:00:00
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

settings = sa.table("settings", sa.column("key", sa.String), sa.column("value", sa.Text))


def upgrade() -> None:
    op.bulk_insert(settings, [{"key": "database_id", "value": uuid.uuid4().hex}])


def downgrade() -> None:
    op.execute(settings.delete().where(settings.c.key == "database_id"))
