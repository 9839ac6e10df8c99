"""churn risk

Trained churn models with their evaluation, daily scoring runs, and the scores of each
paying customer. On PostgreSQL a customer's risk is for executives and admins only (the
analytics job acts as an admin); analysts may read the models and the runs' summaries.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER = "execmetrics_owner"
APP = "execmetrics_app"
ROLE = "current_setting('execmetrics.role', true)"
ANALYSTS = "ARRAY['analyst', 'executive', 'admin']"
EXECUTIVES = "ARRAY['executive', 'admin']"
# (table, who reads it, its id sequence)
TABLES = (
    ("churn_models", ANALYSTS, "churn_models_id_seq"),
    ("churn_score_runs", ANALYSTS, "churn_score_runs_id_seq"),
    ("churn_scores", EXECUTIVES, None),
)


def upgrade() -> None:
    op.create_table(
        "churn_models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("trained_at", sa.BigInteger, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("method", sa.String(40), nullable=False),
        sa.Column("horizon_days", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("weights", sa.JSON, nullable=False),
        sa.Column("evaluation", sa.JSON, nullable=False),
        sa.Column("model", sa.LargeBinary),
    )
    op.create_table(
        "churn_score_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("scored_at", sa.BigInteger, nullable=False),
        sa.Column("customers", sa.Integer, nullable=False),
        sa.Column("mean_probability", sa.Float, nullable=False),
    )
    op.create_table(
        "churn_scores",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("customer_key", sa.Integer, primary_key=True),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("mrr", sa.BigInteger, nullable=False),
        sa.Column("factors", sa.JSON, nullable=False),
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
