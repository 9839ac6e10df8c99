"""Property-based tests over random event streams (Hypothesis), on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from tests.builders import cancel, customer, fx, ingest, metrics, start
from tests.database import truncate_all

from execmetrics.ledger.replay import subscription_mrr
from execmetrics.money import parse_rate
from execmetrics.store.database import open_database
from execmetrics.store.tables import mrr_movements, subscription_mrr_spans

BASE = datetime(2024, 1, 1, tzinfo=UTC)
ADDITIVE = (
    "mrr_start",
    "mrr_end",
    "new_mrr",
    "expansion_mrr",
    "reactivation_mrr",
    "contraction_mrr",
    "churned_mrr",
    "net_new_mrr",
    "arr",
    "customers_start",
    "customers_end",
    "new_customers",
    "reactivated_customers",
    "churned_customers",
)
EUR_RATE = "0.8571"


@dataclass
class Stream:
    customers: list[dict[str, str | None]]
    events: list[dict[str, str | None]]
    fx_rates: list[dict[str, str | None]]


def _stamp(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


@st.composite
def streams(draw: st.DrawFn) -> Stream:
    """Valid event streams: each subscription alternates start (with changes) and cancel."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    customer_count = draw(st.integers(1, 6))
    customers, events = [], []
    counter = 0
    year = 365 * 24 * 60
    for c in range(customer_count):
        customer_id = f"c{c}"
        customers.append(
            customer(
                customer_id,
                segment=rng.choice(["SMB", "Mid-Market", None]),
                country=rng.choice(["GB", "FR", None]),
            )
        )
        for s in range(draw(st.integers(1, 3))):
            subscription_id = f"{customer_id}-s{s}"
            moment = rng.randrange(0, year)
            active = False
            for _ in range(draw(st.integers(1, 6))):
                counter += 1
                event_id = f"e{counter:05d}"
                if not active:
                    trial = (
                        _stamp(moment + rng.choice([0, 0, 7 * 1440, 20 * 1440]))
                        if rng.random() < 0.3
                        else None
                    )
                    events.append(
                        start(
                            event_id,
                            customer_id,
                            subscription_id,
                            _stamp(moment),
                            rng.choice([0, 1900, 4900, 9900, 120000]),
                            currency=rng.choice(["GBP", "GBP", "EUR"]),
                            interval=rng.choice(["month", "year", "week", "day"]),
                            interval_count=rng.choice([1, 1, 3]),
                            quantity=rng.choice([1, 2, 5]),
                            tier=rng.choice(["Starter", "Scale"]),
                            plan=rng.choice(["p1", "p2"]),
                            trial_ends_at=trial,
                        )
                    )
                    active = True
                elif rng.random() < 0.5:
                    events.append(
                        start(
                            event_id,
                            customer_id,
                            subscription_id,
                            _stamp(moment),
                            rng.choice([1900, 4900, 9900]),
                            kind="change",
                            tier=rng.choice(["Starter", "Scale"]),
                        )
                    )
                else:
                    events.append(cancel(event_id, customer_id, subscription_id, _stamp(moment)))
                    active = False
                    # A start at the cancel's instant would apply first (start, change, cancel).
                    moment += 1
                # Several events may share an instant, across and within customers.
                moment += rng.choice([0, 60, 1440 * 10, 1440 * 40, 1440 * 100])
    return Stream(customers, events, [fx("2023-12-01", "EUR", EUR_RATE)])


@contextmanager
def fresh_database(kind: str, tmp_path: Path, postgres: Callable[[], Engine]) -> Iterator[Engine]:
    if kind == "sqlite":
        folder = tmp_path / uuid.uuid4().hex
        engine = open_database(f"sqlite:///{folder / 'execmetrics.db'}")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    engine = postgres()
    truncate_all(engine)
    yield engine


@contextmanager
def ingested(
    stream: Stream, kind: str, tmp_path: Path, postgres: Callable[[], Engine]
) -> Iterator[Engine]:
    """A fresh database holding the whole stream, ingested in one batch."""
    with fresh_database(kind, tmp_path, postgres) as engine:
        ingest(engine, stream.customers, stream.events, stream.fx_rates)
        yield engine


def _ledger(engine: Engine) -> tuple[list[Any], list[Any]]:
    with engine.connect() as connection:
        m = mrr_movements.c
        movements = connection.execute(
            select(
                m.customer_key,
                m.occurred_at,
                m.type,
                m.mrr_before,
                m.mrr_after,
                m.paying_since,
                m.next_at,
            ).order_by(m.customer_key, m.occurred_at)
        ).all()
        s = subscription_mrr_spans.c
        spans = connection.execute(
            select(
                s.customer_key,
                s.subscription_id,
                s.plan_id,
                s.tier,
                s.valid_from,
                s.valid_to,
                s.mrr,
            ).order_by(s.customer_key, s.subscription_id, s.valid_from)
        ).all()
    return [tuple(r) for r in movements], [tuple(r) for r in spans]


def _oracle_mrr(stream: Stream, instant: datetime) -> int:
    """MRR from the definitions alone: per subscription, its last event before the instant."""
    total = 0
    by_subscription: dict[str, list[dict[str, Any]]] = {}
    order = {"start": 0, "change": 1, "cancel": 2}
    for event in stream.events:
        by_subscription.setdefault(str(event["subscription_id"]), []).append(event)
    for events in by_subscription.values():
        events.sort(key=lambda e: (e["occurred_at"], order[str(e["type"])], e["event_id"]))
        trial: str | None = None
        value = 0
        for event in events:
            at = datetime.fromisoformat(str(event["occurred_at"]))
            if at >= instant:
                break
            if event["type"] == "cancel":
                value = 0
                continue
            trial = event.get("trial_ends_at") or trial
            if trial is not None and datetime.fromisoformat(trial) >= instant:
                value = 0
                continue
            value = subscription_mrr(
                int(str(event["amount_minor"])),
                int(str(event["quantity"])),
                str(event["interval"]),
                int(str(event["interval_count"])),
                str(event["currency"]),
                "GBP",
                parse_rate(EUR_RATE),
            )
        total += value
    return total


PROPERTY_SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def postgres_factory(request: pytest.FixtureRequest) -> Callable[[], Engine]:
    return lambda: request.getfixturevalue("postgres_engine")


@PROPERTY_SETTINGS
@given(
    stream=streams(),
    interval=st.sampled_from(["week", "month", "quarter"]),
    tz=st.sampled_from(["UTC", "Europe/London", "America/New_York"]),
)
def test_movement_and_customer_identities_hold_exactly(
    stream: Stream,
    interval: str,
    tz: str,
    database_kind: str,
    tmp_path: Path,
    postgres_factory: Callable[[], Engine],
) -> None:
    with ingested(stream, database_kind, tmp_path, postgres_factory) as engine:
        rows = metrics(engine, "2024-01", "2025-12", interval=interval, tz=tz)
    previous_end = None
    for row in rows:
        assert row["net_new_mrr"] == (
            row["new_mrr"]
            + row["expansion_mrr"]
            + row["reactivation_mrr"]
            - row["contraction_mrr"]
            - row["churned_mrr"]
        )
        assert row["net_new_mrr"] == row["mrr_end"] - row["mrr_start"]
        assert row["customers_end"] == (
            row["customers_start"]
            + row["new_customers"]
            + row["reactivated_customers"]
            - row["churned_customers"]
        )
        if previous_end is not None:
            assert row["mrr_start"] == previous_end
        previous_end = row["mrr_end"]


@PROPERTY_SETTINGS
@given(stream=streams())
def test_mrr_matches_the_definition_at_every_month_end(
    stream: Stream,
    database_kind: str,
    tmp_path: Path,
    postgres_factory: Callable[[], Engine],
) -> None:
    with ingested(stream, database_kind, tmp_path, postgres_factory) as engine:
        rows = metrics(engine, "2024-01", "2025-12")
    for row in rows:
        year, month = map(int, row["period"].split("-"))
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        assert row["mrr_end"] == _oracle_mrr(stream, end), row["period"]


@PROPERTY_SETTINGS
@given(stream=streams(), by=st.sampled_from(["segment", "country", "currency", "attr.none"]))
def test_breakdown_groups_sum_to_the_total(
    stream: Stream,
    by: str,
    database_kind: str,
    tmp_path: Path,
    postgres_factory: Callable[[], Engine],
) -> None:
    with ingested(stream, database_kind, tmp_path, postgres_factory) as engine:
        totals = metrics(engine, "2024-01", "2025-12")
        groups = metrics(engine, "2024-01", "2025-12", by=by)
    for total in totals:
        in_period = [g for g in groups if g["period"] == total["period"]]
        for field in ADDITIVE:
            assert sum(g[field] for g in in_period) == total[field], (total["period"], field)


@PROPERTY_SETTINGS
@given(stream=streams(), seed=st.integers(0, 2**16), batches=st.integers(1, 4))
def test_any_order_and_batching_gives_the_same_ledger(
    stream: Stream,
    seed: int,
    batches: int,
    database_kind: str,
    tmp_path: Path,
    postgres_factory: Callable[[], Engine],
) -> None:
    with ingested(stream, database_kind, tmp_path, postgres_factory) as engine:
        expected = _ledger(engine)
    shuffled = list(stream.events)
    random.Random(seed).shuffle(shuffled)
    with fresh_database(database_kind, tmp_path, postgres_factory) as engine:
        ingest(engine, stream.customers, fx_rates=stream.fx_rates)
        # Batches may be individually out of sequence (a cancel before its start), so each
        # prefix that is valid on its own is ingested; the rest follows in one final batch.
        size = max(1, len(shuffled) // batches)
        pending: list[dict[str, str | None]] = []
        for index in range(0, len(shuffled), size):
            pending.extend(shuffled[index : index + size])
            try:
                ingest(engine, stream.customers, pending)
                pending = []
            except Exception:
                continue
        if pending:
            ingest(engine, stream.customers, pending)
        assert _ledger(engine) == expected


@PROPERTY_SETTINGS
@given(stream=streams())
def test_a_breakdown_with_one_group_reports_exactly_the_totals(
    stream: Stream, database_kind: str, tmp_path: Path, postgres_factory: Callable[[], Engine]
) -> None:
    # No customer has the attribute, so every customer is in the one group "(none)".
    with ingested(stream, database_kind, tmp_path, postgres_factory) as engine:
        totals = metrics(engine, "2024-01", "2025-12")
        groups = metrics(engine, "2024-01", "2025-12", by="attr.none")
    if not groups:
        # Groups are those of customers with movements: here nobody ever paid.
        assert all(row["mrr_end"] == 0 and row["customers_end"] == 0 for row in totals)
        assert all(row["new_customers"] == 0 for row in totals)
        return
    split_only = {"group", "marketing_spend", "cac", "ltv_to_cac", "cac_payback_months"}
    for total, group in zip(totals, groups, strict=True):
        assert group["group"] == "(none)"
        assert {k: v for k, v in group.items() if k not in split_only} == {
            k: v for k, v in total.items() if k not in split_only
        }
