"""Customer-level views of the ledger: each customer's current MRR and its movements."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, func, select

from execmetrics.errors import NotFound
from execmetrics.store.tables import customer_ledger, customers, mrr_movements
from execmetrics.timeutil import format_micros, now_micros

m = mrr_movements.c
c = customers.c


def _current_mrr(at: int) -> Any:
    """Per customer: MRR after its last movement before `at`."""
    latest = (
        select(m.customer_key, func.max(m.occurred_at).label("at"))
        .where(m.occurred_at <= at)
        .group_by(m.customer_key)
        .subquery()
    )
    return (
        select(m.customer_key, m.mrr_after.label("mrr"))
        .join(latest, and_(latest.c.customer_key == m.customer_key, latest.c.at == m.occurred_at))
        .subquery()
    )


def customer_page(connection: Connection, limit: int, after: str | None) -> dict[str, Any]:
    """Customers ordered by id, `limit` at a time after the id `after`, with current MRR."""
    mrr = _current_mrr(now_micros())
    query = (
        select(c.customer_id, c.name, c.country, c.segment, c.acquisition_source,
               func.coalesce(mrr.c.mrr, 0).label("mrr"), customer_ledger.c.billing_currency)
        .join_from(customers, mrr, mrr.c.customer_key == c.id, isouter=True)
        .join(customer_ledger, customer_ledger.c.customer_key == c.id, isouter=True)
        .order_by(c.customer_id)
        .limit(limit)
    )  # fmt: skip
    if after is not None:
        query = query.where(c.customer_id > after)
    items = [dict(row._mapping) for row in connection.execute(query)]
    return {"items": items, "next_after": items[-1]["customer_id"] if len(items) == limit else None}


def customer_detail(connection: Connection, customer_id: str) -> dict[str, Any]:
    row = connection.execute(select(customers).where(c.customer_id == customer_id)).first()
    if row is None:
        raise NotFound(f"no customer {customer_id!r}")
    now = now_micros()
    movements = connection.execute(
        select(m.occurred_at, m.type, m.mrr_before, m.mrr_after)
        .where(m.customer_key == row.id)
        .order_by(m.occurred_at)
    ).all()
    return {
        "customer_id": row.customer_id,
        "name": row.name,
        "country": row.country,
        "segment": row.segment,
        "employees": row.employees,
        "acquisition_source": row.acquisition_source,
        "acquisition_campaign": row.acquisition_campaign,
        "attributes": row.attributes,
        # Now, not after the last movement: events may be dated ahead (a scheduled cancel).
        "mrr": next((mv.mrr_after for mv in reversed(movements) if mv.occurred_at <= now), 0),
        "movements": [
            {
                "occurred_at": format_micros(mv.occurred_at),
                "type": mv.type,
                "mrr_before": mv.mrr_before,
                "mrr_after": mv.mrr_after,
            }
            for mv in movements
        ],
    }
