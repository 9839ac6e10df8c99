"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 15:07:29.605667
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_ledger",
        sa.Column("customer_key", sa.Integer(), nullable=False),
        sa.Column("billing_currency", sa.String(length=3), nullable=False),
        sa.Column("first_paid_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("customer_key", name=op.f("pk_customer_ledger")),
    )
    with op.batch_alter_table("customer_ledger", schema=None) as batch_op:
        batch_op.create_index("ix_customer_ledger_first_paid_at", ["first_paid_at"], unique=False)

    op.create_table(
        "ingestions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingestions")),
    )
    op.create_table(
        "mrr_movements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_key", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=12), nullable=False),
        sa.Column("mrr_before", sa.BigInteger(), nullable=False),
        sa.Column("mrr_after", sa.BigInteger(), nullable=False),
        sa.Column("paying_since", sa.BigInteger(), nullable=True),
        sa.Column("next_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mrr_movements")),
        sa.UniqueConstraint(
            "customer_key", "occurred_at", name="uq_mrr_movements_customer_instant"
        ),
    )
    with op.batch_alter_table("mrr_movements", schema=None) as batch_op:
        batch_op.create_index("ix_mrr_movements_occurred_at", ["occurred_at"], unique=False)

    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "subscription_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("customer_key", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.String(length=200), nullable=False),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("plan_id", sa.String(length=200), nullable=True),
        sa.Column("tier", sa.String(length=200), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("interval", sa.String(length=5), nullable=True),
        sa.Column("interval_count", sa.Integer(), nullable=True),
        sa.Column("trial_ends_at", sa.BigInteger(), nullable=True),
        sa.Column("ingestion_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_subscription_events_event_id")),
    )
    with op.batch_alter_table("subscription_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subscription_events_currency", ["currency", "occurred_at"], unique=False
        )
        batch_op.create_index(
            "ix_subscription_events_customer", ["customer_key", "occurred_at"], unique=False
        )

    op.create_table(
        "subscription_mrr_spans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_key", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.String(length=200), nullable=False),
        sa.Column("plan_id", sa.String(length=200), nullable=False),
        sa.Column("tier", sa.String(length=200), nullable=True),
        sa.Column("valid_from", sa.BigInteger(), nullable=False),
        sa.Column("valid_to", sa.BigInteger(), nullable=True),
        sa.Column("mrr", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_mrr_spans")),
    )
    with op.batch_alter_table("subscription_mrr_spans", schema=None) as batch_op:
        batch_op.create_index("ix_subscription_mrr_spans_customer", ["customer_key"], unique=False)

    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("segment", sa.String(length=20), nullable=True),
        sa.Column("employees", sa.Integer(), nullable=True),
        sa.Column("acquisition_source", sa.String(length=200), nullable=True),
        sa.Column("acquisition_campaign", sa.String(length=200), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("ingestion_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ingestion_id"], ["ingestions.id"], name=op.f("fk_customers_ingestion_id_ingestions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_customers_customer_id")),
    )
    op.create_table(
        "fx_rates",
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("rate", sa.String(length=40), nullable=False),
        sa.Column("ingestion_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ingestion_id"], ["ingestions.id"], name=op.f("fk_fx_rates_ingestion_id_ingestions")
        ),
        sa.PrimaryKeyConstraint("currency", "date", name=op.f("pk_fx_rates")),
    )
    op.create_table(
        "marketing_spend",
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("ingestion_id", sa.Integer(), nullable=False),
        sa.Column("source_ref", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ingestion_id"],
            ["ingestions.id"],
            name=op.f("fk_marketing_spend_ingestion_id_ingestions"),
        ),
        sa.PrimaryKeyConstraint("month", "source", "campaign", name=op.f("pk_marketing_spend")),
    )


def downgrade() -> None:
    op.drop_table("marketing_spend")
    op.drop_table("fx_rates")
    op.drop_table("customers")
    with op.batch_alter_table("subscription_mrr_spans", schema=None) as batch_op:
        batch_op.drop_index("ix_subscription_mrr_spans_customer")

    op.drop_table("subscription_mrr_spans")
    with op.batch_alter_table("subscription_events", schema=None) as batch_op:
        batch_op.drop_index("ix_subscription_events_customer")
        batch_op.drop_index("ix_subscription_events_currency")

    op.drop_table("subscription_events")
    op.drop_table("settings")
    with op.batch_alter_table("mrr_movements", schema=None) as batch_op:
        batch_op.drop_index("ix_mrr_movements_occurred_at")

    op.drop_table("mrr_movements")
    op.drop_table("ingestions")
    with op.batch_alter_table("customer_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_ledger_first_paid_at")

    op.drop_table("customer_ledger")
