"""Cohort retention: docs/metrics.md, definition 8."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, Integer, case, func, literal, select, union_all

from execmetrics.metrics.periods import Period, periods_between, time_zone
from execmetrics.metrics.queries import slot_of
from execmetrics.metrics.service import MetricsReport, as_decimal, rate
from execmetrics.money import round_half_up
from execmetrics.settings_store import reporting_currency
from execmetrics.store.tables import activity_daily, customer_ledger, mrr_movements

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
    "active",
    "activity_retention",
)
# How many months' revenue a period's MRR stands for: a year is 52 weeks.
MONTHS_PER_PERIOD = {"week": Fraction(12, 52), "month": Fraction(1), "quarter": Fraction(3),
                     "year": Fraction(12)}  # fmt: skip
DAY_US = 86_400 * 10**6


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
    active, measured = _active_customers(connection, periods)
    rows: list[dict[str, Any]] = []
    for index, cohort_period in enumerate(periods):
        by_period = cells.get(index, {})
        size = sum(cell[3] for cell in by_period.values())
        new_mrr = sum(cell[2] for cell in by_period.values())
        mrr = retained = 0
        earned = Fraction(0)  # the cohort's MRR so far, times the months each period stands for
        for offset, period_index in enumerate(range(index, len(periods))):
            delta, paying_change, _, _ = by_period.get(period_index, (0, 0, 0, 0))
            active_count = active.get((index, period_index), 0) if measured[period_index] else None
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
                    "active": active_count,
                    "activity_retention": (
                        None if active_count is None else as_decimal(rate(active_count, size))
                    ),
                }
            )
    return MetricsReport(reporting_currency(connection), tz, interval, rows)


def first_day_from(instant_us: int) -> int:
    """The first UTC day (days since 1970-01-01) whose midpoint, 12:00 UTC, is at or after
    the instant: a UTC day belongs to the period that holds the larger part of it."""
    return -((DAY_US // 2 - instant_us) // DAY_US)


def _active_customers(
    connection: Connection, periods: list[Period]
) -> tuple[dict[tuple[int, int], int], list[bool]]:
    """Cohort customers with activity, per (cohort index, period index) from the cohort's own
    period on, and whether each period is measured: whether it overlaps the span from the
    company's first stored activity day to its last (docs/metrics.md, definition 8)."""
    d = activity_daily.c
    unmeasured = [False] * len(periods)
    if connection.execute(select(d.customer_key).limit(1)).first() is None:
        return {}, unmeasured
    boundaries = [p.start_us for p in periods] + [periods[-1].end_us]
    days = [first_day_from(instant) for instant in boundaries]
    ledger = customer_ledger.c
    members = (
        select(ledger.customer_key, slot_of(ledger.first_paid_at, boundaries).label("cohort"))
        .where(ledger.first_paid_at >= boundaries[0], ledger.first_paid_at < boundaries[-1])
        .subquery("members")
    )
    spans = union_all(
        *(
            select(
                literal(k, Integer).label("period"),
                literal(days[k], Integer).label("first_day"),
                literal(days[k + 1], Integer).label("end_day"),
            )
            for k in range(len(periods))
        )
    ).subquery("spans")
    # One primary-key probe per member and period, not a scan of every activity row: the
    # cost follows customers times periods, whatever the volume of activity.
    active = (
        select(literal(1))
        .where(
            d.customer_key == members.c.customer_key,
            d.day >= spans.c.first_day,
            d.day < spans.c.end_day,
        )
        .exists()
    )
    query = (
        # The probe is counted, not filtered on: PostgreSQL turns a filter into a hash join
        # that compares every activity row with every period.
        select(members.c.cohort, spans.c.period, func.count(case((active, 1))))
        # Every member has periods from its cohort on, so the outer join adds no row; it keeps
        # the members as the outer loop on SQLite, so each customer's probes share pages.
        .select_from(members.outerjoin(spans, spans.c.period >= members.c.cohort))
        .group_by(members.c.cohort, spans.c.period)
    )
    counts = {(row.cohort, row.period): int(row[2]) for row in connection.execute(query) if row[2]}
    observed = {period for _, period in counts}
    if observed and min(observed) == 0 and max(observed) == len(periods) - 1:
        return counts, [True] * len(periods)  # activity at both ends: every period is covered
    first, last = connection.execute(select(func.min(d.day), func.max(d.day))).one()
    if first is None:
        return counts, unmeasured
    return counts, [first < days[k + 1] and last >= days[k] for k in range(len(periods))]
