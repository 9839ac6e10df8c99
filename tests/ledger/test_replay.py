"""Replaying one customer's events into movements and spans (definitions 1 to 3), pure."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from execmetrics.ledger.replay import (
    Movement,
    PricedEvent,
    SequenceError,
    Span,
    monthly_factor,
    replay_customer,
    subscription_mrr,
)
from execmetrics.money import parse_rate
from execmetrics.timeutil import parse_timestamp


def t(text: str) -> int:
    """An instant in microseconds, from a date or ISO timestamp."""
    return parse_timestamp(text)


def start(
    event_id: str,
    sub: str,
    at: str,
    mrr: int,
    *,
    kind: str = "start",
    plan: str = "pro",
    tier: str | None = None,
    trial: str | None = None,
) -> PricedEvent:
    return PricedEvent(
        event_id,
        sub,
        t(at),
        kind,
        plan,
        tier,
        mrr,
        None if trial is None else t(trial),
        f"subscription_events.csv:{event_id}",
    )


def change(
    event_id: str,
    sub: str,
    at: str,
    mrr: int,
    *,
    plan: str = "pro",
    tier: str | None = None,
    trial: str | None = None,
) -> PricedEvent:
    return start(event_id, sub, at, mrr, kind="change", plan=plan, tier=tier, trial=trial)


def cancel(event_id: str, sub: str, at: str) -> PricedEvent:
    return PricedEvent(
        event_id, sub, t(at), "cancel", None, None, 0, None, f"subscription_events.csv:{event_id}"
    )


def moves(events: list[PricedEvent]) -> list[tuple[int, str, int, int]]:
    """(instant, type, before, after) of each movement."""
    movements, _ = replay_customer(events)
    return [(m.occurred_at, m.type, m.mrr_before, m.mrr_after) for m in movements]


def gbp(amount: int, interval: str = "month", count: int = 1, quantity: int = 1) -> int:
    return subscription_mrr(amount, quantity, interval, count, "GBP", "GBP", Fraction(1))


# --- definition 1: subscription MRR -----------------------------------------------------


def test_published_annual_plan_of_200000_is_16667_mrr() -> None:
    assert gbp(200000, "year") == 16667


def test_published_12000_annual_plan_with_10_percent_discount_is_900_mrr() -> None:
    # amount_minor is net of recurring discounts: 12000 less 10% = 10800 per year.
    assert gbp(10800, "year") == 900


def test_published_100_monthly_plus_50_annual_customers_is_1250000_mrr() -> None:
    customers = [[start(f"m{i}", f"s{i}", "2024-01-01", gbp(10000))] for i in range(100)]
    customers += [[start(f"a{i}", f"s{i}", "2024-01-01", gbp(60000, "year"))] for i in range(50)]
    total = 0
    for events in customers:
        movements, _ = replay_customer(events)
        assert [m.type for m in movements] == ["new"]
        total += movements[-1].mrr_after
    assert total == 1250000


@pytest.mark.parametrize(
    ("interval", "count", "factor"),
    [
        ("month", 1, Fraction(1)),
        ("month", 3, Fraction(1, 3)),
        ("year", 1, Fraction(1, 12)),
        ("year", 2, Fraction(1, 24)),
        ("week", 1, Fraction(52, 12)),
        ("week", 2, Fraction(52, 24)),
        ("day", 1, Fraction(365, 12)),
        ("day", 3, Fraction(365, 36)),
    ],
)
def test_monthly_factor(interval: str, count: int, factor: Fraction) -> None:
    assert monthly_factor(interval, count) == factor


@pytest.mark.parametrize(
    ("amount", "interval", "count", "quantity", "mrr"),
    [
        (4900, "month", 1, 1, 4900),
        (4900, "month", 1, 3, 14700),
        (1000, "week", 1, 1, 4333),  # 4333.33
        (1500, "week", 1, 1, 6500),  # exactly 6500
        (100, "day", 1, 1, 3042),  # 3041.67
        (30000, "month", 3, 1, 10000),  # quarterly
        (10001, "month", 3, 1, 3334),  # 3333.67
        (10000, "month", 3, 2, 6667),  # 6666.67: quantity before rounding
        (6, "year", 1, 1, 1),  # 0.5 rounds up
        (5, "year", 1, 1, 0),  # 0.4167
        (18, "year", 1, 1, 2),  # 1.5 rounds up
    ],
)
def test_subscription_mrr_in_reporting_currency(
    amount: int, interval: str, count: int, quantity: int, mrr: int
) -> None:
    assert gbp(amount, interval, count, quantity) == mrr


def test_same_currency_ignores_the_rate() -> None:
    assert subscription_mrr(4900, 1, "month", 1, "GBP", "GBP", Fraction(2)) == 4900


@pytest.mark.parametrize(
    ("amount", "quantity", "interval", "currency", "reporting", "rate", "mrr"),
    [
        # 57.00 EUR x 2 seats at 0.85 = 96.90 GBP.
        (5700, 2, "month", "EUR", "GBP", "0.85", 9690),
        # 49.90 EUR at 0.85 = 42.415 GBP: the half penny rounds up.
        (4990, 1, "month", "EUR", "GBP", "0.85", 4242),
        # 10,000 yen at 0.0052 GBP per yen = 52.00 GBP.
        (10000, 1, "month", "JPY", "GBP", "0.0052", 5200),
        # 1,234 yen = 6.4168 GBP.
        (1234, 1, "month", "JPY", "GBP", "0.0052", 642),
        # 120,000 yen a year at 0.0052 = 624.00 GBP a year = 52.00 a month.
        (120000, 1, "year", "JPY", "GBP", "0.0052", 5200),
        # 49.500 BHD at 2.1 = 103.95 GBP.
        (49500, 1, "month", "BHD", "GBP", "2.1", 10395),
        # 4.999 BHD at 2.1 = 10.4979 GBP.
        (4999, 1, "month", "BHD", "GBP", "2.1", 1050),
        # Reporting in yen: 49.00 GBP at 190.5 = 9334.5 yen, half up.
        (4900, 1, "month", "GBP", "JPY", "190.5", 9335),
        # Reporting in dinars: 10.00 GBP at 0.4805 = 4.805 BHD = 4805 fils.
        (1000, 1, "month", "GBP", "BHD", "0.4805", 4805),
    ],
)
def test_subscription_mrr_converts_with_minor_unit_exponents(
    amount: int, quantity: int, interval: str, currency: str, reporting: str, rate: str, mrr: int
) -> None:
    result = subscription_mrr(amount, quantity, interval, 1, currency, reporting, parse_rate(rate))
    assert result == mrr
    assert type(result) is int


def test_conversion_rounds_once_after_the_monthly_factor() -> None:
    # 10.12 EUR a week: exactly 1012 x 52/12 x 0.85 = 3727.53 -> 3728. Rounding the
    # monthly amount first (4385) and then converting would give 3727.25 -> 3727.
    assert subscription_mrr(1012, 1, "week", 1, "EUR", "GBP", parse_rate("0.85")) == 3728
    # 1.62 EUR a year: 162 / 12 x 0.85 = 11.475 -> 11; rounding 13.5 to 14 first gives 12.
    assert subscription_mrr(162, 1, "year", 1, "EUR", "GBP", parse_rate("0.85")) == 11
    # 10.13 EUR a week: 3731.22 -> 3731 (rounding the monthly amount first gives 3732).
    assert subscription_mrr(1013, 1, "week", 1, "EUR", "GBP", parse_rate("0.85")) == 3731


# --- definition 3: movements, per customer ---------------------------------------------


def test_first_paid_subscription_is_new() -> None:
    movements, spans = replay_customer([start("e1", "s1", "2024-01-10", 4900)])
    assert movements == [Movement(t("2024-01-10"), "new", 0, 4900, t("2024-01-10"), None)]
    assert spans == [Span("s1", "pro", None, t("2024-01-10"), None, 4900)]


def test_second_subscription_of_a_paying_customer_is_expansion() -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900),
            start("e2", "s2", "2024-02-10", 1000),
        ]
    ) == [
        (t("2024-01-10"), "new", 0, 4900),
        (t("2024-02-10"), "expansion", 4900, 5900),
    ]


def test_cancelling_one_of_two_subscriptions_is_contraction_and_the_last_is_churn() -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900),
            start("e2", "s2", "2024-01-10", 1000),
            cancel("e3", "s2", "2024-02-10"),
            cancel("e4", "s1", "2024-03-10"),
        ]
    ) == [
        (t("2024-01-10"), "new", 0, 5900),
        (t("2024-02-10"), "contraction", 5900, 4900),
        (t("2024-03-10"), "churn", 4900, 0),
    ]


def test_upgrade_and_downgrade_by_change() -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900),
            change("e2", "s1", "2024-02-10", 9900),
            change("e3", "s1", "2024-03-10", 2900),
        ]
    ) == [
        (t("2024-01-10"), "new", 0, 4900),
        (t("2024-02-10"), "expansion", 4900, 9900),
        (t("2024-03-10"), "contraction", 9900, 2900),
    ]


def test_change_with_the_same_mrr_is_no_movement_but_splits_the_span() -> None:
    movements, spans = replay_customer(
        [
            start("e1", "s1", "2024-01-10", 4900, plan="pro-monthly", tier="Professional"),
            change("e2", "s1", "2024-02-10", 4900, plan="pro-annual", tier="Professional"),
        ]
    )
    assert [(m.type, m.mrr_after) for m in movements] == [("new", 4900)]
    assert spans == [
        Span("s1", "pro-monthly", "Professional", t("2024-01-10"), t("2024-02-10"), 4900),
        Span("s1", "pro-annual", "Professional", t("2024-02-10"), None, 4900),
    ]


def test_restart_of_the_same_subscription_after_cancel_is_reactivation() -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900),
            cancel("e2", "s1", "2024-02-10"),
            start("e3", "s1", "2024-04-10", 2900),
        ]
    ) == [
        (t("2024-01-10"), "new", 0, 4900),
        (t("2024-02-10"), "churn", 4900, 0),
        (t("2024-04-10"), "reactivation", 0, 2900),
    ]


def test_new_subscription_after_churn_is_reactivation() -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900),
            cancel("e2", "s1", "2024-02-10"),
            start("e3", "s2", "2024-04-10", 9900),
        ]
    )[-1] == (t("2024-04-10"), "reactivation", 0, 9900)


def test_next_at_and_paying_since_across_two_paying_spells() -> None:
    movements, _ = replay_customer(
        [
            start("e1", "s1", "2024-01-10", 4900),
            change("e2", "s1", "2024-02-10", 9900),
            cancel("e3", "s1", "2024-03-10"),
            start("e4", "s2", "2024-05-10", 2900),
            start("e5", "s3", "2024-06-10", 1000),
        ]
    )
    assert movements == [
        Movement(t("2024-01-10"), "new", 0, 4900, t("2024-01-10"), t("2024-02-10")),
        Movement(t("2024-02-10"), "expansion", 4900, 9900, t("2024-01-10"), t("2024-03-10")),
        # churn keeps the start of the spell it ends
        Movement(t("2024-03-10"), "churn", 9900, 0, t("2024-01-10"), t("2024-05-10")),
        Movement(t("2024-05-10"), "reactivation", 0, 2900, t("2024-05-10"), t("2024-06-10")),
        Movement(t("2024-06-10"), "expansion", 2900, 3900, t("2024-05-10"), None),
    ]


def test_no_events_no_movements() -> None:
    assert replay_customer([]) == ([], [])


def test_a_zero_priced_subscription_never_moves_mrr() -> None:
    movements, spans = replay_customer(
        [
            start("e1", "s1", "2024-01-10", 0, plan="free"),
            cancel("e2", "s1", "2024-02-10"),
        ]
    )
    assert movements == [] and spans == []


# --- netting at one instant -------------------------------------------------------------


def test_swap_of_subscriptions_with_equal_mrr_at_one_instant_is_no_movement() -> None:
    movements, spans = replay_customer(
        [
            start("e1", "s1", "2024-01-10", 4900, plan="old"),
            cancel("e2", "s1", "2024-03-01T12:00:00Z"),
            start("e3", "s2", "2024-03-01T12:00:00Z", 4900, plan="new"),
        ]
    )
    assert [(m.type, m.occurred_at) for m in movements] == [("new", t("2024-01-10"))]
    assert movements[0].next_at is None
    assert spans == [
        Span("s1", "old", None, t("2024-01-10"), t("2024-03-01T12:00:00Z"), 4900),
        Span("s2", "new", None, t("2024-03-01T12:00:00Z"), None, 4900),
    ]


@pytest.mark.parametrize(("new_mrr", "kind"), [(9900, "expansion"), (2900, "contraction")])
def test_swap_of_subscriptions_with_different_mrr_at_one_instant_is_one_movement(
    new_mrr: int, kind: str
) -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900),
            cancel("e2", "s1", "2024-03-01"),
            start("e3", "s2", "2024-03-01", new_mrr),
        ]
    ) == [
        (t("2024-01-10"), "new", 0, 4900),
        (t("2024-03-01"), kind, 4900, new_mrr),
    ]


def test_two_subscriptions_starting_at_one_instant_are_one_new_movement() -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900),
            start("e2", "s2", "2024-01-10", 1000),
            start("e3", "s3", "2024-01-10", 100),
        ]
    ) == [(t("2024-01-10"), "new", 0, 6000)]


def test_cancelling_everything_at_one_instant_is_one_churn() -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900),
            start("e2", "s2", "2024-01-20", 1000),
            cancel("e3", "s1", "2024-03-01"),
            cancel("e4", "s2", "2024-03-01"),
        ]
    )[-1] == (t("2024-03-01"), "churn", 5900, 0)


def test_same_instant_is_exact_to_the_microsecond() -> None:
    assert [
        kind
        for _, kind, _, _ in moves(
            [
                start("e1", "s1", "2024-01-10", 4900),
                cancel("e2", "s1", "2024-03-01T00:00:00.000001Z"),
                start("e3", "s2", "2024-03-01T00:00:00Z", 4900),
            ]
        )
    ] == ["new", "expansion", "contraction"]


# --- ordering of one subscription's events at one instant ---------------------------------


def test_start_applies_before_change_at_the_same_instant_whatever_the_ids() -> None:
    # event_id order would put the change first, which would be an error.
    assert moves(
        [
            change("a-change", "s1", "2024-01-10", 9900),
            start("z-start", "s1", "2024-01-10", 4900),
        ]
    ) == [(t("2024-01-10"), "new", 0, 9900)]


def test_start_and_cancel_at_the_same_instant_apply_start_first() -> None:
    movements, spans = replay_customer(
        [
            cancel("a-cancel", "s1", "2024-01-10"),
            start("z-start", "s1", "2024-01-10", 4900),
        ]
    )
    assert movements == [] and spans == []


def test_change_applies_before_cancel_at_the_same_instant() -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900),
            cancel("a-cancel", "s1", "2024-02-10"),
            change("z-change", "s1", "2024-02-10", 9900),
        ]
    ) == [(t("2024-01-10"), "new", 0, 4900), (t("2024-02-10"), "churn", 4900, 0)]


def test_changes_at_the_same_instant_apply_in_event_id_order() -> None:
    events = [
        start("e1", "s1", "2024-01-10", 4900),
        change("e3", "s1", "2024-02-10", 2900),
        change("e2", "s1", "2024-02-10", 9900),
    ]
    # e2 then e3: the last applied (e3, 2900) holds.
    assert moves(events)[-1] == (t("2024-02-10"), "contraction", 4900, 2900)
    assert moves(list(reversed(events)))[-1] == (t("2024-02-10"), "contraction", 4900, 2900)


def test_a_start_at_the_instant_of_a_cancel_of_an_active_subscription_is_refused() -> None:
    # start applies before cancel at one instant, so it finds the subscription active.
    with pytest.raises(SequenceError) as error:
        replay_customer(
            [
                start("e1", "s1", "2024-01-10", 4900),
                cancel("e2", "s1", "2024-02-10"),
                start("e3", "s1", "2024-02-10", 4900),
            ]
        )
    assert error.value.event.event_id == "e3"


def test_result_does_not_depend_on_input_order() -> None:
    events = [
        start("e1", "s1", "2024-01-10", 4900, trial="2024-01-24"),
        change("e2", "s1", "2024-02-10", 9900),
        start("e3", "s2", "2024-02-10", 1000),
        change("e4", "s2", "2024-03-01", 2000),
        cancel("e5", "s1", "2024-03-01"),
        cancel("e6", "s2", "2024-04-01"),
        start("e7", "s1", "2024-05-01", 4900),
    ]
    expected = replay_customer(events)
    assert [m.type for m in expected[0]] == [
        "new",
        "expansion",
        "contraction",
        "churn",
        "reactivation",
    ]
    shuffler = random.Random(7)
    for _ in range(20):
        shuffled = events[:]
        shuffler.shuffle(shuffled)
        assert replay_customer(shuffled) == expected


# --- sequence errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "culprit"),
    [
        ([start("e1", "s1", "2024-01-10", 4900), start("e2", "s1", "2024-02-10", 4900)], "e2"),
        ([change("e1", "s1", "2024-01-10", 4900)], "e1"),
        ([cancel("e1", "s1", "2024-01-10")], "e1"),
        ([change("e1", "s1", "2024-01-05", 4900), start("e2", "s1", "2024-01-10", 4900)], "e1"),
        ([cancel("e1", "s1", "2024-01-05"), start("e2", "s1", "2024-01-10", 4900)], "e1"),
        (
            [
                start("e1", "s1", "2024-01-10", 4900),
                cancel("e2", "s1", "2024-02-10"),
                change("e3", "s1", "2024-03-10", 9900),
            ],
            "e3",
        ),
        (
            [
                start("e1", "s1", "2024-01-10", 4900),
                cancel("e2", "s1", "2024-02-10"),
                cancel("e3", "s1", "2024-03-10"),
            ],
            "e3",
        ),
    ],
    ids=[
        "start-active",
        "change-never-started",
        "cancel-never-started",
        "change-before-start",
        "cancel-before-start",
        "change-after-cancel",
        "cancel-after-cancel",
    ],
)
def test_sequence_errors(events: list[PricedEvent], culprit: str) -> None:
    with pytest.raises(SequenceError) as error:
        replay_customer(events)
    assert error.value.event.event_id == culprit
    assert error.value.reason


def test_a_sequence_error_on_one_subscription_is_not_hidden_by_another() -> None:
    with pytest.raises(SequenceError) as error:
        replay_customer(
            [
                start("e1", "s1", "2024-01-10", 4900),
                change("e2", "s2", "2024-02-10", 4900),
            ]
        )
    assert error.value.event.event_id == "e2"


# --- definition 2: trials -----------------------------------------------------------------


def test_trial_is_worth_zero_until_it_ends_then_new() -> None:
    movements, spans = replay_customer(
        [
            start("e1", "s1", "2024-01-10", 4900, trial="2024-01-24"),
        ]
    )
    assert movements == [Movement(t("2024-01-24"), "new", 0, 4900, t("2024-01-24"), None)]
    assert spans == [Span("s1", "pro", None, t("2024-01-24"), None, 4900)]


def test_cancel_before_trial_end_never_contributes() -> None:
    movements, spans = replay_customer(
        [
            start("e1", "s1", "2024-01-10", 4900, trial="2024-01-24"),
            cancel("e2", "s1", "2024-01-20"),
        ]
    )
    assert movements == [] and spans == []


def test_cancel_at_the_trial_end_never_contributes() -> None:
    movements, spans = replay_customer(
        [
            start("e1", "s1", "2024-01-10", 4900, trial="2024-01-24"),
            cancel("e2", "s1", "2024-01-24"),
        ]
    )
    assert movements == [] and spans == []


def test_cancel_after_trial_end_is_churn() -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900, trial="2024-01-24"),
            cancel("e2", "s1", "2024-02-24"),
        ]
    ) == [(t("2024-01-24"), "new", 0, 4900), (t("2024-02-24"), "churn", 4900, 0)]


def test_trial_end_carries_over_to_a_change_without_one() -> None:
    movements, spans = replay_customer(
        [
            start("e1", "s1", "2024-01-10", 4900, plan="pro", trial="2024-01-31"),
            change("e2", "s1", "2024-01-20", 9900, plan="scale"),  # no trial_ends_at
        ]
    )
    assert [(m.occurred_at, m.type, m.mrr_after) for m in movements] == [
        (t("2024-01-31"), "new", 9900)
    ]
    assert spans == [Span("s1", "scale", None, t("2024-01-31"), None, 9900)]


def test_trial_end_on_a_change_replaces_the_earlier_one() -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900, trial="2024-01-31"),
            change("e2", "s1", "2024-01-20", 4900, trial="2024-02-15"),
        ]
    ) == [(t("2024-02-15"), "new", 0, 4900)]


def test_change_after_the_trial_ended_is_effective_at_once() -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900, trial="2024-01-24"),
            change("e2", "s1", "2024-02-10", 9900),
        ]
    ) == [(t("2024-01-24"), "new", 0, 4900), (t("2024-02-10"), "expansion", 4900, 9900)]


def test_trial_on_a_second_subscription_expands_at_its_end() -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900),
            start("e2", "s2", "2024-02-01", 1000, trial="2024-02-15"),
        ]
    ) == [(t("2024-01-10"), "new", 0, 4900), (t("2024-02-15"), "expansion", 4900, 5900)]


def test_abandoned_trial_does_not_count_as_having_paid() -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900, trial="2024-01-24"),
            cancel("e2", "s1", "2024-01-20"),
            start("e3", "s2", "2024-03-01", 2900),
        ]
    ) == [(t("2024-03-01"), "new", 0, 2900)]


def test_trial_ending_at_the_instant_another_subscription_is_cancelled_is_netted() -> None:
    assert moves(
        [
            start("e1", "s1", "2024-01-10", 4900),
            start("e2", "s2", "2024-02-01", 4900, trial="2024-02-15"),
            cancel("e3", "s1", "2024-02-15"),
        ]
    ) == [(t("2024-01-10"), "new", 0, 4900)]


# --- spans ----------------------------------------------------------------------------


def test_spans_per_subscription_carry_plan_tier_and_half_open_validity() -> None:
    _, spans = replay_customer(
        [
            start("e1", "s1", "2024-01-10", 2900, plan="starter-m", tier="Starter"),
            change("e2", "s1", "2024-02-10", 4900, plan="pro-m", tier="Professional"),
            cancel("e3", "s1", "2024-03-10"),
            start("e4", "s2", "2024-02-01", 1000, plan="addon", tier=None),
            start("e5", "s1", "2024-05-01", 9900, plan="scale-m", tier="Scale"),
        ]
    )
    assert sorted(spans, key=lambda s: (s.subscription_id, s.valid_from)) == [
        Span("s1", "starter-m", "Starter", t("2024-01-10"), t("2024-02-10"), 2900),
        Span("s1", "pro-m", "Professional", t("2024-02-10"), t("2024-03-10"), 4900),
        Span("s1", "scale-m", "Scale", t("2024-05-01"), None, 9900),
        Span("s2", "addon", None, t("2024-02-01"), None, 1000),
    ]


# --- against an independent model of definitions 2 and 3 ---------------------------------

ORDER = {"start": 0, "change": 1, "cancel": 2}


def _model(events: list[PricedEvent]) -> list[tuple[int, str, int, int]] | None:
    """Movements straight from the definitions, or None when the history is invalid."""
    by_subscription: dict[str, list[PricedEvent]] = {}
    for event in sorted(events, key=lambda e: (e.occurred_at, ORDER[e.type], e.event_id)):
        by_subscription.setdefault(event.subscription_id, []).append(event)
    # Each subscription's contribution: (from, to, mrr) intervals, to=None for open-ended.
    intervals: list[tuple[int, int | None, int]] = []
    for history in by_subscription.values():
        active, trial = False, None
        for index, event in enumerate(history):
            if (event.type == "start") == active:
                return None
            active = event.type != "cancel"
            if not active:
                continue
            trial = event.trial_ends_at if event.trial_ends_at is not None else trial
            begin = max(event.occurred_at, trial) if trial is not None else event.occurred_at
            end = history[index + 1].occurred_at if index + 1 < len(history) else None
            if end is None or begin < end:
                intervals.append((begin, end, event.mrr))

    def mrr_at(instant: int) -> int:
        return sum(m for a, b, m in intervals if a <= instant and (b is None or instant < b))

    instants = sorted({a for a, _, _ in intervals} | {b for _, b, _ in intervals if b is not None})
    result, paid = [], False
    for instant in instants:
        before, after = mrr_at(instant - 1), mrr_at(instant)
        if before == after:
            continue
        if before == 0:
            kind = "reactivation" if paid else "new"
            paid = True
        elif after == 0:
            kind = "churn"
        else:
            kind = "expansion" if after > before else "contraction"
        result.append((instant, kind, before, after))
    return result


def _random_history(rng: random.Random) -> list[PricedEvent]:
    events = []
    day = 24 * 3600 * 10**6
    for sub in range(rng.randint(1, 3)):
        active = False
        for number in range(rng.randint(1, 6)):
            if rng.random() < 0.1:
                kind = rng.choice(["start", "change", "cancel"])  # sometimes invalid
            else:
                kind = rng.choice(["change", "change", "cancel"]) if active else "start"
            active = kind != "cancel"
            at = rng.randint(0, 12) * day
            event_id = f"e{sub}{number}{rng.randint(0, 9)}"
            if kind == "cancel":
                events.append(PricedEvent(event_id, f"s{sub}", at, kind, None, None, 0, None, ""))
                continue
            trial = at + rng.randint(1, 5) * day if rng.random() < 0.3 else None
            events.append(
                PricedEvent(
                    event_id,
                    f"s{sub}",
                    at,
                    kind,
                    "p",
                    None,
                    rng.choice([0, 1000, 2000, 4900]),
                    trial,
                    "",
                )
            )
    return events


def test_replay_matches_the_definitions_on_random_histories() -> None:
    rng = random.Random(20240601)
    valid = 0
    for _ in range(3000):
        events = _random_history(rng)
        if len({e.event_id for e in events}) != len(events):
            continue
        expected = _model(events)
        if expected is None:
            with pytest.raises(SequenceError):
                replay_customer(events)
            continue
        valid += 1
        movements, spans = replay_customer(events)
        assert [
            (m.occurred_at, m.type, m.mrr_before, m.mrr_after) for m in movements
        ] == expected, events
        # next_at chains the movements; spans add up to the customer's MRR after each one.
        instants = [m.occurred_at for m in movements]
        assert [m.next_at for m in movements] == ([*instants[1:], None] if movements else [])
        for m in movements:
            in_effect = sum(
                s.mrr
                for s in spans
                if s.valid_from <= m.occurred_at
                and (s.valid_to is None or m.occurred_at < s.valid_to)
            )
            assert in_effect == m.mrr_after, events
    assert valid > 500
