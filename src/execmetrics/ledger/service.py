"""Rebuilding the ledger (movements and subscription spans) of the customers an ingest touched."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, delete, select

from execmetrics.fx import FxRates
from execmetrics.ingest.problems import Problem, ProblemLog
from execmetrics.ledger.replay import PricedEvent, SequenceError, replay_customer, subscription_mrr
from execmetrics.store.bulk import bulk_insert, chunked, fetch_tuples
from execmetrics.store.tables import (
    customer_ledger,
    mrr_movements,
    subscription_events,
    subscription_mrr_spans,
)
from execmetrics.timeutil import utc_date

CHUNK = 2000
ONE = Fraction(1)
# Keeps every sum of MRR far inside a 64-bit integer column.
MAX_SUBSCRIPTION_MRR = 10**15
MOVEMENT_COLUMNS = (
    "customer_key",
    "occurred_at",
    "type",
    "mrr_before",
    "mrr_after",
    "paying_since",
    "next_at",
)
CUSTOMER_LEDGER_COLUMNS = ("customer_key", "billing_currency", "first_paid_at")
SPAN_COLUMNS = (
    "customer_key",
    "subscription_id",
    "plan_id",
    "tier",
    "valid_from",
    "valid_to",
    "mrr",
)


@dataclass
class LedgerCounts:
    customers: int = 0
    movements: int = 0
    spans: int = 0


def problem_at(source: str, column: str | None, reason: str) -> Problem:
    """A Problem for a stored row whose source is `file:line`."""
    path, _, line = source.rpartition(":")
    if path and line.isdigit():
        return Problem(path, int(line), column, reason)
    return Problem(source, None, column, reason)


def _price(row: Any, fx: FxRates, reporting_currency: str, problems: list[Problem]) -> PricedEvent:
    (
        event_id,
        subscription_id,
        occurred_at,
        kind,
        plan_id,
        tier,
        amount_minor,
        quantity,
        currency,
        interval,
        interval_count,
        trial_ends_at,
        source,
    ) = row
    mrr = 0
    if kind != "cancel":
        rate = ONE if currency == reporting_currency else fx.rate_at(currency, occurred_at)
        if rate is None:
            problems.append(
                problem_at(
                    source,
                    "currency",
                    f"no {currency} fx rate on or before {utc_date(occurred_at)} "
                    f"(event {event_id})",
                )
            )
        else:
            mrr = subscription_mrr(
                amount_minor, quantity, interval, interval_count, currency, reporting_currency, rate
            )
            if mrr > MAX_SUBSCRIPTION_MRR:
                problems.append(
                    problem_at(
                        source,
                        "amount_minor",
                        f"MRR of {mrr} exceeds the largest supported ({MAX_SUBSCRIPTION_MRR})",
                    )
                )
    return PricedEvent(
        event_id, subscription_id, occurred_at, kind, plan_id, tier, mrr, trial_ends_at, source
    )


@dataclass
class ChunkLedger:
    """The ledger rows of a chunk of customers, or the problems that refuse them."""

    movements: list[tuple[Any, ...]] = field(default_factory=list)
    spans: list[tuple[Any, ...]] = field(default_factory=list)
    customers: list[tuple[Any, ...]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def replay_chunk(rows: list[tuple[Any, ...]], fx: FxRates, reporting_currency: str) -> ChunkLedger:
    """Ledger rows from the events of whole customers, ordered by customer (pure)."""
    ledger = ChunkLedger()
    for customer_key, group in groupby(rows, key=itemgetter(0)):
        events = [row[1:] for row in group]
        priced = [_price(row, fx, reporting_currency, ledger.problems) for row in events]
        try:
            movements, spans = replay_customer(priced)
        except SequenceError as refused:
            ledger.problems.extend(
                problem_at(error.event.source, "type", error.reason) for error in refused.all
            )
            continue
        first_start = min(
            (row for row in priced if row.type == "start"), key=lambda row: row.occurred_at
        )
        ledger.customers.append(
            (
                customer_key,
                events[priced.index(first_start)][8],
                movements[0].occurred_at if movements else None,
            )
        )
        ledger.movements.extend(
            (customer_key, m.occurred_at, m.type, m.mrr_before, m.mrr_after, m.paying_since,
             m.next_at)
            for m in movements
        )  # fmt: skip
        ledger.spans.extend(
            (customer_key, s.subscription_id, s.plan_id, s.tier, s.valid_from, s.valid_to, s.mrr)
            for s in spans
        )
    return ledger


def rebuild_ledger(
    connection: Connection,
    customer_keys: Sequence[int],
    fx: FxRates,
    reporting_currency: str,
    problems: ProblemLog,
    progress: Callable[[int], None] | None = None,
) -> LedgerCounts:
    """Recompute movements and spans of these customers from all their stored events.

    Problems (sequence errors, missing fx rates) go to `problems`; the caller rolls back.
    """
    counts = LedgerCounts()
    # On a first ingest there is no ledger to replace, and no need to look for one.
    ledger_empty = (
        connection.execute(select(customer_ledger.c.customer_key).limit(1)).first() is None
    )

    for chunk in chunked(sorted(customer_keys), CHUNK):
        ledger = replay_chunk(_chunk_events(connection, chunk), fx, reporting_currency)
        for problem in ledger.problems:
            problems.add(problem)
        # With problems, keep validating the rest, but write no ledger: it is rolled back.
        if not problems.total:
            _replace_ledger(connection, [] if ledger_empty else chunk, ledger)
            counts.customers += len(chunk)
            counts.movements += len(ledger.movements)
            counts.spans += len(ledger.spans)
        if progress:
            progress(len(chunk))
    return counts


def _chunk_events(connection: Connection, chunk: Sequence[int]) -> list[tuple[Any, ...]]:
    e = subscription_events.c
    return fetch_tuples(
        connection,
        select(
            e.customer_key, e.event_id, e.subscription_id, e.occurred_at, e.type, e.plan_id,
            e.tier, e.amount_minor, e.quantity, e.currency, e.interval, e.interval_count,
            e.trial_ends_at, e.source,
        )
        .where(e.customer_key.in_(chunk))
        .order_by(e.customer_key),
    )  # fmt: skip


def _replace_ledger(connection: Connection, chunk: Sequence[int], ledger: ChunkLedger) -> None:
    # A customer's ledger rows exist when its customer_ledger row does: most customers of a
    # large ingest are new, and three deletes by key list would cost more than the lookup.
    stored = (
        list(
            connection.execute(
                select(customer_ledger.c.customer_key).where(
                    customer_ledger.c.customer_key.in_(chunk)
                )
            ).scalars()
        )
        if chunk
        else []
    )
    if stored:
        for table in (mrr_movements, subscription_mrr_spans, customer_ledger):
            connection.execute(delete(table).where(table.c.customer_key.in_(stored)))
    bulk_insert(connection, mrr_movements, MOVEMENT_COLUMNS, ledger.movements)
    bulk_insert(connection, subscription_mrr_spans, SPAN_COLUMNS, ledger.spans)
    bulk_insert(connection, customer_ledger, CUSTOMER_LEDGER_COLUMNS, ledger.customers)
