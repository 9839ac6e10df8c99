"""What the database computes for the metrics (SQLAlchemy Core): breakdown values, and the
balances of the subscription-level ledger.

Period boundaries arrive as integer instants; a balanced CASE tree maps an instant to the
index of its period, so a query is a single scan that runs the same on SQLite and PostgreSQL.
The movement ledger's period aggregates are computed in memory (metrics/ledger_arrays.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    union_all,
)

from execmetrics.store.bulk import fetch_tuples
from execmetrics.store.tables import (
    customer_ledger,
    customers,
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


def _breakdown_columns() -> dict[str, ColumnElement[Any]]:
    """The column of each customer breakdown but attr.NAME, in CUSTOMER_BREAKDOWNS order."""
    c = customers.c
    return {
        "segment": c.segment,
        "country": c.country,
        "source": c.acquisition_source,
        "campaign": c.acquisition_campaign,
        "currency": customer_ledger.c.billing_currency,
    }


def customer_group(by: str | None) -> ColumnElement[Any] | None:
    c = customers.c
    if by is None:
        return None
    columns = _breakdown_columns()
    if by in columns:
        return columns[by]
    if by.startswith("attr.") and len(by) > 5:
        attribute: ColumnElement[Any] = c.attributes[by[5:]].as_string()
        return attribute
    raise BreakdownError(
        f"by: expected one of {', '.join(CUSTOMER_BREAKDOWNS + SUBSCRIPTION_BREAKDOWNS)} "
        f"or attr.NAME, got {by!r}"
    )


def column_breakdown_values(connection: Connection) -> dict[str, dict[int, Any]]:
    """Each customer's value for every breakdown stored in a column (the customer breakdowns
    but attr.NAME), by customer key, in one scan: the KPIs of one evaluation need most of
    them, and a scan per breakdown costs as much as the scan of all of them."""
    columns = _breakdown_columns()
    query = select(customers.c.id, *columns.values()).select_from(
        customers.outerjoin(customer_ledger, customer_ledger.c.customer_key == customers.c.id)
    )
    rows = fetch_tuples(connection, query)
    return {
        name: {row[0]: row[index] for row in rows} for index, name in enumerate(columns, start=1)
    }


def customer_group_values(connection: Connection, by: str) -> dict[int, Any]:
    """Each customer's group value for a customer breakdown, by customer key."""
    group = customer_group(by)
    assert group is not None
    key = (
        customer_ledger.c.customer_key
        if group is customer_ledger.c.billing_currency
        else (customers.c.id)
    )
    rows = connection.execute(select(key, group))
    return {row[0]: row[1] for row in rows}


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
