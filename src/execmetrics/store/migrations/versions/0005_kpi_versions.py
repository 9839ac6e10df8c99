"""kpi versions

Every version of every KPI definition, starting with the starter set that ships with the
package (kpi/starter.yaml), which a database gets when it reaches this revision. On
PostgreSQL every role may read them (viewers see KPIs) and executives and admins may add
versions, under forced row-level security like the other tables (migration 0003).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 20:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER = "execmetrics_owner"
APP = "execmetrics_app"
ROLE = "current_setting('execmetrics.role', true)"
READERS = "ARRAY['viewer', 'analyst', 'executive', 'admin']"
WRITERS = "ARRAY['executive', 'admin']"


def upgrade() -> None:
    table = op.create_table(
        "kpi_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("definition", sa.JSON),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_kpi_versions_name_version"),
    )
    op.bulk_insert(table, starter_rows())
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE kpi_versions OWNER TO {OWNER}")
    op.execute(f"GRANT SELECT, INSERT ON kpi_versions TO {APP}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE kpi_versions_id_seq TO {APP}")
    op.execute("ALTER TABLE kpi_versions ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE kpi_versions FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY kpi_versions_read ON kpi_versions FOR SELECT "
        f"USING ({ROLE} = ANY ({READERS}))"
    )
    op.execute(
        "CREATE POLICY kpi_versions_add ON kpi_versions FOR INSERT "
        f"WITH CHECK ({ROLE} = ANY ({WRITERS}))"
    )


def starter_rows() -> list[dict[str, object]]:
    """Version 1 of each starter KPI."""
    from execmetrics.kpi.config import starter_kpis
    from execmetrics.timeutil import now_micros

    now = now_micros()
    return [
        {
            "name": definition.name,
            "version": 1,
            "definition": definition.model_dump(mode="json"),
            "created_at": now,
            "created_by": "execmetrics",
        }
        for definition in starter_kpis()
    ]


def downgrade() -> None:
    op.drop_table("kpi_versions")
