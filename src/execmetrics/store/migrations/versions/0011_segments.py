"""segments

Each day's customer segmentation: its summary (k, how k was chosen, the silhouette, each
segment's name, size, MRR and centre), or why none could be made, and the segment of every
customer. On PostgreSQL a customer's segment is for executives and admins only (the
analytics job acts as an admin); analysts may read the summaries.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER = "execmetrics_owner"
APP = "execmetrics_app"
ROLE = "current_setting('execmetrics.role', true)"
ANALYSTS = "ARRAY['analyst', 'executive', 'admin']"
EXECUTIVES = "ARRAY['executive', 'admin']"
# (table, who reads it, its id sequence)
TABLES = (
    ("segment_runs", ANALYSTS, "segment_runs_id_seq"),
    ("segment_assignments", EXECUTIVES, None),
)


def upgrade() -> None:
    op.create_table(
        "segment_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("computed_at", sa.BigInteger, nullable=False),
        sa.Column("k", sa.Integer, nullable=False),
        sa.Column("chosen_by", sa.String(20), nullable=False),
        sa.Column("silhouette", sa.Float),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("segments", sa.JSON, nullable=False),
        sa.Column("notes", sa.JSON, nullable=False),
        sa.Column("problem", sa.Text),
    )
    op.create_table(
        "segment_assignments",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("customer_key", sa.Integer, primary_key=True),
        sa.Column("segment", sa.Integer, nullable=False),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, readers, sequence in TABLES:
        op.execute(f"ALTER TABLE {table} OWNER TO {OWNER}")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP}")
        if sequence:
            op.execute(f"GRANT USAGE, SELECT ON SEQUENCE {sequence} TO {APP}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({ROLE} = ANY ({readers}))"
        )
        op.execute(
            f"CREATE POLICY {table}_write ON {table} FOR ALL "
            f"USING ({ROLE} = ANY ({EXECUTIVES})) WITH CHECK ({ROLE} = ANY ({EXECUTIVES}))"
        )


def downgrade() -> None:
    for table, _, _ in reversed(TABLES):
        op.drop_table(table)
