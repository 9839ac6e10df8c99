"""Data quality scores from 0 to 100: per check, per dataset and dimension, per dataset and
overall, with the failing rows of each check (docs/quality.md).

A check counts the rows it looks at and those that fail it; its score is the share that
pass. Timeliness is graded instead: 100 while the newest row is within the freshness limit,
falling to 0 at twice the limit. A dimension's score is the mean of its checks, a dataset's
the mean of its dimensions, the overall score the mean of the datasets. A check with nothing
to look at (no tickets yet) is left out. Scores are exact fractions, so that a KPI following
one (kpi/evaluation.py) is as exact as every other KPI value.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, Float, and_, case, cast, func, or_, select, text

from execmetrics.store.bulk import chunked
from execmetrics.store.tables import (
    PRICED_EVENTS,
    activity_daily,
    customers,
    mrr_movements,
    subscription_events,
    subscription_mrr_spans,
    support_tickets,
)
from execmetrics.timeutil import format_micros

DIMENSIONS = ("completeness", "validity", "consistency", "timeliness")
DAY_US = 86_400 * 1_000_000
# The dimensions each dataset's checks below score; KPIs can follow each of these scores
# (kpi/definitions.py), so a check of a new dataset or dimension is declared here too.
DATASET_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "customers": ("completeness",),
    "subscription_events": ("completeness", "validity", "timeliness"),
    "support_tickets": ("completeness", "validity", "timeliness"),
    "activity_events": ("timeliness",),
    "ledger": ("consistency",),
}
DEFAULT_FRESHNESS_US = 2 * 86_400 * 1_000_000
# An amount more than this many times its plan's median (or less than its inverse) is out of
# its plan's norm.
AMOUNT_FACTOR = 10
EXAMPLES = 5
LOOKUP_CHUNK = 500  # keys per IN list


@dataclass(frozen=True)
class Check:
    dataset: str
    dimension: str
    name: str
    description: str
    total: int
    failing: int
    score: Fraction
    examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QualityReport:
    overall: Fraction | None
    datasets: dict[str, dict[str, Any]]  # dataset: {"score", "dimensions": {dimension: score}}
    checks: list[Check]


def quality_report(
    connection: Connection, now_us: int, freshness_us: int = DEFAULT_FRESHNESS_US
) -> QualityReport:
    checks = [
        found
        for run in _CHECKS
        for found in run(connection, now_us, freshness_us)
        if found.total > 0
    ]
    return report_of(checks)


def report_of(checks: list[Check]) -> QualityReport:
    by_dataset: dict[str, dict[str, list[Fraction]]] = defaultdict(lambda: defaultdict(list))
    for check in checks:
        by_dataset[check.dataset][check.dimension].append(check.score)
    datasets: dict[str, dict[str, Any]] = {}
    for dataset, dimensions in by_dataset.items():
        scores = {dim: statistics.mean(values) for dim, values in dimensions.items()}
        datasets[dataset] = {"score": statistics.mean(scores.values()), "dimensions": scores}
    overall = statistics.mean(d["score"] for d in datasets.values()) if datasets else None
    return QualityReport(overall, datasets, checks)


def _share_check(
    dataset: str, dimension: str, name: str, description: str, total: int,
    failing_examples: list[str], failing: int | None = None,
) -> Check:  # fmt: skip
    failed = len(failing_examples) if failing is None else failing
    score = Fraction(100 * (total - failed), total) if total else Fraction(100)
    return Check(dataset, dimension, name, description, total, failed, score,
                 failing_examples[:EXAMPLES])  # fmt: skip


def _count(connection: Connection, query: Any) -> int:
    return int(connection.execute(query).scalar_one() or 0)


def _failing(connection: Connection, row_id: Any, condition: Any) -> tuple[int, list[str]]:
    """How many rows meet `condition`, and the first EXAMPLES of their ids: counted by the
    database, not read out."""
    count = _count(connection, select(func.count()).where(condition))
    first = connection.execute(select(row_id).where(condition).order_by(row_id).limit(EXAMPLES))
    return count, list(first.scalars())


def _customer_checks(connection: Connection, now_us: int, freshness_us: int) -> Iterable[Check]:
    c = customers.c
    total = _count(connection, select(func.count()).select_from(customers))
    for column, label in ((c.segment, "segment"), (c.country, "country"),
                          (c.acquisition_source, "acquisition_source")):  # fmt: skip
        count, examples = _failing(connection, c.customer_id, column.is_(None))
        yield _share_check(
            "customers", "completeness", f"{label} given",
            f"customers whose optional {label} is filled in", total, examples, count,
        )  # fmt: skip


def _event_checks(connection: Connection, now_us: int, freshness_us: int) -> Iterable[Check]:
    e = subscription_events.c
    is_priced = text(PRICED_EVENTS)
    priced = _count(
        connection, select(func.count()).select_from(subscription_events).where(is_priced)
    )
    count, examples = _failing(connection, e.event_id, is_priced & e.tier.is_(None))
    yield _share_check(
        "subscription_events", "completeness", "tier given",
        "starts and changes whose optional tier is filled in", priced, examples, count,
    )  # fmt: skip
    count, examples = _odd_amounts(connection)
    yield _share_check(
        "subscription_events", "validity", "amount within its plan's norm",
        f"starts and changes whose price per unit is within {AMOUNT_FACTOR} times the median "
        "of its plan, currency and billing interval", priced, examples, count,
    )  # fmt: skip
    total = _count(connection, select(func.count()).select_from(subscription_events))
    count, examples = _failing(connection, e.event_id, e.occurred_at > now_us)
    yield _share_check(
        "subscription_events", "validity", "not in the future",
        f"events that occurred by {format_micros(now_us)}", total, examples, count,
    )  # fmt: skip
    newest = connection.execute(
        select(func.max(e.occurred_at)).where(e.occurred_at <= now_us)
    ).scalar()
    if newest is not None:
        yield _freshness("subscription_events", "the newest event", newest, now_us, freshness_us)


def _odd_amounts(connection: Connection) -> tuple[int, list[str]]:
    """How many starts and changes have a price per unit (amount over quantity, at least 1)
    beyond AMOUNT_FACTOR times the median of their plan, currency and billing interval, and
    the first EXAMPLES of their ids. A plan has few distinct prices: the database counts the
    events at each (from an index of them), and the medians are read from those counts."""
    e = subscription_events.c
    group = (e.plan_id, e.currency, e.interval, e.interval_count)
    # Written as the index of prices is, so that PostgreSQL sees the index applies.
    is_priced = text(PRICED_EVENTS)
    prices: dict[tuple[Any, ...], list[tuple[float, int]]] = defaultdict(list)
    for *plan, amount, quantity, events in connection.execute(
        select(*group, e.amount_minor, e.quantity, func.count())
        .where(is_priced)
        .group_by(*group, e.amount_minor, e.quantity)
    ):
        prices[tuple(plan)].append((amount / max(quantity or 1, 1), events))
    per_unit = cast(e.amount_minor, Float) / case((e.quantity > 1, e.quantity), else_=1)
    odd, beyond = 0, []
    for key, counted in prices.items():
        median = _weighted_median(counted)
        lowest, highest = median / AMOUNT_FACTOR, median * AMOUNT_FACTOR
        outside = sum(n for price, n in counted if median > 0 and not lowest <= price <= highest)
        if outside:
            odd += outside
            same_group = [column.is_(None) if value is None else column == value
                          for column, value in zip(group, key, strict=True)]  # fmt: skip
            beyond.append(and_(*same_group, ~per_unit.between(lowest, highest)))
    if not odd:
        return 0, []
    first = connection.execute(
        select(e.event_id).where(is_priced, or_(*beyond)).order_by(e.event_id).limit(EXAMPLES)
    )
    return odd, list(first.scalars())


def _weighted_median(counted: list[tuple[float, int]]) -> float:
    """The median of values given with how often each occurs (the mean of the middle two for
    an even count), as statistics.median would find it among the values written out."""
    ordered = sorted(counted)
    total = sum(n for _, n in ordered)
    middle = ((total - 1) // 2, total // 2)
    found, seen = [], 0
    for price, n in ordered:
        found += [price for position in middle if seen <= position < seen + n]
        seen += n
    return (found[0] + found[1]) / 2


def _ticket_checks(connection: Connection, now_us: int, freshness_us: int) -> Iterable[Check]:
    t = support_tickets.c
    total = _count(connection, select(func.count()).select_from(support_tickets))
    count, examples = _failing(connection, t.ticket_id, t.category.is_(None))
    yield _share_check(
        "support_tickets", "completeness", "category given",
        "tickets whose optional category is filled in", total, examples, count,
    )  # fmt: skip
    count, examples = _failing(connection, t.ticket_id, t.closed_at < t.opened_at)
    yield _share_check(
        "support_tickets", "validity", "closed after opened",
        "tickets closed no earlier than they were opened", total, examples, count,
    )  # fmt: skip
    newest = connection.execute(select(func.max(t.opened_at))).scalar()
    if newest is not None:
        yield _freshness("support_tickets", "the newest ticket", newest, now_us, freshness_us)


def _activity_checks(connection: Connection, now_us: int, freshness_us: int) -> Iterable[Check]:
    """Activity is kept as daily counts: its newest day must be recent. (Activity for an
    unknown customer cannot be stored: ingestion refuses it.)"""
    # Each customer's newest day is one step into the daily counts' primary key (customer,
    # day, type); the newest of all is then read from 100,000 steps, not millions of rows.
    a = activity_daily.c
    customer_newest = (
        select(func.max(a.day))
        .where(a.customer_key == customers.c.id)
        .correlate(customers)
        .scalar_subquery()
    )
    newest_day = connection.execute(
        select(func.max(customer_newest)).select_from(customers)
    ).scalar()
    if newest_day is not None:
        # The end of the newest UTC day with activity: all that day's activity has arrived.
        newest = (int(newest_day) + 1) * DAY_US
        yield _freshness("activity_events", "the newest day of activity", min(newest, now_us),
                         now_us, freshness_us)  # fmt: skip


def _ledger_checks(connection: Connection, now_us: int, freshness_us: int) -> Iterable[Check]:
    """The movement ledger against itself and against the subscriptions' MRR spans."""
    m, s = mrr_movements.c, subscription_mrr_spans.c
    previous = func.lag(m.mrr_after, 1, 0).over(partition_by=m.customer_key, order_by=m.occurred_at)
    chain = select(m.customer_key, m.mrr_before, previous.label("previous")).subquery()
    broken = set(
        connection.execute(
            select(chain.c.customer_key).where(chain.c.mrr_before != chain.c.previous).distinct()
        ).scalars()
    )
    last_at = (
        select(m.customer_key, func.max(m.occurred_at).label("at"))
        .where(m.occurred_at <= now_us)
        .group_by(m.customer_key)
        .subquery()
    )
    by_movements = dict(
        connection.execute(
            select(m.customer_key, m.mrr_after).join(
                last_at,
                (last_at.c.customer_key == m.customer_key) & (last_at.c.at == m.occurred_at),
            )
        ).all()
    )
    in_effect = (s.valid_from <= now_us) & (s.valid_to.is_(None) | (s.valid_to > now_us))
    by_spans = dict(
        connection.execute(
            select(s.customer_key, func.sum(s.mrr)).where(in_effect).group_by(s.customer_key)
        ).all()
    )
    keys = sorted(set(by_movements) | set(by_spans))
    yield _share_check(
        "ledger", "consistency", "movements chain",
        "customers whose every movement starts from the MRR the one before left",
        len(set(by_movements) | broken), _customer_ids(connection, broken),
    )  # fmt: skip
    mismatched = [k for k in keys if int(by_movements.get(k, 0)) != int(by_spans.get(k, 0) or 0)]
    yield _share_check(
        "ledger", "consistency", "MRR agrees with the subscriptions",
        f"customers whose MRR at {format_micros(now_us)} by their movements equals the sum of "
        "their subscriptions' MRR in effect, so MRR and paying customers agree", len(keys),
        _customer_ids(connection, mismatched),
    )  # fmt: skip


def _customer_ids(connection: Connection, keys: Iterable[int]) -> list[str]:
    """The customer ids of the failing customer keys, in order: only theirs are read."""
    c = customers.c
    found: list[str] = []
    for chunk in chunked(sorted(keys), LOOKUP_CHUNK):
        found += connection.execute(select(c.customer_id).where(c.id.in_(chunk))).scalars()
    return sorted(found)


def _freshness(dataset: str, what: str, newest_us: int, now_us: int, limit_us: int) -> Check:
    age = max(0, now_us - newest_us)
    score = (
        Fraction(100) if age <= limit_us else max(Fraction(0), 100 * (2 - Fraction(age, limit_us)))
    )
    days = age / 86_400_000_000
    return Check(
        dataset, "timeliness", "fresh",
        f"{what} ({format_micros(newest_us)}) is {days:.1f} days old; the limit is "
        f"{limit_us / 86_400_000_000:g} days", 1, 0 if age <= limit_us else 1, score,
    )  # fmt: skip


_CHECKS: tuple[Callable[[Connection, int, int], Iterable[Check]], ...] = (
    _customer_checks,
    _event_checks,
    _ticket_checks,
    _activity_checks,
    _ledger_checks,
)


def quality_document(report: QualityReport, measured_at: int) -> dict[str, Any]:
    """The report as `execmetrics quality --format json` prints it, with the moment it was
    measured (microseconds)."""

    def figure(value: Fraction | None) -> float | None:
        return None if value is None else float(round(value, 2))

    return {
        "measured_at": format_micros(measured_at),
        "overall": figure(report.overall),
        "datasets": {
            name: {
                "score": figure(found["score"]),
                "dimensions": {dim: figure(v) for dim, v in found["dimensions"].items()},
            }
            for name, found in report.datasets.items()
        },
        "checks": [
            {
                "dataset": check.dataset, "dimension": check.dimension, "check": check.name,
                "description": check.description, "score": figure(check.score),
                "total": check.total, "failing": check.failing, "examples": check.examples,
            }
            for check in report.checks
        ],
    }  # fmt: skip
