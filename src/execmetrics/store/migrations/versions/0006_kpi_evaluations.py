"""kpi evaluations

Each evaluation of a KPI: its exact value for one period at one data version. On PostgreSQL
every role may read them and executives and admins (the evaluator acts as admin) may add
them, under forced row-level security.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 20:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER = "execmetrics_owner"
APP = "execmetrics_app"
ROLE = "current_setting('execmetrics.role', true)"
READERS = "ARRAY['viewer', 'analyst', 'executive', 'admin']"
WRITERS = "ARRAY['executive', 'admin']"


def upgrade() -> None:
    op.create_table(
        "kpi_evaluations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("value", sa.Text),
        sa.Column("data_version", sa.String(100), nullable=False),
        sa.Column("evaluated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            "name", "version", "period", "data_version", name="uq_kpi_evaluations_inputs"
        ),
    )
    op.create_index(
        "ix_kpi_evaluations_name_evaluated_at", "kpi_evaluations", ["name", "evaluated_at"]
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE kpi_evaluations OWNER TO {OWNER}")
    op.execute(f"GRANT SELECT, INSERT ON kpi_evaluations TO {APP}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE kpi_evaluations_id_seq TO {APP}")
    op.execute("ALTER TABLE kpi_evaluations ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE kpi_evaluations FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY kpi_evaluations_read ON kpi_evaluations FOR SELECT "
        f"USING ({ROLE} = ANY ({READERS}))"
    )
    op.execute(
        "CREATE POLICY kpi_evaluations_add ON kpi_evaluations FOR INSERT "
        f"WITH CHECK ({ROLE} = ANY ({WRITERS}))"
    )


def downgrade() -> None:
    op.drop_index("ix_kpi_evaluations_name_evaluated_at", "kpi_evaluations")
    op.drop_table("kpi_evaluations")
