"""quality reports

The data quality reports the analytics job measures after each ingestion and at least
hourly, which quality KPIs read instead of measuring the data at every evaluation. On
PostgreSQL analysts and up may read them (the checks' examples are row ids, as the quality
page shows them); only admins (the analytics job, the scheduler and the command line act as
admins) write them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER = "execmetrics_owner"
APP = "execmetrics_app"
ROLE = "current_setting('execmetrics.role', true)"
ANALYSTS = "ARRAY['analyst', 'executive', 'admin']"


def upgrade() -> None:
    op.create_table(
        "quality_reports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("measured_at", sa.BigInteger, nullable=False),
        sa.Column("data_version", sa.String(64), nullable=False),
        sa.Column("freshness_us", sa.BigInteger, nullable=False),
        sa.Column("checks", sa.JSON, nullable=False),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE quality_reports OWNER TO {OWNER}")
    op.execute(f"GRANT SELECT, INSERT, DELETE ON quality_reports TO {APP}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE quality_reports_id_seq TO {APP}")
    op.execute("ALTER TABLE quality_reports ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE quality_reports FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY quality_reports_read ON quality_reports FOR SELECT "
        f"USING ({ROLE} = ANY ({ANALYSTS}))"
    )
    op.execute(
        "CREATE POLICY quality_reports_write ON quality_reports FOR ALL "
        f"USING ({ROLE} = 'admin') WITH CHECK ({ROLE} = 'admin')"
    )


def downgrade() -> None:
    op.drop_table("quality_reports")
