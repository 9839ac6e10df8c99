"""Cohort retention: docs/metrics.md, definition 8."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, case, func, select

from execmetrics.metrics.periods import periods_between, time_zone
from execmetrics.metrics.queries import slot_of
from execmetrics.metrics.service import MetricsReport, as_decimal, rate
from execmetrics.money import round_half_up
from execmetrics.settings_store import reporting_currency
from execmetrics.store.tables import customer_ledger, mrr_movements

COHORT_FIELDS = (
    "cohort",
    "offset",
    "customers",
    "retained",
    "logo_retention",
    "mrr",
    "new_mrr",
    "revenue_retention",
    "ltv",
)
# How many months' revenue a period's MRR stands for: a year is 52 weeks.
MONTHS_PER_PERIOD = {"week": Fraction(12, 52), "month": Fraction(1), "quarter": Fraction(3),
                     "year": Fraction(12)}  # fmt: skip


def compute_cohorts(
    connection: Connection, first: date, last: date, interval: str = "month", tz: str = "UTC"
) -> MetricsReport:
    """For each cohort (the period of a customer's first `new` movement) from `first` to `last`,
    and each later period up to `last`: customers retained and their MRR."""
    periods = periods_between(first, last, interval, time_zone(tz))
    boundaries = [p.start_us for p in periods] + [periods[-1].end_us]
    m = mrr_movements.c
    cohort = slot_of(customer_ledger.c.first_paid_at, boundaries).label("cohort")
    period = slot_of(m.occurred_at, boundaries).label("period")
    paying = case((m.type.in_(("new", "reactivation")), 1), (m.type == "churn", -1), else_=0)
    query = (
        select(
            cohort,
            period,
            func.sum(m.mrr_after - m.mrr_before),
            func.sum(paying),
            func.sum(case((m.type == "new", m.mrr_after), else_=0)),
            func.sum(case((m.type == "new", 1), else_=0)),
        )
        .join_from(mrr_movements, customer_ledger, customer_ledger.c.customer_key == m.customer_key)
        .where(
            customer_ledger.c.first_paid_at >= boundaries[0],
            customer_ledger.c.first_paid_at < boundaries[-1],
            m.occurred_at < boundaries[-1],
        )
        .group_by(cohort, period)
    )
    cells: dict[int, dict[int, tuple[int, int, int, int]]] = defaultdict(dict)
    for row in connection.execute(query):
        cells[row.cohort][row.period] = (int(row[2]), int(row[3]), int(row[4]), int(row[5]))
    rows: list[dict[str, Any]] = []
    for index, cohort_period in enumerate(periods):
        by_period = cells.get(index, {})
        size = sum(cell[3] for cell in by_period.values())
        new_mrr = sum(cell[2] for cell in by_period.values())
        mrr = retained = 0
        earned = Fraction(0)  # the cohort's MRR so far, times the months each period stands for
        for offset, period_index in enumerate(range(index, len(periods))):
            delta, paying_change, _, _ = by_period.get(period_index, (0, 0, 0, 0))
            mrr += delta
            retained += paying_change
            earned += mrr * MONTHS_PER_PERIOD[interval]
            rows.append(
                {
                    "cohort": cohort_period.label,
                    "offset": offset,
                    "customers": size,
                    "retained": retained,
                    "logo_retention": as_decimal(rate(retained, size)),
                    "mrr": mrr,
                    "new_mrr": new_mrr,
                    "revenue_retention": as_decimal(rate(mrr, new_mrr)),
                    "ltv": round_half_up(earned / size) if size else None,
                }
            )
    return MetricsReport(reporting_currency(connection), tz, interval, rows)
