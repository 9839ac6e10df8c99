"""support tickets

A company's support tickets, by customer. On PostgreSQL they are customer data: analysts,
executives and admins read them, executives and admins (the ingestion acts as one) write
them, under forced row-level security.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 02:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER = "execmetrics_owner"
APP = "execmetrics_app"
ROLE = "current_setting('execmetrics.role', true)"
READERS = "ARRAY['analyst', 'executive', 'admin']"
WRITERS = "ARRAY['executive', 'admin']"


def upgrade() -> None:
    op.create_table(
        "support_tickets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ticket_id", sa.String(200), nullable=False, unique=True),
        sa.Column("customer_key", sa.Integer, nullable=False),
        sa.Column("opened_at", sa.BigInteger, nullable=False),
        sa.Column("closed_at", sa.BigInteger),
        sa.Column("priority", sa.String(10), nullable=False),
        sa.Column("category", sa.String(200)),
        sa.Column("ingestion_id", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
    )
    op.create_index("ix_support_tickets_customer", "support_tickets", ["customer_key", "opened_at"])
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE support_tickets OWNER TO {OWNER}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON support_tickets TO {APP}")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE support_tickets_id_seq TO {APP}")
    op.execute("ALTER TABLE support_tickets ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE support_tickets FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY support_tickets_read ON support_tickets FOR SELECT "
        f"USING ({ROLE} = ANY ({READERS}))"
    )
    op.execute(
        "CREATE POLICY support_tickets_write ON support_tickets FOR ALL "
        f"USING ({ROLE} = ANY ({WRITERS})) WITH CHECK ({ROLE} = ANY ({WRITERS}))"
    )


def downgrade() -> None:
    op.drop_table("support_tickets")
