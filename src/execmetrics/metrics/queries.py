"""Aggregations over the MRR movement ledger, computed by the database (SQLAlchemy Core).

Period boundaries arrive as integer instants; a balanced CASE tree maps an instant to the
index of its period, so every query is a single scan that runs the same on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
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

from execmetrics.store.bulk import fetch_tuples
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


WIDE_RANGE = 0.25


def occurred_at_for_range(connection: Connection, low: int, high: int) -> ColumnElement[int]:
    """The movement instant to filter [low, high) on.

    SQLite keeps no statistics on value ranges, so it walks the occurred_at index even when
    the range covers most of the ledger, fetching every row through the index: about twice as
    slow as reading the table. For a range wider than a quarter of the ledger's history, the
    filter goes on `occurred_at + 0`, which no index serves, and SQLite scans the table.
    PostgreSQL chooses from its own statistics.
    """
    m = mrr_movements.c
    if connection.dialect.name != "sqlite":
        return m.occurred_at
    first, last = connection.execute(select(func.min(m.occurred_at), func.max(m.occurred_at))).one()
    if first is None or last <= first:
        return m.occurred_at
    covered = min(high, last + 1) - max(low, first)
    return m.occurred_at + 0 if covered > WIDE_RANGE * (last + 1 - first) else m.occurred_at


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
    )
    occurred_at = occurred_at_for_range(connection, boundaries[0], boundaries[-1])
    query = query.where(occurred_at >= boundaries[0], occurred_at < boundaries[-1])
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
    never = func.coalesce(m.next_at, literal(2**63 - 1, BigInteger))
    columns = select(m.customer_key, m.occurred_at, never, m.mrr_after)
    query = (columns if group is None else _grouped(columns, group)).where(
        m.mrr_after > 0,
        occurred_at_for_range(connection, int(instants[0]), int(instants[-1])) < int(instants[-1]),
        or_(m.next_at.is_(None), m.next_at >= int(instants[0])),
    )
    spans = _span_arrays(connection, query, grouped=group is not None)
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


def _span_arrays(connection: Connection, query: Select[Any], grouped: bool) -> _Spans:
    import numpy as np

    rows = fetch_tuples(connection, query)
    if not rows:
        empty = np.zeros(0, dtype=np.int64)
        return _Spans(empty, empty, empty, empty, empty, [])
    # One conversion in C for the numeric columns; a loop over rows costs as much as the query.
    values = (row[:4] for row in rows) if grouped else rows
    numbers = np.fromiter(chain.from_iterable(values), dtype=np.int64, count=4 * len(rows)).reshape(
        -1, 4
    )
    codes: dict[Any, int] = {}
    groups = [codes.setdefault(row[4], len(codes)) for row in rows] if grouped else [0] * len(rows)
    mrr = numbers[:, 3]
    # int64 sums are exact while the largest possible total fits; otherwise Python integers.
    exact = int(mrr.max()) * len(mrr) < 2**62
    return _Spans(
        numbers[:, 0],
        numbers[:, 1],
        numbers[:, 2],
        mrr if exact else np.array([row[3] for row in rows], dtype=object),
        np.array(groups, dtype=np.int64),
        list(codes) if grouped else [None],
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
