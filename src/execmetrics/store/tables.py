"""Table definitions (SQLAlchemy Core). Instants are BIGINT microseconds since the epoch, UTC."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

# The subscription events that set a price (the condition of a partial index, and of the
# queries that use it, written the same way so that PostgreSQL sees the index applies).
PRICED_EVENTS = "type IN ('start', 'change')"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

ingestions = Table(
    "ingestions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    Column("actor", String(200), nullable=False),
    Column("sources", JSON, nullable=False),
    Column("counts", JSON, nullable=False),
)

customers = Table(
    "customers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_id", String(200), nullable=False, unique=True),
    Column("name", Text),
    Column("created_at", BigInteger),
    Column("country", String(2)),
    Column("segment", String(20)),
    Column("employees", Integer),
    Column("acquisition_source", String(200)),
    Column("acquisition_campaign", String(200)),
    Column("attributes", JSON, nullable=False),
    Column("ingestion_id", Integer, ForeignKey("ingestions.id"), nullable=False),
    Column("source", Text, nullable=False),
)

# The ledger tables (customer_ledger, mrr_movements, subscription_mrr_spans) are derived: the
# ledger service rebuilds a customer's rows from its stored events, so they carry no foreign
# keys, whose per-row checks would dominate a bulk rebuild on PostgreSQL.

# Per customer with events: the currency of its first subscription
# event and the instant of its first `new` movement (its cohort; NULL if it never paid).
customer_ledger = Table(
    "customer_ledger",
    metadata,
    Column("customer_key", Integer, primary_key=True),
    Column("billing_currency", String(3), nullable=False),
    Column("first_paid_at", BigInteger),
    Index("ix_customer_ledger_first_paid_at", "first_paid_at"),
)

# Subscription events reference customers and ingestions without foreign keys: ingestion
# inserts them by joining the staged rows to customers in one statement, and on PostgreSQL a
# foreign key check per row made that statement five times slower.
subscription_events = Table(
    "subscription_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("customer_key", Integer, nullable=False),
    Column("subscription_id", String(200), nullable=False),
    Column("occurred_at", BigInteger, nullable=False),
    Column("type", String(10), nullable=False),
    Column("plan_id", String(200)),
    Column("tier", String(200)),
    Column("amount_minor", BigInteger),
    Column("quantity", Integer),
    Column("currency", String(3)),
    Column("interval", String(5)),
    Column("interval_count", Integer),
    Column("trial_ends_at", BigInteger),
    Column("ingestion_id", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Index("ix_subscription_events_customer", "customer_key", "occurred_at"),
    Index("ix_subscription_events_currency", "currency", "occurred_at"),
    # The prices of starts and changes, in plan order: the data quality check of amounts
    # against their plan's median counts them from this alone, without sorting the table.
    Index(
        "ix_subscription_events_prices",
        "plan_id",
        "currency",
        "interval",
        "interval_count",
        "amount_minor",
        "quantity",
        sqlite_where=text(PRICED_EVENTS),
        postgresql_where=text(PRICED_EVENTS),
    ),
)

# A ticket's closing time, priority and category may change when it is ingested again (a
# ticket exported open and later closed); the rest may not.
support_tickets = Table(
    "support_tickets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ticket_id", String(200), nullable=False, unique=True),
    Column("customer_key", Integer, nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    Column("closed_at", BigInteger),
    Column("priority", String(10), nullable=False),
    Column("category", String(200)),
    Column("ingestion_id", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Index("ix_support_tickets_customer", "customer_key", "opened_at"),
)

# Activity (logins and product feature use) arrives by the tens of millions, so it is kept
# as daily counts per customer and type; the raw rows are kept only when asked for. Days are
# whole days since 1970-01-01 UTC. Each event's id and a checksum of its content stay, so
# ingesting an event again is a no-op and a changed one is refused.
activity_types = Table(
    "activity_types",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
)

activity_daily = Table(
    "activity_daily",
    metadata,
    Column("customer_key", Integer, primary_key=True),
    Column("day", Integer, primary_key=True),
    Column("type_key", Integer, primary_key=True),
    Column("events", Integer, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

activity_event_ids = Table(
    "activity_event_ids",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("fingerprint", BigInteger, nullable=False),
    Column("ingestion_id", Integer, nullable=False),
    sqlite_with_rowid=False,
)

activity_events = Table(
    "activity_events",
    metadata,
    Column("event_id", String(200), primary_key=True),
    Column("customer_key", Integer, nullable=False),
    Column("user_id", String(200)),
    Column("occurred_at", BigInteger, nullable=False),
    Column("type_key", Integer, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("ingestion_id", Integer, nullable=False),
    Index("ix_activity_events_customer", "customer_key", "occurred_at"),
    sqlite_with_rowid=False,
)

# Churn risk (docs/churn.md): each trained model (or the weighted score chosen in its place)
# with its evaluation; each daily scoring run; the latest runs' scores per customer.
churn_models = Table(
    "churn_models",
    metadata,
    Column("id", Integer, primary_key=True),  # the model's version
    Column("trained_at", BigInteger, nullable=False),
    Column("as_of", Date, nullable=False),
    Column("method", String(40), nullable=False),
    Column("horizon_days", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("weights", JSON, nullable=False),
    Column("evaluation", JSON, nullable=False),
    # The fitted scikit-learn pipeline, pickled; NULL for the weighted score.
    Column("model", LargeBinary),
)

churn_score_runs = Table(
    "churn_score_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, nullable=False),
    Column("as_of", Date, nullable=False),
    Column("scored_at", BigInteger, nullable=False),
    Column("customers", Integer, nullable=False),
    Column("mean_probability", Float, nullable=False),
)

churn_scores = Table(
    "churn_scores",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("customer_key", Integer, primary_key=True),
    Column("probability", Float, nullable=False),
    Column("mrr", BigInteger, nullable=False),  # at the run's date, reporting currency
    Column("factors", JSON, nullable=False),
)

# Customer segments (docs/segments.md): each day's segmentation of the paying customers, or
# why none could be made that day, and every customer's segment in the latest runs.
segment_runs = Table(
    "segment_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("computed_at", BigInteger, nullable=False),
    Column("k", Integer, nullable=False),
    Column("chosen_by", String(20), nullable=False),  # default, given or silhouette
    Column("silhouette", Float),  # NULL when no segmentation could be made
    Column("rows", Integer, nullable=False),  # the paying customers segmented (or found)
    Column("currency", String(3), nullable=False),  # of every MRR figure in `segments`
    # Each segment's number, name, size, share, MRR, centroid, centre and standing.
    Column("segments", JSON, nullable=False),
    Column("notes", JSON, nullable=False),
    Column("problem", Text),  # why no segmentation could be made; NULL when one was
)

# Each data quality report the analytics job measured (analytics/quality_store.py): the
# checks, each with its exact score, from which the scores are worked out again when read.
quality_reports = Table(
    "quality_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("measured_at", BigInteger, nullable=False),
    Column("data_version", String(64), nullable=False),  # metrics/cache.py data_version
    Column("freshness_us", BigInteger, nullable=False),  # the timeliness limit it graded
    Column("checks", JSON, nullable=False),
)

segment_assignments = Table(
    "segment_assignments",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("customer_key", Integer, primary_key=True),
    Column("segment", Integer, nullable=False),
)

fx_rates = Table(
    "fx_rates",
    metadata,
    Column("currency", String(3), primary_key=True),
    Column("date", Date, primary_key=True),
    # A decimal string, kept exact (SQLite has no exact decimal column type).
    Column("rate", String(40), nullable=False),
    Column("ingestion_id", Integer, ForeignKey("ingestions.id"), nullable=False),
    Column("source", Text, nullable=False),
)

marketing_spend = Table(
    "marketing_spend",
    metadata,
    Column("month", String(7), primary_key=True),
    Column("source", String(200), primary_key=True),
    # '' when the spend is not attributed to a campaign (part of the key, so never NULL).
    Column("campaign", String(200), primary_key=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("ingestion_id", Integer, ForeignKey("ingestions.id"), nullable=False),
    Column("source_ref", Text, nullable=False),
)

# One row per change of a customer's MRR. A row is also the span [occurred_at, next_at)
# during which the customer's MRR is mrr_after; paying_since is the start of the paying
# spell the movement belongs to (for churn: the spell it ends).
mrr_movements = Table(
    "mrr_movements",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_key", Integer, nullable=False),
    Column("occurred_at", BigInteger, nullable=False),
    Column("type", String(12), nullable=False),
    Column("mrr_before", BigInteger, nullable=False),
    Column("mrr_after", BigInteger, nullable=False),
    Column("paying_since", BigInteger),
    Column("next_at", BigInteger),
    UniqueConstraint("customer_key", "occurred_at", name="uq_mrr_movements_customer_instant"),
    Index("ix_mrr_movements_occurred_at", "occurred_at"),
)

# Positive MRR of one subscription over [valid_from, valid_to), for plan and tier breakdowns.
subscription_mrr_spans = Table(
    "subscription_mrr_spans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer_key", Integer, nullable=False),
    Column("subscription_id", String(200), nullable=False),
    Column("plan_id", String(200), nullable=False),
    Column("tier", String(200)),
    Column("valid_from", BigInteger, nullable=False),
    Column("valid_to", BigInteger),
    Column("mrr", BigInteger, nullable=False),
    Index("ix_subscription_mrr_spans_customer", "customer_key"),
)

# Identities of the server. Passwords and tokens are stored only as hashes.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(20), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("disabled_at", BigInteger),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    # SHA-256 of the token: it carries 256 random bits, so no salt or slow hash is needed.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Column("last_used_at", BigInteger),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("session_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

# The append-only audit trail: each record holds the hash of the one before it (seq - 1), so
# an edited, deleted, inserted or reordered record breaks the chain. The unique seq and
# prev_hash make a fork impossible.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("identity", String(400), nullable=False),
    Column("role", String(20)),
    Column("action", String(100), nullable=False),
    Column("resource", String(400), nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("client", String(64)),
    Column("user_agent", String(400)),
    Column("outcome", String(40), nullable=False),
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("hash", String(64), nullable=False, unique=True),
)

# Every version of every KPI definition, appended, never changed: a change to a KPI adds its
# next version, and removing it adds a version without a definition (docs/kpis.md).
kpi_versions = Table(
    "kpi_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("definition", JSON),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(200), nullable=False),
    UniqueConstraint("name", "version", name="uq_kpi_versions_name_version"),
)

# Each evaluation of a KPI: its exact value ("p/q", or "p" when whole; NULL when it has none)
# for one period at one data version. Evaluating again at the same data version adds nothing.
kpi_evaluations = Table(
    "kpi_evaluations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("period", String(10), nullable=False),
    Column("value", Text),
    Column("data_version", String(100), nullable=False),
    Column("evaluated_at", BigInteger, nullable=False),
    UniqueConstraint("name", "version", "period", "data_version", name="uq_kpi_evaluations_inputs"),
    Index("ix_kpi_evaluations_name_evaluated_at", "name", "evaluated_at"),
)


def _versions(name: str) -> Table:
    """Every version of a named definition, appended, never changed, as for KPIs."""
    return Table(
        name,
        metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(64), nullable=False),
        Column("version", Integer, nullable=False),
        Column("definition", JSON),
        Column("created_at", BigInteger, nullable=False),
        Column("created_by", String(200), nullable=False),
        UniqueConstraint("name", "version", name=f"uq_{name}_name_version"),
    )


alert_rule_versions = _versions("alert_rule_versions")
escalation_policy_versions = _versions("escalation_policy_versions")
# A channel's secrets are stored encrypted with a key derived from the server's secret key.
channel_versions = _versions("channel_versions")

# One alert instance per rule and label set (docs/alerts.md, "State"). An instance is updated
# in place; its history is in alert_transitions.
alert_instances = Table(
    "alert_instances",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("rule", String(64), nullable=False),
    Column("labels_key", String(400), nullable=False),
    Column("labels", JSON, nullable=False),
    Column("rule_version", Integer, nullable=False),
    Column("severity", String(10), nullable=False),
    Column("phase", String(12), nullable=False),
    Column("health", String(12)),
    Column("since", BigInteger, nullable=False),
    Column("firing_since", BigInteger),
    Column("episode", Integer, nullable=False),
    Column("value", Text),
    Column("summary", Text, nullable=False),
    Column("period", String(10)),  # the KPI period last judged
    Column("data_version", String(100)),
    Column("evaluated_at", BigInteger, nullable=False),
    # The escalation policy version the current episode started with, and its acknowledgements.
    Column("policy", String(64)),
    Column("policy_version", Integer),
    Column("acknowledgements", JSON, nullable=False),
    Column("acknowledged_by", String(200)),
    UniqueConstraint("rule", "labels_key", name="uq_alert_instances_rule_labels"),
)

alert_transitions = Table(
    "alert_transitions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("instance_id", Integer, ForeignKey("alert_instances.id"), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("from_state", String(12), nullable=False),
    Column("to_state", String(12), nullable=False),
    Column("event", String(12)),
    Column("episode", Integer, nullable=False),
    Column("value", Text),
    Column("summary", Text, nullable=False),
    Index("ix_alert_transitions_instance_at", "instance_id", "at"),
    Index("ix_alert_transitions_at", "at"),
)

silences = Table(
    "silences",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("rule", String(64)),  # NULL: every rule
    Column("matchers", JSON, nullable=False),  # labels an instance must carry, exactly
    Column("starts_at", BigInteger, nullable=False),
    Column("ends_at", BigInteger, nullable=False),
    Column("author", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# The transactional outbox: a notification is written in the transaction that changes the
# alert, and delivered afterwards by the dispatcher (docs/notifications.md, "Delivery").
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("idempotency_key", String(400), nullable=False, unique=True),
    Column("instance_id", Integer, ForeignKey("alert_instances.id")),
    Column("channel", String(64), nullable=False),  # a channel's name, or in_app
    Column("recipient", String(320), nullable=False),  # '' for the channel's own recipients
    Column("event", String(20), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("message", JSON, nullable=False),
    # queued, delivered, dead (after the last attempt), or silenced (kept, never sent)
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("claimed_until", BigInteger),
    Column("last_error", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger),
    Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_notifications_instance", "instance_id"),
)

# In-app notifications: each user's own list, read through the API and the dashboard.
inbox = Table(
    "inbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("notification_id", Integer, ForeignKey("notifications.id"), unique=True),
    Column("severity", String(10), nullable=False),
    Column("subject", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("links", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("read_at", BigInteger),
    Index("ix_inbox_user_created_at", "user_id", "created_at"),
)

# Each user's notification preferences: time zone, quiet hours, phone, digest.
user_preferences = Table(
    "user_preferences",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("preferences", JSON, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Leases that let one process of several run the scheduler (docs/alerts.md, "Where it runs").
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
