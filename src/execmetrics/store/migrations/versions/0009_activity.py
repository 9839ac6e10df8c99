"""activity

Customers' activity: daily counts per customer and activity type, the ids (and a checksum)
of every event ingested, and the raw events when a company keeps them. On PostgreSQL they
are customer data: analysts, executives and admins read them, executives and admins (the
ingestion acts as one) write them, under forced row-level security.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 04:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER = "execmetrics_owner"
APP = "execmetrics_app"
ROLE = "current_setting('execmetrics.role', true)"
READERS = "ARRAY['analyst', 'executive', 'admin']"
WRITERS = "ARRAY['executive', 'admin']"
TABLES = ("activity_types", "activity_daily", "activity_event_ids", "activity_events")


def upgrade() -> None:
    op.create_table(
        "activity_types",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
    )
    op.create_table(
        "activity_daily",
        sa.Column("customer_key", sa.Integer, primary_key=True),
        sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("type_key", sa.Integer, primary_key=True),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "activity_event_ids",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("fingerprint", sa.BigInteger, nullable=False),
        sa.Column("ingestion_id", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "activity_events",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("customer_key", sa.Integer, nullable=False),
        sa.Column("user_id", sa.String(200)),
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
        sa.Column("type_key", sa.Integer, nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("ingestion_id", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_activity_events_customer", "activity_events", ["customer_key", "occurred_at"]
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE activity_types_id_seq TO {APP}")
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} OWNER TO {OWNER}")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({ROLE} = ANY ({READERS}))"
        )
        op.execute(
            f"CREATE POLICY {table}_write ON {table} FOR ALL "
            f"USING ({ROLE} = ANY ({WRITERS})) WITH CHECK ({ROLE} = ANY ({WRITERS}))"
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
