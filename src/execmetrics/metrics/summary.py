"""The headline: the latest complete month and the current month to date, each figure with
its previous value and a 12-month trend."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from execmetrics.metrics.periods import period_start, shift_periods, time_zone
from execmetrics.metrics.service import compute_metrics
from execmetrics.timeutil import format_micros, now_micros

if TYPE_CHECKING:
    from execmetrics.metrics.ledger_arrays import LedgerArrays

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


def compute_summary(
    connection: Connection,
    tz: str = "UTC",
    today: date | None = None,
    ledger: LedgerArrays | None = None,
) -> dict[str, Any]:
    """The summary document of `GET /api/v1/summary` (docs/api.md)."""
    today = today or datetime.now(time_zone(tz)).date()
    current = period_start(today, "month")
    report = compute_metrics(
        connection,
        shift_periods(current, "month", TREND_MONTHS),
        current,
        "month",
        tz,
        ledger=ledger,
    )
    # Oldest first: TREND_MONTHS complete months, then the current month so far.
    complete, month_to_date = report.rows[:-1], report.rows[-1]
    return {
        "currency": report.currency,
        "timezone": report.timezone,
        "as_of": format_micros(now_micros()),
        "latest_complete": _headline(complete[-1], complete[-2], complete),
        # The month so far against the whole of the month before it.
        "month_to_date": _headline(month_to_date, complete[-1], None),
    }


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
