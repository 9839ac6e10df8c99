"""PostgreSQL roles and row-level security

Creates `execmetrics_owner`, which owns the schema, and `execmetrics_app`, the role the server
connects as: it owns nothing, is no superuser and cannot bypass row-level security. Every
table of financial or customer data gets row-level security, enabled and forced, with
policies that read the caller's role from the transaction-local setting `execmetrics.role`
(docs/api.md). The application may only INSERT and SELECT the audit log. SQLite has no roles:
there the application enforces the same rules (the route/role table).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 17:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNER = "execmetrics_owner"
APP = "execmetrics_app"
READERS = "ARRAY['analyst', 'executive', 'admin']"
WRITERS = "ARRAY['executive', 'admin']"
ROLE = "current_setting('execmetrics.role', true)"
# The viewer's summary reads these in aggregate only (docs/api.md, "Row-level security").
AGGREGATE = "current_setting('execmetrics.scope', true) = 'aggregate'"
CUSTOMER_TABLES = ("customers", "subscription_events", "customer_ledger", "subscription_mrr_spans")
AGGREGATE_TABLES = ("mrr_movements", "marketing_spend", "fx_rates")
OTHER_TABLES = ("settings", "ingestions", "users", "api_tokens", "web_sessions", "alembic_version")


def create_role_statement(name: str, options: str) -> str:
    """Create the role unless it exists. Roles belong to the whole server: several databases
    may share them, and two databases migrated at once both find the role missing; the one
    that loses the race to create it fails with unique_violation (duplicate_object once the
    other has committed), which leaves the role as wanted."""
    return (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') "
        f"THEN CREATE ROLE {name} {options}; END IF; "
        "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(create_role_statement(OWNER, "NOLOGIN"))
    op.execute(create_role_statement(APP, "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"))
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP}")
    for table in (*CUSTOMER_TABLES, *AGGREGATE_TABLES, *OTHER_TABLES, "audit_log"):
        op.execute(f"ALTER TABLE {table} OWNER TO {OWNER}")
    op.execute("ALTER FUNCTION audit_log_refuse_change() OWNER TO " + OWNER)
    for table in (*CUSTOMER_TABLES, *AGGREGATE_TABLES, "settings", "ingestions", "users",
                  "api_tokens", "web_sessions"):  # fmt: skip
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP}")
    op.execute(f"GRANT SELECT ON alembic_version TO {APP}")
    op.execute(f"GRANT SELECT, INSERT ON audit_log TO {APP}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP}")
    for table in (*CUSTOMER_TABLES, *AGGREGATE_TABLES):
        readers = f"{ROLE} = ANY ({READERS})"
        if table in AGGREGATE_TABLES:
            readers = f"({readers} OR {AGGREGATE})"
        writers = f"{ROLE} = ANY ({WRITERS})"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT USING ({readers})")
        op.execute(
            f"CREATE POLICY {table}_write ON {table} FOR ALL "
            f"USING ({writers}) WITH CHECK ({writers})"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in (*CUSTOMER_TABLES, *AGGREGATE_TABLES):
        op.execute(f"DROP POLICY {table}_write ON {table}")
        op.execute(f"DROP POLICY {table}_read ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP}")
