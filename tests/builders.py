"""Building input rows in tests and ingesting them, as a user's files would be."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Engine

from execmetrics.ingest.readers import Row, record_of_row
from execmetrics.ingest.rows import ACTIVITY_COLUMNS
from execmetrics.ingest.service import IngestResult, ingest_sources
from execmetrics.kpi.definitions import KpiDefinition
from execmetrics.metrics.cohorts import compute_cohorts
from execmetrics.metrics.periods import parse_label
from execmetrics.metrics.service import compute_metrics


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def customer(customer_id: str, **fields: object) -> Row:
    return {"customer_id": customer_id, **{k: _text(v) for k, v in fields.items()}}


def start(
    event_id: str,
    customer_id: str,
    subscription_id: str,
    at: str,
    amount: int,
    *,
    kind: str = "start",
    currency: str = "GBP",
    interval: str = "month",
    interval_count: int = 1,
    quantity: int = 1,
    plan: str = "pro-monthly",
    tier: str | None = None,
    trial_ends_at: str | None = None,
) -> Row:
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "subscription_id": subscription_id,
        "occurred_at": at,
        "type": kind,
        "plan_id": plan,
        "tier": tier,
        "amount_minor": str(amount),
        "quantity": str(quantity),
        "currency": currency,
        "interval": interval,
        "interval_count": str(interval_count),
        "trial_ends_at": trial_ends_at,
    }


def change(
    event_id: str, customer_id: str, subscription_id: str, at: str, amount: int, **options: Any
) -> Row:
    return start(event_id, customer_id, subscription_id, at, amount, kind="change", **options)


def cancel(event_id: str, customer_id: str, subscription_id: str, at: str) -> Row:
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "subscription_id": subscription_id,
        "occurred_at": at,
        "type": "cancel",
    }


def fx(day: str, currency: str, rate: str) -> Row:
    return {"date": day, "currency": currency, "rate": rate}


def spend(
    month: str, source: str, amount: int, currency: str = "GBP", campaign: str | None = None
) -> Row:
    return {
        "month": month,
        "source": source,
        "campaign": campaign,
        "amount_minor": str(amount),
        "currency": currency,
    }


def ticket(ticket_id: str, customer_id: str, opened: str, priority: str = "normal",
           closed: str | None = None) -> Row:  # fmt: skip
    return {"ticket_id": ticket_id, "customer_id": customer_id, "opened_at": opened,
            "closed_at": closed, "priority": priority, "category": None}  # fmt: skip


def use(event_id: str, customer_id: str, at: str, kind: str = "login", quantity: int = 1) -> Row:
    """One activity event: a login, or the use of a product feature."""
    return {"event_id": event_id, "customer_id": customer_id, "user_id": None,
            "occurred_at": at, "type": kind, "quantity": str(quantity)}  # fmt: skip


def numbered(rows: Iterable[Row]) -> list[tuple[int, Row]]:
    """Rows with the line numbers they would have in a CSV file (line 1 is the header)."""
    return [(line, row) for line, row in enumerate(rows, start=2)]


def ingest(
    engine: Engine,
    customers: Iterable[Row] = (),
    events: Iterable[Row] = (),
    fx_rates: Iterable[Row] = (),
    marketing_spend: Iterable[Row] = (),
    tickets: Iterable[Row] = (),
    activity: Iterable[Row] = (),
) -> IngestResult:
    """Ingest rows as if from customers.csv, subscription_events.csv, fx_rates.csv,
    marketing_spend.csv, support_tickets.csv and activity_events.csv; customers named by
    events but not given are created bare."""
    customer_rows = list(customers)
    event_rows = list(events)
    known = {row["customer_id"] for row in customer_rows}
    for row in event_rows:
        if row["customer_id"] not in known:
            known.add(row["customer_id"])
            customer_rows.append(customer(str(row["customer_id"])))
    sources = [
        ("customers", "customers.csv", numbered(customer_rows)),
        ("subscription_events", "subscription_events.csv", numbered(event_rows)),
        ("fx_rates", "fx_rates.csv", numbered(fx_rates)),
        ("marketing_spend", "marketing_spend.csv", numbered(marketing_spend)),
        ("support_tickets", "support_tickets.csv", numbered(tickets)),
        (
            "activity_events",
            "activity_events.csv",
            [(line, record_of_row(row, ACTIVITY_COLUMNS)) for line, row in numbered(activity)],
        ),
    ]
    return ingest_sources(engine, [s for s in sources if s[2]])  # type: ignore[misc]


def metrics(engine: Engine, first: str, last: str, **options: Any) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        report = compute_metrics(
            connection, parse_label(first, "from"), parse_label(last, "to"), **options
        )
    return report.rows


def cohorts(engine: Engine, first: str, last: str, **options: Any) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return compute_cohorts(
            connection, parse_label(first, "from"), parse_label(last, "to"), **options
        ).rows


def month(label: str) -> date:
    return parse_label(label, "month")


def kpi_definition(name: str = "mrr", **fields: Any) -> KpiDefinition:
    """A valid KPI definition: the MRR, unless `fields` say otherwise. A formula replaces the
    metric; a field given as None is left out."""
    values: dict[str, Any] = {
        "name": name,
        "title": name.upper(),
        "category": "financial",
        "unit": "money",
        "direction": "higher_is_better",
    }
    if "formula" not in fields:
        values["metric"] = "mrr_end"
    values.update(fields)
    return KpiDefinition.model_validate({k: v for k, v in values.items() if v is not None})
