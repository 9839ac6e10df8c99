"""Aggregations over the MRR movement ledger, computed by the database (SQLAlchemy Core).

Period boundaries arrive as integer instants; a balanced CASE tree maps an instant to the
index of its period, so every query is a single scan that runs the same on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Select,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
)

if TYPE_CHECKING:
    import numpy.typing as npt

from execmetrics.store.tables import (
    customer_ledger,
    customers,
    mrr_movements,
    subscription_mrr_spans,
)

NONE_GROUP = "(none)"
CUSTOMER_BREAKDOWNS = ("segment", "country", "source", "campaign", "currency")
SUBSCRIPTION_BREAKDOWNS = ("plan", "tier")


class BreakdownError(ValueError):
    """An unknown --by value."""


def slot_of(column: ColumnElement[Any], boundaries: Sequence[int]) -> ColumnElement[int]:
    """Index k with boundaries[k] <= column < boundaries[k + 1]; -1 before the first boundary,
    len(boundaries) - 1 from the last on (and for NULL, which stands for "never")."""

    def node(low: int, high: int) -> ColumnElement[int]:
        if low == high:
            return literal(low, Integer)
        middle = (low + high) // 2
        return case(
            (column < literal(boundaries[middle + 1], BigInteger), node(low, middle)),
            else_=node(middle + 1, high),
        )

    return node(-1, len(boundaries) - 1)


def customer_group(by: str | None) -> ColumnElement[Any] | None:
    c = customers.c
    if by is None:
        return None
    columns: dict[str, ColumnElement[Any]] = {
        "segment": c.segment,
        "country": c.country,
        "source": c.acquisition_source,
        "campaign": c.acquisition_campaign,
        "currency": customer_ledger.c.billing_currency,
    }
    if by in columns:
        return columns[by]
    if by.startswith("attr.") and len(by) > 5:
        attribute: ColumnElement[Any] = c.attributes[by[5:]].as_string()
        return attribute
    raise BreakdownError(
        f"by: expected one of {', '.join(CUSTOMER_BREAKDOWNS + SUBSCRIPTION_BREAKDOWNS)} "
        f"or attr.NAME, got {by!r}"
    )


def _grouped(query: Select[Any], group: ColumnElement[Any] | None) -> Select[Any]:
    if group is None:
        return query.add_columns(literal(None).label("grp"))
    key = mrr_movements.c.customer_key
    if group is customer_ledger.c.billing_currency:
        return query.add_columns(group.label("grp")).join_from(
            mrr_movements, customer_ledger, customer_ledger.c.customer_key == key
        )
    return query.add_columns(group.label("grp")).join_from(
        mrr_movements, customers, customers.c.id == key
    )


@dataclass
class Flow:
    """Movements of one period and group."""

    mrr: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    count: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    churned_from_start: int = 0


def opening_balances(
    connection: Connection, before: int, group: ColumnElement[Any] | None
) -> dict[Any, tuple[int, int]]:
    """Per group: (MRR, paying customers) from every movement before `before`."""
    m = mrr_movements.c
    paying = case((m.type.in_(("new", "reactivation")), 1), (m.type == "churn", -1), else_=0)
    query = _grouped(select(func.sum(m.mrr_after - m.mrr_before), func.sum(paying)), group).where(
        m.occurred_at < before
    )
    query = query.group_by(query.selected_columns.grp)
    return {row.grp: (int(row[0] or 0), int(row[1] or 0)) for row in connection.execute(query)}


def period_flows(
    connection: Connection, boundaries: Sequence[int], group: ColumnElement[Any] | None
) -> dict[tuple[int, Any], Flow]:
    """Per (period index, group): MRR and count of each movement type, and the churned
    customers who were paying at the period's start (their spell began before it)."""
    m = mrr_movements.c
    period = slot_of(m.occurred_at, boundaries)
    from_start = case(
        (and_(m.type == "churn", slot_of(m.paying_since, boundaries) < period), 1), else_=0
    )
    query = _grouped(
        select(
            period.label("period"),
            m.type,
            func.count(),
            func.sum(m.mrr_after - m.mrr_before),
            func.sum(from_start),
        ),
        group,
    ).where(m.occurred_at >= boundaries[0], m.occurred_at < boundaries[-1])
    query = query.group_by(query.selected_columns.period, m.type, query.selected_columns.grp)
    flows: dict[tuple[int, Any], Flow] = defaultdict(Flow)
    for row in connection.execute(query):
        flow = flows[(row.period, row.grp)]
        flow.mrr[row.type] += abs(int(row[3]))
        flow.count[row.type] += int(row[2])
        flow.churned_from_start += int(row[4] or 0)
    return flows


def retention_12m(
    connection: Connection,
    windows: Sequence[tuple[int, int]],
    group: ColumnElement[Any] | None,
) -> dict[tuple[int, Any], tuple[int, int, int]]:
    """Per (window index, group) for windows (then, now): the MRR at `then` of customers
    paying then, their MRR at `now`, and their MRR at `now` capped at their MRR then.

    Pairing each customer's MRR at two instants is a per-customer join that SQL engines
    run slowly as 2 x 36 conditional sums per customer, so the database selects the MRR
    spans that cover any of the instants and numpy pairs them, with exact integer sums.
    """
    if not windows:
        return {}
    import numpy as np  # here, not at module level: it costs every command 0.15 s to load

    m = mrr_movements.c
    instants = np.array(sorted({t for window in windows for t in window}), dtype=np.int64)
    query = _grouped(select(m.customer_key, m.occurred_at, m.next_at, m.mrr_after), group).where(
        m.mrr_after > 0,
        m.occurred_at < int(instants[-1]),
        or_(m.next_at.is_(None), m.next_at >= int(instants[0])),
    )
    spans = _span_arrays(connection, query)
    # A span [occurred_at, next_at) is in effect at instant u when occurred_at < u <= next_at.
    first = np.searchsorted(instants, spans.occurred_at, side="right")
    last = np.searchsorted(instants, spans.next_at, side="right") - 1
    covering = first <= last
    customer = spans.customer[covering]
    mrr, groups = spans.mrr[covering], spans.group[covering]
    first, last = first[covering], last[covering]
    order = np.argsort(customer, kind="stable")
    customer, mrr, groups, first, last = (a[order] for a in (customer, mrr, groups, first, last))
    index_of = {int(t): i for i, t in enumerate(instants)}
    result: dict[tuple[int, Any], tuple[int, int, int]] = {}
    for number, (then, now) in enumerate(windows):
        y, x = index_of[then], index_of[now]
        at_then = (first <= y) & (last >= y)
        at_now = (first <= x) & (last >= x)
        then_customers, then_mrr = customer[at_then], mrr[at_then]
        now_customers, now_mrr = customer[at_now], mrr[at_now]
        if len(now_customers):
            position = np.minimum(
                np.searchsorted(now_customers, then_customers), len(now_customers) - 1
            )
            later = np.where(now_customers[position] == then_customers, now_mrr[position], 0)
        else:
            later = np.zeros_like(then_mrr)
        capped = np.minimum(later, then_mrr)
        for code, key in enumerate(spans.keys):
            mask = groups[at_then] == code
            result[(number, key)] = (
                int(then_mrr[mask].sum()),
                int(later[mask].sum()),
                int(capped[mask].sum()),
            )
    return result


@dataclass
class _Spans:
    customer: npt.NDArray[Any]
    occurred_at: npt.NDArray[Any]
    next_at: npt.NDArray[Any]
    mrr: npt.NDArray[Any]
    group: npt.NDArray[Any]
    keys: list[Any]


def _span_arrays(connection: Connection, query: Select[Any]) -> _Spans:
    import numpy as np

    codes: dict[Any, int] = {}
    customer: list[int] = []
    occurred: list[int] = []
    following: list[int] = []
    mrr: list[int] = []
    group: list[int] = []
    never = np.iinfo(np.int64).max
    for key, at, next_at, value, grp in connection.execute(query):
        customer.append(key)
        occurred.append(at)
        following.append(never if next_at is None else next_at)
        mrr.append(value)
        group.append(codes.setdefault(grp, len(codes)))
    # int64 sums are exact while the largest possible total fits; otherwise Python integers.
    exact = np.int64 if (max(mrr, default=0) * max(len(mrr), 1) < 2**62) else object
    return _Spans(
        np.array(customer, dtype=np.int64),
        np.array(occurred, dtype=np.int64),
        np.array(following, dtype=np.int64),
        np.array(mrr, dtype=exact),
        np.array(group, dtype=np.int64),
        list(codes),
    )


def subscription_balances(
    connection: Connection, instants: Sequence[int], by: str
) -> dict[tuple[int, Any], tuple[int, int]]:
    """Per (instant index, plan or tier): MRR in effect and distinct paying customers."""
    s = subscription_mrr_spans.c
    group = s.plan_id if by == "plan" else s.tier
    points = union_all(
        *(
            select(literal(i, Integer).label("idx"), literal(t, BigInteger).label("at"))
            for i, t in enumerate(instants)
        )
    ).subquery()
    query = (
        select(
            points.c.idx, group.label("grp"), func.sum(s.mrr), func.count(s.customer_key.distinct())
        )
        .select_from(subscription_mrr_spans)
        .join(
            points,
            and_(s.valid_from < points.c.at, or_(s.valid_to.is_(None), s.valid_to >= points.c.at)),
        )
        .group_by(points.c.idx, group)
    )
    return {(row.idx, row.grp): (int(row[2]), int(row[3])) for row in connection.execute(query)}
