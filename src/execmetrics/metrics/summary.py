"""The headline: the latest complete month and the current month to date, each figure with
its previous value and a 12-month trend."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection

from execmetrics.metrics.periods import period_start, shift_periods, time_zone
from execmetrics.metrics.service import MetricsReport, compute_metrics
from execmetrics.timeutil import format_micros, now_micros

# Headline name -> metrics field.
HEADLINE = {
    "mrr": "mrr_end",
    "arr": "arr",
    "net_new_mrr": "net_new_mrr",
    "mrr_growth": "mrr_growth",
    "mrr_growth_yoy": "mrr_growth_yoy",
    "customer_churn_rate": "customer_churn_rate",
    "nrr": "nrr",
    "quick_ratio": "quick_ratio",
    "arpa": "arpa",
    "customers": "customers_end",
}
TREND_MONTHS = 12


def monthly_report(
    connection: Connection, tz: str, complete_months: int, today: date | None = None
) -> MetricsReport:
    """The last `complete_months` complete months, then the current month so far."""
    today = today or datetime.now(time_zone(tz)).date()
    current = period_start(today, "month")
    first = shift_periods(current, "month", complete_months)
    return compute_metrics(connection, first, current, "month", tz)


def summarise(report: MetricsReport) -> dict[str, Any]:
    """The summary document (docs/api.md) of a `monthly_report` of at least TREND_MONTHS."""
    complete, month_to_date = report.rows[-TREND_MONTHS - 1 : -1], report.rows[-1]
    return {
        "currency": report.currency,
        "timezone": report.timezone,
        "as_of": format_micros(now_micros()),
        "latest_complete": _headline(complete[-1], complete[-2], complete),
        # The month so far against the whole of the month before it.
        "month_to_date": _headline(month_to_date, complete[-1], None),
    }


def compute_summary(
    connection: Connection, tz: str = "UTC", today: date | None = None
) -> dict[str, Any]:
    """The summary document of `GET /api/v1/summary`."""
    return summarise(monthly_report(connection, tz, TREND_MONTHS, today))


def _headline(
    row: dict[str, Any], previous: dict[str, Any], trend: list[dict[str, Any]] | None
) -> dict[str, Any]:
    figures = {}
    for name, field in HEADLINE.items():
        figure: dict[str, Any] = {"value": row[field], "previous": previous[field]}
        # The month to date has no trend of its own: null, as in the schema.
        figure["trend"] = None if trend is None else [r[field] for r in trend]
        figures[name] = figure
    return {"period": row["period"], "metrics": figures}
