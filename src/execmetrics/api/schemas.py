"""Request bodies and documented response shapes of the API (Pydantic v2, extra fields
forbidden so a body cannot smuggle in fields such as a role)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from execmetrics.accounts.roles import Role

MAX_BATCH_ROWS = 10_000
Scalar = str | int | float | bool | None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MetricsDocument(Strict):
    currency: str
    timezone: str
    interval: Literal["week", "month", "quarter", "year"]
    rows: list[dict[str, Any]]


class CohortRow(Strict):
    """One cohort at one offset (docs/metrics.md, definition 8)."""

    cohort: str
    offset: int
    customers: int
    retained: int
    logo_retention: float | None
    mrr: int
    new_mrr: int
    revenue_retention: float | None
    ltv: int | None
    active: int | None = Field(
        description="Cohort customers with activity in the period; null when the period lies "
        "outside the span of the company's stored activity"
    )
    activity_retention: float | None = Field(description="active / customers")


class CohortsDocument(Strict):
    currency: str
    timezone: str
    interval: Literal["week", "month", "quarter", "year"]
    rows: list[CohortRow]


class Figure(Strict):
    value: int | float | None
    previous: int | float | None
    trend: list[int | float | None] | None = None


class Headline(Strict):
    period: str
    metrics: dict[str, Figure]


class SummaryDocument(Strict):
    currency: str
    timezone: str
    as_of: str
    latest_complete: Headline
    month_to_date: Headline


class EventBatch(Strict):
    rows: list[dict[str, Scalar]] = Field(min_length=1, max_length=MAX_BATCH_ROWS)


class KindCountsOut(Strict):
    received: int
    inserted: int
    unchanged: int
    updated: int


class IngestOut(Strict):
    ingestion_id: int
    counts: dict[str, KindCountsOut]
    ledger_customers: int
    ledger_movements: int


class IngestionOut(Strict):
    id: int
    started_at: int
    finished_at: int | None
    actor: str
    sources: list[str]
    counts: dict[str, Any]


class IngestionPage(Strict):
    items: list[IngestionOut]


class CustomerRow(Strict):
    customer_id: str
    name: str | None
    country: str | None
    segment: str | None
    acquisition_source: str | None
    mrr: int
    billing_currency: str | None


class CustomerPage(Strict):
    items: list[CustomerRow]
    next_after: str | None


class Movement(Strict):
    occurred_at: str
    type: str
    mrr_before: int
    mrr_after: int


class CustomerOut(Strict):
    customer_id: str
    name: str | None
    country: str | None
    segment: str | None
    employees: int | None
    acquisition_source: str | None
    acquisition_campaign: str | None
    attributes: dict[str, Any]
    mrr: int
    movements: list[Movement]


class AuditRecord(Strict):
    seq: int
    at: int
    request_id: str
    identity: str
    role: str | None
    action: str
    resource: str
    parameters: dict[str, Any]
    client: str | None
    user_agent: str | None
    outcome: str
    prev_hash: str
    hash: str


class AuditPage(Strict):
    items: list[AuditRecord]
    next_after: int | None


class UserIn(Strict):
    email: str = Field(max_length=320)
    password: str = Field(min_length=12, max_length=1024)
    role: Role


class UserOut(Strict):
    id: int
    email: str
    role: str
    created_at: int
    disabled_at: int | None


class TokenIn(Strict):
    name: str = Field(max_length=100)
    role: Role
    expires_days: int = Field(90, ge=1, le=3650)


class TokenCreated(Strict):
    name: str
    role: str
    token: str
    expires_at: int


class TokenOut(Strict):
    name: str
    role: str
    created_at: int
    expires_at: int
    revoked_at: int | None
    last_used_at: int | None


class Health(Strict):
    status: Literal["ok"]


class KpiOut(Strict):
    """A KPI's current definition (docs/kpis.md)."""

    name: str
    version: int
    title: str
    description: str
    metric: str | None
    group: dict[str, str] | None
    formula: str | None
    category: str
    unit: str
    direction: str
    schedule: str
    period: str
    targets: list[dict[str, Any]]


class KpiValue(Strict):
    """A stored value: `value` rounded half up to six decimals, `exact` as a fraction."""

    period: str | None
    version: int
    value: float | None
    exact: str | None
    evaluated_at: str | None
    goal: float | None
    met: bool | None


class KpiCurrent(KpiValue):
    name: str
    # The industry reference band beside the value, with its source (docs/benchmark-bands.md).
    band: dict[str, Any] | None = None


class KpiHistoryRow(KpiValue):
    previous: float | None
    year_ago: float | None


class KpiHistory(Strict):
    name: str
    rows: list[KpiHistoryRow]


class ConfigApply(Strict):
    """KPIs, alert rules, escalation policies and channels to apply, as in a configuration
    file (docs/kpis.md, docs/alerts.md, docs/notifications.md); a section left out is left
    as it is. Channel secrets are write-only: leave one out to keep the stored one."""

    # No coercion: `"dry_run": 0` is not a yes or no.
    model_config = ConfigDict(extra="forbid", strict=True)

    kpis: list[dict[str, Any]] | None = Field(default=None, max_length=1000)
    rules: list[dict[str, Any]] | None = Field(default=None, max_length=2000)
    policies: list[dict[str, Any]] | None = Field(default=None, max_length=200)
    channels: list[dict[str, Any]] | None = Field(default=None, max_length=200)
    prune: bool = False
    dry_run: bool = False


class FieldChange(Strict):
    field: str
    before: Any
    after: Any


class SectionDiff(Strict):
    created: list[str]
    changed: dict[str, list[FieldChange]]
    removed: list[str]
    unchanged: list[str]


class ConfigApplied(Strict):
    """What applying changed (or with `dry_run`, would change), by section."""

    kpis: SectionDiff | None = None
    rules: SectionDiff | None = None
    policies: SectionDiff | None = None
    channels: SectionDiff | None = None
    dry_run: bool


class RuleOut(Strict):
    """An alert rule's current definition (docs/alerts.md)."""

    name: str
    version: int
    description: str
    kpi: str | list[str]
    severity: str
    condition: dict[str, Any]
    pending_minutes: int
    keep_firing_minutes: int
    nodata: str
    error: str
    labels: dict[str, str]
    notify: list[str]
    policy: str | None


class PolicyOut(Strict):
    name: str
    version: int
    levels: list[dict[str, Any]]
    repeat: int
    ack_timeout_minutes: int | None


class ChannelOut(Strict):
    """A channel, each secret shown only as whether it is set."""

    name: str
    version: int
    send_resolved: bool
    kind: str
    settings: dict[str, Any]


class AlertOut(Strict):
    """An alert instance: a rule and its labels (docs/alerts.md, "State")."""

    id: int
    rule: str
    labels: dict[str, str]
    severity: str
    state: str
    phase: str
    health: str | None
    since: str
    firing_since: str | None
    episode: int
    value: str | None
    summary: str
    period: str | None
    evaluated_at: str
    policy: str | None
    policy_version: int | None
    acknowledged_by: str | None
    acknowledged_at: str | None


class TransitionOut(Strict):
    at: str
    from_state: str
    to_state: str
    event: str | None
    episode: int
    value: str | None
    summary: str


class NotificationOut(Strict):
    """A notification in the outbox and what became of it (docs/notifications.md)."""

    id: int
    idempotency_key: str
    instance_id: int | None
    channel: str
    recipient: str
    event: str
    severity: str
    subject: str
    status: Literal["queued", "delivered", "dead", "silenced"]
    attempts: int
    next_attempt_at: str
    last_error: str | None
    created_at: str
    delivered_at: str | None


class AlertDetail(AlertOut):
    transitions: list[TransitionOut]
    notifications: list[NotificationOut]


class SilenceIn(Strict):
    """Silence the notifications of matching alerts for a while; they keep being evaluated."""

    rule: str | None = Field(default=None, max_length=64)
    matchers: dict[str, str] = Field(default_factory=dict, max_length=20)
    starts_at: datetime | None = None  # default: now
    ends_at: datetime
    reason: str = Field(min_length=1, max_length=2000)


class SilenceOut(Strict):
    id: int
    rule: str | None
    matchers: dict[str, str]
    starts_at: str
    ends_at: str
    author: str
    reason: str
    created_at: str


class InboxOut(Strict):
    id: int
    severity: str
    subject: str
    text: str
    links: list[list[str]]
    created_at: str
    read_at: str | None


class Backtest(Strict):
    mase: float | None
    baseline: str
    baseline_mase: float | None
    origins: int
    horizon: int
    candidates: dict[str, float | None]


class ForecastPointOut(Strict):
    period: str
    forecast: int | float
    lower_80: int | float
    upper_80: int | float
    lower_95: int | float
    upper_95: int | float


class ForecastDocument(Strict):
    """As `execmetrics forecast --format json` prints it (docs/forecasting.md)."""

    series: str
    interval: str
    unit: str
    currency: str | None = None
    model: str
    backtest: Backtest
    notes: list[str]
    forecast: list[ForecastPointOut]


class AnomalyPoint(Strict):
    period: str
    value: float
    expected: float | None
    lower: float | None
    upper: float | None
    score: float | None
    flag: bool


class AnomaliesDocument(Strict):
    """As `execmetrics anomalies --format json` prints it (docs/anomalies.md)."""

    series: str
    interval: str
    season_length: int
    method: str
    sensitivity: float
    flagged: list[str]
    points: list[AnomalyPoint]


class QualityDataset(Strict):
    score: float
    dimensions: dict[str, float]


class QualityCheck(Strict):
    dataset: str
    dimension: Literal["completeness", "validity", "consistency", "timeliness"]
    check: str
    description: str
    score: float
    total: int
    failing: int
    examples: list[str] = Field(max_length=5)


class QualityDocument(Strict):
    """As `execmetrics quality --format json` prints it (docs/quality.md): scores from 0 to
    100, rounded to two places; `overall` is null while there is nothing to score."""

    measured_at: str = Field(
        description="When the data was measured (UTC): a stored report while it is current "
        "(the data unchanged since, the same freshness limit, less than an hour old), else now"
    )
    overall: float | None
    datasets: dict[str, QualityDataset]
    checks: list[QualityCheck]


class ChurnModelOut(Strict):
    """The newest churn model version and how it was judged (docs/churn.md)."""

    version: int
    method: str
    reason: str
    horizon_days: int
    as_of: str
    trained_at: str
    weights: dict[str, float]
    evaluation: dict[str, Any]


class ChurnRiskItem(Strict):
    customer_id: str
    name: str | None
    probability: float
    mrr: int
    factors: list[str]


class ChurnRiskPage(Strict):
    """One page of the newest scoring run, riskiest first; `probability` is the weighted
    risk score (0 to 1) when `method` is weighted_score."""

    run: int
    model_version: int
    method: str
    horizon_days: int
    as_of: str
    scored_at: str
    customers: int
    currency: str
    items: list[ChurnRiskItem]


class SegmentProfile(Strict):
    """A segment's values of the five behaviour features (docs/segments.md)."""

    mrr: int = Field(description="Minor units of the reporting currency")
    tenure_days: float
    logins_30d: float
    feature_breadth_90d: float
    tickets_90d: float


class SegmentOut(Strict):
    segment: int = Field(description="The segment's number: 1 is the largest")
    name: str = Field(description="power users, steady, new, at risk or inactive")
    size: int
    share: float = Field(description="size / rows, rounded to four places")
    mrr: int = Field(description="The members' summed MRR, minor units")
    centre: SegmentProfile = Field(description="The median member's value of each feature")
    centroid: SegmentProfile = Field(
        description="The k-means centre in each feature's units (a geometric mean)"
    )


class SegmentsDocument(Strict):
    """The newest stored segmentation of the paying customers (docs/segments.md)."""

    run: int
    as_of: str
    computed_at: str
    k: int
    chosen_by: str = Field(description="How k was chosen: default, given or silhouette")
    silhouette: float
    rows: int = Field(description="Paying customers segmented")
    currency: str
    segments: list[SegmentOut]
    notes: list[str]


class SegmentCustomer(Strict):
    customer_id: str
    segment: int
    name: str = Field(description="The segment's name")


class SegmentCustomersPage(Strict):
    """One page of the newest segmentation's customers, in order of their id."""

    run: int
    as_of: str
    computed_at: str
    segment: int | None = Field(description="The segment asked for; null for every segment")
    customers: int = Field(description="How many customers there are in all (of the segment)")
    items: list[SegmentCustomer]
