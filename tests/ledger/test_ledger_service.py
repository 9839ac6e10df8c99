"""The ledger as stored: rebuilt per affected customer at ingest, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select
from tests.builders import cancel, change, fx, ingest, metrics, start

from execmetrics.ingest.problems import IngestError
from execmetrics.store.tables import (
    customer_ledger,
    customers,
    mrr_movements,
    subscription_events,
    subscription_mrr_spans,
)
from execmetrics.timeutil import parse_timestamp

Move = tuple[str, int, str, int, int, int | None, int | None]


def t(text: str) -> int:
    return parse_timestamp(text)


def ledger(engine: Engine) -> list[Move]:
    """Every stored movement: (customer, at, type, before, after, paying_since, next_at)."""
    m = mrr_movements.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                customers.c.customer_id,
                m.occurred_at,
                m.type,
                m.mrr_before,
                m.mrr_after,
                m.paying_since,
                m.next_at,
            )
            .join(customers, customers.c.id == m.customer_key)
            .order_by(customers.c.customer_id, m.occurred_at)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def ledger_with_ids(engine: Engine) -> list[tuple[Any, ...]]:
    """Stored movement rows with their primary keys: unchanged ids mean not rewritten."""
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(select(mrr_movements).order_by(mrr_movements.c.id))
        ]


def customer_key(engine: Engine, customer_id: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(customers.c.id).where(customers.c.customer_id == customer_id)
            ).scalar_one()
        )


def of(moves: list[Move], customer_id: str) -> list[tuple[int, str, int, int]]:
    return [
        (at, kind, before, after)
        for cid, at, kind, before, after, _, _ in moves
        if cid == customer_id
    ]


def month_ends(engine: Engine, first: str, last: str) -> list[int]:
    return [row["mrr_end"] for row in metrics(engine, first, last)]


def test_movement_table_holds_typed_movements_with_spells_and_next_at(engine: Engine) -> None:
    ingest(
        engine,
        events=[
            start("e1", "c1", "s1", "2024-01-10T09:00:00Z", 4900),
            start("e2", "c1", "s2", "2024-02-10T09:00:00Z", 1000),
            cancel("e3", "c1", "s2", "2024-03-10T09:00:00Z"),
            cancel("e4", "c1", "s1", "2024-04-10T09:00:00Z"),
            start("e5", "c1", "s1", "2024-06-01T00:00:00Z", 2900),
        ],
    )
    jan, feb, mar = t("2024-01-10T09:00:00Z"), t("2024-02-10T09:00:00Z"), t("2024-03-10T09:00:00Z")
    apr, jun = t("2024-04-10T09:00:00Z"), t("2024-06-01")
    assert ledger(engine) == [
        ("c1", jan, "new", 0, 4900, jan, feb),
        ("c1", feb, "expansion", 4900, 5900, jan, mar),
        ("c1", mar, "contraction", 5900, 4900, jan, apr),
        ("c1", apr, "churn", 4900, 0, jan, jun),
        ("c1", jun, "reactivation", 0, 2900, jun, None),
    ]
    with engine.connect() as connection:
        first_paid = connection.execute(
            select(customer_ledger.c.first_paid_at)
            .join_from(customer_ledger, customers, customers.c.id == customer_ledger.c.customer_key)
            .where(customers.c.customer_id == "c1")
        ).scalar_one()
    assert first_paid == jan


def test_trial_is_stored_as_a_new_movement_and_span_at_trial_end(engine: Engine) -> None:
    ingest(
        engine,
        events=[
            start(
                "e1",
                "c1",
                "s1",
                "2024-01-10",
                4900,
                tier="Professional",
                trial_ends_at="2024-01-24",
            ),
            start("e2", "c2", "s1", "2024-01-10", 4900, trial_ends_at="2024-01-24"),
            cancel("e3", "c2", "s1", "2024-01-20"),
        ],
    )
    assert ledger(engine) == [("c1", t("2024-01-24"), "new", 0, 4900, t("2024-01-24"), None)]
    s = subscription_mrr_spans.c
    with engine.connect() as connection:
        spans = connection.execute(
            select(s.subscription_id, s.plan_id, s.tier, s.valid_from, s.valid_to, s.mrr)
        ).all()
    assert [tuple(span) for span in spans] == [
        ("s1", "pro-monthly", "Professional", t("2024-01-24"), None, 4900)
    ]


def test_late_change_between_start_and_cancel_updates_the_movements(engine: Engine) -> None:
    ingest(
        engine,
        events=[
            start("e1", "c1", "s1", "2024-01-10", 4900),
            cancel("e3", "c1", "s1", "2024-04-10"),
        ],
    )
    assert of(ledger(engine), "c1") == [
        (t("2024-01-10"), "new", 0, 4900),
        (t("2024-04-10"), "churn", 4900, 0),
    ]
    result = ingest(engine, events=[change("e2", "c1", "s1", "2024-02-10", 9900)])
    assert result.counts["subscription_events"].inserted == 1
    assert result.ledger.customers == 1
    assert ledger(engine) == [
        ("c1", t("2024-01-10"), "new", 0, 4900, t("2024-01-10"), t("2024-02-10")),
        ("c1", t("2024-02-10"), "expansion", 4900, 9900, t("2024-01-10"), t("2024-04-10")),
        ("c1", t("2024-04-10"), "churn", 9900, 0, t("2024-01-10"), None),
    ]
    assert month_ends(engine, "2024-01", "2024-04") == [4900, 9900, 9900, 0]


def test_late_earlier_subscription_turns_new_into_expansion(engine: Engine) -> None:
    ingest(engine, events=[start("e2", "c1", "s2", "2024-03-10", 1000)])
    ingest(engine, events=[start("e1", "c1", "s1", "2024-01-10", 4900)])
    assert of(ledger(engine), "c1") == [
        (t("2024-01-10"), "new", 0, 4900),
        (t("2024-03-10"), "expansion", 4900, 5900),
    ]


def test_late_start_before_a_stored_restart_makes_it_a_reactivation(engine: Engine) -> None:
    ingest(engine, events=[start("e3", "c1", "s2", "2024-05-01", 2900)])
    assert of(ledger(engine), "c1") == [(t("2024-05-01"), "new", 0, 2900)]
    ingest(
        engine,
        events=[
            cancel("e2", "c1", "s1", "2024-02-01"),
            start("e1", "c1", "s1", "2024-01-01", 4900),
        ],
    )
    assert of(ledger(engine), "c1") == [
        (t("2024-01-01"), "new", 0, 4900),
        (t("2024-02-01"), "churn", 4900, 0),
        (t("2024-05-01"), "reactivation", 0, 2900),
    ]


def test_any_batching_and_order_gives_the_same_ledger(engine: Engine) -> None:
    events = [
        start("e1", "c1", "s1", "2024-01-10", 4900, trial_ends_at="2024-01-24"),
        change("e2", "c1", "s1", "2024-02-10", 9900),
        start("e3", "c1", "s2", "2024-02-10", 1000),
        cancel("e4", "c1", "s1", "2024-03-01"),
        cancel("e5", "c1", "s2", "2024-04-01"),
        start("e6", "c1", "s1", "2024-05-01", 4900),
    ]
    # Out of order within and across batches; each batch leaves a valid history.
    for batch in ([events[4], events[2]], [events[3], events[0]], [events[5], events[1]]):
        ingest(engine, events=batch)
    assert of(ledger(engine), "c1") == [
        (t("2024-01-24"), "new", 0, 4900),
        (t("2024-02-10"), "expansion", 4900, 10900),
        (t("2024-03-01"), "contraction", 10900, 1000),
        (t("2024-04-01"), "churn", 1000, 0),
        (t("2024-05-01"), "reactivation", 0, 4900),
    ]


def test_only_affected_customers_are_rewritten(engine: Engine) -> None:
    ingest(
        engine,
        events=[
            start("e1", "c1", "s1", "2024-01-10", 4900),
            start("e2", "c2", "s1", "2024-01-10", 2900),
        ],
    )
    c1 = customer_key(engine, "c1")
    before = [row for row in ledger_with_ids(engine) if row[1] == c1]
    assert len(before) == 1
    result = ingest(engine, events=[change("e3", "c2", "s1", "2024-02-10", 3900)])
    assert result.ledger.customers == 1
    assert [row for row in ledger_with_ids(engine) if row[1] == c1] == before
    assert of(ledger(engine), "c2") == [
        (t("2024-01-10"), "new", 0, 2900),
        (t("2024-02-10"), "expansion", 2900, 3900),
    ]


def test_reingesting_the_same_events_is_a_no_op(engine: Engine) -> None:
    events = [
        start("e1", "c1", "s1", "2024-01-10", 5700, currency="EUR", quantity=2),
        change("e2", "c1", "s1", "2024-02-10", 9900, currency="EUR"),
        cancel("e3", "c1", "s1", "2024-03-10"),
    ]
    rates = [fx("2024-01-01", "EUR", "0.85")]
    ingest(engine, events=events, fx_rates=rates)
    stored = ledger_with_ids(engine)
    assert len(stored) == 3
    result = ingest(engine, events=list(reversed(events)), fx_rates=rates)
    assert result.counts["subscription_events"].unchanged == 3
    assert result.counts["subscription_events"].inserted == 0
    assert result.counts["fx_rates"].unchanged == 1
    assert result.counts["fx_rates"].inserted == 0
    assert result.ledger.customers == 0
    assert ledger_with_ids(engine) == stored
    with engine.connect() as connection:
        assert len(connection.execute(select(subscription_events.c.id)).all()) == 3


def test_the_same_event_in_another_notation_is_unchanged(engine: Engine) -> None:
    ingest(engine, events=[start("e1", "c1", "s1", "2024-01-10", 4900)])
    stored = ledger_with_ids(engine)
    result = ingest(
        engine,
        events=[
            start("e1", "c1", "s1", "2024-01-10T01:00:00+01:00", 4900, quantity=1, interval_count=1)
        ],
    )
    assert result.counts["subscription_events"].unchanged == 1
    assert result.ledger.customers == 0
    assert ledger_with_ids(engine) == stored


def test_events_in_foreign_currency_are_priced_at_the_rate_of_their_utc_date(
    engine: Engine,
) -> None:
    ingest(
        engine,
        fx_rates=[
            fx("2024-01-01", "EUR", "0.85"),
            fx("2024-03-01", "EUR", "0.90"),
            fx("2024-01-01", "JPY", "0.0052"),
            fx("2024-01-01", "BHD", "2.1"),
        ],
        events=[
            start("e1", "c1", "s1", "2024-02-10", 5700, currency="EUR", quantity=2),
            # 00:30 at +01:00 is 2024-02-29T23:30Z: the February rate is in force.
            start("e2", "c2", "s1", "2024-03-01T00:30:00+01:00", 10000, currency="EUR"),
            start("e3", "c3", "s1", "2024-03-01T00:00:00Z", 10000, currency="EUR"),
            start("e4", "c4", "s1", "2024-02-10", 10000, currency="JPY"),
            start("e5", "c5", "s1", "2024-02-10", 49500, currency="BHD"),
        ],
    )
    assert [(cid, after) for cid, _, _, _, after, _, _ in ledger(engine)] == [
        ("c1", 9690),
        ("c2", 8500),
        ("c3", 9000),
        ("c4", 5200),
        ("c5", 10395),
    ]


def test_missing_fx_rate_is_an_error_not_a_rate_of_one(engine: Engine) -> None:
    with pytest.raises(IngestError) as error:
        ingest(
            engine,
            fx_rates=[fx("2024-03-01", "EUR", "0.85")],
            events=[
                start("e1", "c1", "s1", "2024-02-10", 4900, currency="EUR"),
            ],
        )
    assert "EUR" in str(error.value)
    assert ledger(engine) == []
    with engine.connect() as connection:
        assert connection.execute(select(subscription_events.c.id)).all() == []


def test_new_rate_between_an_older_rate_and_an_event_reprices_only_those_customers(
    engine: Engine,
) -> None:
    ingest(
        engine,
        fx_rates=[fx("2024-01-01", "EUR", "0.85"), fx("2024-04-01", "EUR", "0.88")],
        events=[
            start("e1", "c1", "s1", "2024-03-10", 5700, currency="EUR", quantity=2),
            start("e2", "c2", "s1", "2024-02-10", 5000, currency="EUR"),  # before the new rate
            start("e3", "c3", "s1", "2024-04-10", 5000, currency="EUR"),  # after a later rate
            start("e4", "c4", "s1", "2024-03-10", 5000),  # GBP
            start("e5", "c5", "s1", "2024-03-01T00:00:00Z", 1000, currency="EUR"),  # on the day
            start("e6", "c6", "s1", "2024-02-29T23:59:59Z", 1000, currency="EUR"),  # just before
        ],
    )
    before = ledger_with_ids(engine)
    assert [(cid, after) for cid, _, _, _, after, _, _ in ledger(engine)] == [
        ("c1", 9690),
        ("c2", 4250),
        ("c3", 4400),
        ("c4", 5000),
        ("c5", 850),
        ("c6", 850),
    ]
    result = ingest(engine, fx_rates=[fx("2024-03-01", "EUR", "0.90")])
    assert result.counts["fx_rates"].inserted == 1
    assert result.ledger.customers == 2
    assert [(cid, after) for cid, _, _, _, after, _, _ in ledger(engine)] == [
        ("c1", 10260),
        ("c2", 4250),
        ("c3", 4400),
        ("c4", 5000),
        ("c5", 900),
        ("c6", 850),
    ]
    repriced = {customer_key(engine, "c1"), customer_key(engine, "c5")}
    assert [row for row in ledger_with_ids(engine) if row[1] not in repriced] == [
        row for row in before if row[1] not in repriced
    ]
    assert month_ends(engine, "2024-03", "2024-04") == [
        10260 + 4250 + 5000 + 900 + 850,
        10260 + 4250 + 5000 + 900 + 850 + 4400,
    ]


def test_currency_swing_after_all_events_creates_no_movement(engine: Engine) -> None:
    ingest(
        engine,
        fx_rates=[fx("2024-01-01", "EUR", "0.85")],
        events=[
            start("e1", "c1", "s1", "2024-01-10", 5700, currency="EUR", quantity=2),
            change("e2", "c1", "s1", "2024-02-10", 5700, currency="EUR", quantity=3),
        ],
    )
    stored = ledger_with_ids(engine)
    assert [(kind, after) for _, _, kind, _, after, _, _ in ledger(engine)] == [
        ("new", 9690),
        ("expansion", 14535),
    ]
    result = ingest(
        engine, fx_rates=[fx("2024-06-01", "EUR", "1.10"), fx("2024-09-01", "EUR", "0.70")]
    )
    assert result.counts["fx_rates"].inserted == 2
    assert result.ledger.customers == 0
    assert ledger_with_ids(engine) == stored
    assert month_ends(engine, "2024-05", "2024-10") == [14535] * 6


def test_late_event_that_breaks_a_subscription_history_is_refused_and_writes_nothing(
    engine: Engine,
) -> None:
    ingest(
        engine,
        events=[
            start("e1", "c1", "s1", "2024-01-10", 4900),
            cancel("e2", "c1", "s1", "2024-03-10"),
        ],
    )
    stored = ledger_with_ids(engine)
    with pytest.raises(IngestError) as error:
        ingest(engine, events=[change("e3", "c1", "s1", "2024-04-10", 9900)])
    assert "cancelled" in str(error.value)
    assert ledger_with_ids(engine) == stored
    with engine.connect() as connection:
        ids = connection.execute(select(subscription_events.c.event_id)).scalars().all()
    assert sorted(ids) == ["e1", "e2"]


def test_cancel_arriving_before_its_start_is_refused_until_the_start_comes(
    engine: Engine,
) -> None:
    with pytest.raises(IngestError):
        ingest(engine, events=[cancel("e2", "c1", "s1", "2024-03-10")])
    assert ledger(engine) == []
    ingest(
        engine,
        events=[
            cancel("e2", "c1", "s1", "2024-03-10"),
            start("e1", "c1", "s1", "2024-01-10", 4900),
        ],
    )
    assert of(ledger(engine), "c1") == [
        (t("2024-01-10"), "new", 0, 4900),
        (t("2024-03-10"), "churn", 4900, 0),
    ]


def test_published_100_monthly_and_50_annual_customers_is_1250000_mrr(engine: Engine) -> None:
    events = [start(f"m{i}", f"m{i}", "s1", "2024-01-05", 10000) for i in range(100)]
    events += [
        start(f"a{i}", f"a{i}", "s1", "2024-01-05", 60000, interval="year", plan="pro-annual")
        for i in range(50)
    ]
    result = ingest(engine, events=events)
    assert result.ledger.customers == 150
    moves = ledger(engine)
    assert len(moves) == 150 and {kind for _, _, kind, _, _, _, _ in moves} == {"new"}
    assert sum(after for _, _, _, _, after, _, _ in moves) == 1250000
    assert month_ends(engine, "2024-01", "2024-01") == [1250000]
