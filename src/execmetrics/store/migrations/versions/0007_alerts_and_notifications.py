"""alerts and notifications

Versions of alert rules, escalation policies and channels; alert instances and their
transitions; silences; the notification outbox; each user's in-app notifications and
preferences; and the scheduler's lease. On PostgreSQL, under forced row-level security:
every role reads the shared tables and executives and admins change them (the scheduler acts
as admin); a user's in-app notifications and preferences are the user's own, and an admin's.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 21:51:53
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_instances",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("labels_key", sa.String(length=400), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("phase", sa.String(length=12), nullable=False),
        sa.Column("health", sa.String(length=12), nullable=True),
        sa.Column("since", sa.BigInteger(), nullable=False),
        sa.Column("firing_since", sa.BigInteger(), nullable=True),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=True),
        sa.Column("data_version", sa.String(length=100), nullable=True),
        sa.Column("evaluated_at", sa.BigInteger(), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("acknowledgements", sa.JSON(), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_instances")),
        sa.UniqueConstraint("rule", "labels_key", name="uq_alert_instances_rule_labels"),
    )
    op.create_table(
        "alert_rule_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rule_versions")),
        sa.UniqueConstraint("name", "version", name="uq_alert_rule_versions_name_version"),
    )
    op.create_table(
        "channel_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_versions")),
        sa.UniqueConstraint("name", "version", name="uq_channel_versions_name_version"),
    )
    op.create_table(
        "escalation_policy_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_policy_versions")),
        sa.UniqueConstraint("name", "version", name="uq_escalation_policy_versions_name_version"),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_table(
        "alert_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("from_state", sa.String(length=12), nullable=False),
        sa.Column("to_state", sa.String(length=12), nullable=False),
        sa.Column("event", sa.String(length=12), nullable=True),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["alert_instances.id"],
            name=op.f("fk_alert_transitions_instance_id_alert_instances"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_transitions")),
    )
    with op.batch_alter_table("alert_transitions", schema=None) as batch_op:
        batch_op.create_index("ix_alert_transitions_at", ["at"], unique=False)
        batch_op.create_index(
            "ix_alert_transitions_instance_at", ["instance_id", "at"], unique=False
        )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=400), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("claimed_until", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["alert_instances.id"],
            name=op.f("fk_notifications_instance_id_alert_instances"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_notifications_idempotency_key")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_instance", ["instance_id"], unique=False)
        batch_op.create_index(
            "ix_notifications_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "user_preferences",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("preferences", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_preferences_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_preferences")),
    )
    op.create_table(
        "inbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=True),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("read_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_inbox_notification_id_notifications"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_inbox_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox")),
        sa.UniqueConstraint("notification_id", name=op.f("uq_inbox_notification_id")),
    )
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_user_created_at", ["user_id", "created_at"], unique=False)
    secure_on_postgresql()


OWNER = "execmetrics_owner"
APP = "execmetrics_app"
ROLE = "current_setting('execmetrics.role', true)"
READERS = "ARRAY['viewer', 'analyst', 'executive', 'admin']"
WRITERS = "ARRAY['executive', 'admin']"
OWN_ROWS = (
    f"({ROLE} = 'admin' OR "
    "user_id = nullif(current_setting('execmetrics.user_id', true), '')::integer)"
)
APPENDED = ("alert_rule_versions", "escalation_policy_versions", "channel_versions")
SHARED = ("alert_instances", "alert_transitions", "silences", "notifications")
PERSONAL = ("inbox", "user_preferences")


def secure_on_postgresql() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in (*APPENDED, *SHARED, *PERSONAL, "leases"):
        op.execute(f"ALTER TABLE {table} OWNER TO {OWNER}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    readers, writers = f"{ROLE} = ANY ({READERS})", f"{ROLE} = ANY ({WRITERS})"
    for table in APPENDED:
        op.execute(f"GRANT SELECT, INSERT ON {table} TO {APP}")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({readers})")
        op.execute(f"CREATE POLICY {table}_add ON {table} FOR INSERT WITH CHECK ({writers})")
    for table in SHARED:
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON {table} TO {APP}")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({readers})")
        op.execute(
            f"CREATE POLICY {table}_write ON {table} FOR ALL "
            f"USING ({writers}) WITH CHECK ({writers})"
        )
    for table in PERSONAL:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP}")
        op.execute(
            f"CREATE POLICY {table}_own ON {table} FOR ALL "
            f"USING ({OWN_ROWS}) WITH CHECK ({OWN_ROWS})"
        )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON leases TO {APP}")
    op.execute(f"CREATE POLICY leases_admin ON leases FOR ALL USING ({ROLE} = 'admin')")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP}")


def downgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_user_created_at")

    op.drop_table("inbox")
    op.drop_table("user_preferences")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_status_next_attempt_at")
        batch_op.drop_index("ix_notifications_instance")

    op.drop_table("notifications")
    with op.batch_alter_table("alert_transitions", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_transitions_instance_at")
        batch_op.drop_index("ix_alert_transitions_at")

    op.drop_table("alert_transitions")
    op.drop_table("silences")
    op.drop_table("leases")
    op.drop_table("escalation_policy_versions")
    op.drop_table("channel_versions")
    op.drop_table("alert_rule_versions")
    op.drop_table("alert_instances")
