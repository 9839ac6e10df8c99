"""Churn features of every paying customer as of a date, with no look-ahead.

Everything is read from before the as-of instant (midnight UTC starting that day): the MRR
ledger (MRR, tenure, recent contraction), the subscriptions running then (tier, billing
interval, seats), the daily activity counts (logins and feature use over 7, 30 and 90 days,
and their trend: the last 30 days against the 60 before) and the support tickets (opened in
90 days, open at the time, urgent or high priority). Labels look forward: whether the
customer's MRR fell to zero (a churn movement) within the horizon after the date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, and_, case, distinct, func, or_, select

from execmetrics.analytics.feature_table import FeatureTable
from execmetrics.store.bulk import chunked, fetch_tuples
from execmetrics.store.tables import (
    activity_daily,
    activity_types,
    customers,
    mrr_movements,
    subscription_events,
    subscription_mrr_spans,
    support_tickets,
)
from execmetrics.timeutil import date_to_micros

DAY_US = 86_400 * 10**6
LOGIN = "login"
NUMERIC = (
    "mrr", "tenure_days", "seats", "logins_7d", "logins_30d", "logins_90d",
    "days_since_login", "login_trend", "usage_30d", "usage_trend", "feature_breadth_90d",
    "tickets_90d", "open_tickets", "urgent_tickets_90d", "contraction_90d",
)  # fmt: skip
CATEGORICAL = ("tier", "interval")
# A customer who never logged in counts as this many days since a login.
NEVER_DAYS = 365.0
UNKNOWN = "(unknown)"

Vector = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ChurnFeatures:
    as_of: date
    keys: npt.NDArray[np.int64]  # customer keys, ascending
    table: FeatureTable  # ids are the customers' own ids
    has_activity: bool  # any activity stored before the date
    has_tickets: bool

    def __len__(self) -> int:
        return len(self.keys)

    def column(self, name: str) -> Vector:
        return self.table.numeric[name]


def churn_features(connection: Connection, as_of: date) -> ChurnFeatures:
    """Features of the customers paying at the start of `as_of`."""
    at = date_to_micros(as_of)
    keys, mrr, paying_since = _paying(connection, at)
    index = {int(key): n for n, key in enumerate(keys)}
    numeric: dict[str, Vector] = {name: np.zeros(len(keys)) for name in NUMERIC}
    numeric["mrr"] = mrr
    numeric["tenure_days"] = (at - paying_since) / DAY_US
    numeric["contraction_90d"] = _contraction(connection, index, at)
    tier, interval, seats = _subscriptions(connection, index, at)
    numeric["seats"] = seats
    has_activity = _activity(connection, index, as_of, numeric)
    has_tickets = _tickets(connection, index, at, numeric)
    ids = _customer_ids(connection, keys)
    table = FeatureTable(ids, numeric, {"tier": tier, "interval": interval}, None)
    return ChurnFeatures(as_of, keys, table, has_activity, has_tickets)


def churn_labels(
    connection: Connection, keys: npt.NDArray[np.int64], as_of: date, horizon_days: int
) -> npt.NDArray[np.int_]:
    """1 for each customer whose MRR fell to zero within `horizon_days` from `as_of`."""
    start = date_to_micros(as_of)
    end = date_to_micros(as_of + timedelta(days=horizon_days))
    m = mrr_movements.c
    churned = set(
        connection.execute(
            select(m.customer_key)
            .where(m.type == "churn", m.occurred_at >= start, m.occurred_at < end)
            .distinct()
        ).scalars()
    )
    return np.array([int(key) in churned for key in keys.tolist()], dtype=np.int_)


def _paying(connection: Connection, at: int) -> tuple[npt.NDArray[np.int64], Vector, Vector]:
    """Customer keys, MRR and paying-since instant of the customers paying at `at`."""
    m = mrr_movements.c
    rows = fetch_tuples(
        connection,
        select(m.customer_key, m.mrr_after, m.paying_since)
        .where(m.occurred_at < at, or_(m.next_at.is_(None), m.next_at >= at), m.mrr_after > 0)
        .order_by(m.customer_key),
    )
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    data = np.array([(key, mrr, since if since is not None else at) for key, mrr, since in rows],
                    dtype=np.float64)  # fmt: skip
    return data[:, 0].astype(np.int64), data[:, 1], data[:, 2]


def _contraction(connection: Connection, index: dict[int, int], at: int) -> Vector:
    """MRR lost to contraction in the 90 days before `at`, in minor units."""
    m = mrr_movements.c
    lost = np.zeros(len(index))
    for key, amount in connection.execute(
        select(m.customer_key, func.sum(m.mrr_before - m.mrr_after))
        .where(m.type == "contraction", m.occurred_at >= at - 90 * DAY_US, m.occurred_at < at)
        .group_by(m.customer_key)
    ):
        if key in index:
            lost[index[key]] = float(amount)
    return lost


def _subscriptions(
    connection: Connection, index: dict[int, int], at: int
) -> tuple[list[str], list[str], Vector]:
    """Per customer: the tier and billing interval of its largest subscription running at
    `at`, and the seats of all of them."""
    s = subscription_mrr_spans.c
    running = connection.execute(
        select(s.customer_key, s.subscription_id, s.tier, s.mrr).where(
            s.valid_from <= at, or_(s.valid_to.is_(None), s.valid_to > at)
        )
    ).all()
    e = subscription_events.c
    latest: dict[tuple[int, str], tuple[int | None, str | None]] = {}
    for key, subscription, quantity, interval in connection.execute(
        select(e.customer_key, e.subscription_id, e.quantity, e.interval)
        .where(e.occurred_at < at, e.type.in_(("start", "change")))
        .order_by(e.occurred_at)
    ):
        latest[(key, subscription)] = (quantity, interval)
    tiers = [UNKNOWN] * len(index)
    intervals = [UNKNOWN] * len(index)
    seats = np.zeros(len(index))
    largest = np.full(len(index), -1.0)
    for key, subscription, tier, mrr in running:
        n = index.get(key)
        if n is None:
            continue
        quantity, interval = latest.get((key, subscription), (None, None))
        seats[n] += quantity or 1
        if mrr > largest[n]:
            largest[n] = mrr
            tiers[n] = tier or UNKNOWN
            intervals[n] = interval or UNKNOWN
    return tiers, intervals, seats


def _activity(
    connection: Connection, index: dict[int, int], as_of: date, numeric: dict[str, Vector]
) -> bool:
    """Fills the login and usage features; False when no activity is stored before the date.

    One grouped scan of the daily counts, in the database: the rows come in customer order
    (the table's key), so grouping needs no sort, and only one row per customer comes back.
    """
    day = (as_of - date(1970, 1, 1)).days
    d, t = activity_daily.c, activity_types.c
    login_key = connection.execute(select(t.id).where(t.name == LOGIN)).scalar()
    is_login = d.type_key == (login_key if login_key is not None else -1)

    def within(days: int, condition: Any) -> Any:
        return func.sum(case((and_(condition, d.day >= day - days), d.events), else_=0))

    totals = fetch_tuples(
        connection,
        select(
            d.customer_key,
            within(7, is_login), within(30, is_login), within(90, is_login),
            within(30, ~is_login), within(90, ~is_login),
            func.count(distinct(case((and_(~is_login, d.day >= day - 90), d.type_key)))),
            func.max(case((is_login, d.day))),
        )
        .where(d.day < day)
        .group_by(d.customer_key),
    )  # fmt: skip
    size = len(index)
    columns = np.zeros((size, 7))
    columns[:, 6] = np.nan
    for key, *values in totals:
        n = index.get(key)
        if n is not None:
            columns[n] = [np.nan if value is None else value for value in values]
    numeric["logins_7d"], numeric["logins_30d"], numeric["logins_90d"] = (
        columns[:, 0],
        columns[:, 1],
        columns[:, 2],
    )
    numeric["login_trend"] = trend(columns[:, 1], columns[:, 2] - columns[:, 1])
    numeric["usage_30d"] = columns[:, 3]
    numeric["usage_trend"] = trend(columns[:, 3], columns[:, 4] - columns[:, 3])
    numeric["feature_breadth_90d"] = columns[:, 5]
    last_login = columns[:, 6]
    numeric["days_since_login"] = np.where(
        np.isnan(last_login), NEVER_DAYS, np.minimum(NEVER_DAYS, day - np.nan_to_num(last_login))
    )
    return bool(totals)


def trend(last_30: Vector, prior_60: Vector) -> Vector:
    """The last 30 days against the 30-day average of the 60 before: -1 when activity
    stopped, 0 when steady, capped at 3 (four times as much); 0 without a prior."""
    prior = prior_60 / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(prior > 0, last_30 / prior - 1.0, 0.0)
    return np.clip(change, -1.0, 3.0)


def first_activity_day(connection: Connection) -> date | None:
    first = connection.execute(select(func.min(activity_daily.c.day))).scalar()
    return None if first is None else date(1970, 1, 1) + timedelta(days=int(first))


def _tickets(
    connection: Connection, index: dict[int, int], at: int, numeric: dict[str, Vector]
) -> bool:
    """Fills the ticket features; False when no ticket was opened before `at`."""
    t = support_tickets.c
    size = len(index)
    opened_90d, open_now, urgent = np.zeros(size), np.zeros(size), np.zeros(size)
    recent = at - 90 * DAY_US
    rows = connection.execute(
        select(t.customer_key, t.opened_at, t.closed_at, t.priority).where(
            t.opened_at < at,
            or_(t.opened_at >= recent, t.closed_at.is_(None), t.closed_at >= at),
        )
    ).all()
    for key, opened, closed, priority in rows:
        n = index.get(key)
        if n is None:
            continue
        if opened >= recent:
            opened_90d[n] += 1
            urgent[n] += priority in ("high", "urgent")
        if closed is None or closed >= at:
            open_now[n] += 1
    numeric["tickets_90d"], numeric["open_tickets"] = opened_90d, open_now
    numeric["urgent_tickets_90d"] = urgent
    if rows:
        return True
    return connection.execute(select(t.id).where(t.opened_at < at).limit(1)).first() is not None


def _customer_ids(connection: Connection, keys: npt.NDArray[np.int64]) -> list[str]:
    c = customers.c
    found: dict[int, str] = {}
    wanted = keys.tolist()
    for chunk in chunked(wanted, 5000):
        found.update(
            (key, customer_id)
            for key, customer_id in connection.execute(
                select(c.id, c.customer_id).where(c.id.in_(chunk))
            )
        )
    return [found[key] for key in wanted]
