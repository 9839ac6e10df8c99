"""The alert state machine: pending, firing, recovering, NoData and Error treatments."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from execmetrics.alerts.state import (
    Event,
    Instance,
    Observation,
    State,
    Timing,
    Treatment,
    advance,
    next_deadline,
)

MINUTE = 60_000_000
H, C, N, E = Observation.HOLDS, Observation.CLEAR, Observation.NODATA, Observation.ERROR


def run(
    observations: list[tuple[int, Observation]], timing: Timing
) -> tuple[Instance, list[tuple[int, State, Event | None]]]:
    instance, trace = Instance(), []
    for minute, observation in observations:
        instance, event = advance(instance, observation, minute * MINUTE, timing)
        trace.append((minute, instance.state, event))
    return instance, trace


def test_condition_must_hold_for_the_pending_period_before_firing() -> None:
    _, trace = run([(0, H), (3, H), (5, H), (6, H)], Timing(pending_us=5 * MINUTE))
    assert trace == [
        (0, State.PENDING, None),
        (3, State.PENDING, None),
        (5, State.FIRING, Event.FIRING),
        (6, State.FIRING, None),
    ]


def test_a_condition_that_clears_while_pending_never_fires() -> None:
    _, trace = run([(0, H), (2, C), (3, H), (7, H), (8, H)], Timing(pending_us=5 * MINUTE))
    assert [event for *_, event in trace] == [None, None, None, None, Event.FIRING]
    assert trace[3][1] is State.PENDING  # the pending period restarted at minute 3


def test_without_a_pending_period_an_alert_fires_at_once_and_resolves_at_once() -> None:
    _, trace = run([(0, H), (1, C)], Timing())
    assert trace == [(0, State.FIRING, Event.FIRING), (1, State.NORMAL, Event.RESOLVED)]


def test_keep_firing_holds_the_alert_through_a_brief_clear() -> None:
    timing = Timing(keep_firing_us=10 * MINUTE)
    _, trace = run([(0, H), (1, C), (5, H), (6, C), (15, C), (16, C)], timing)
    assert trace == [
        (0, State.FIRING, Event.FIRING),
        (1, State.RECOVERING, None),
        (5, State.FIRING, None),  # back before the keep-firing period ran out: no new event
        (6, State.RECOVERING, None),
        (15, State.RECOVERING, None),
        (16, State.NORMAL, Event.RESOLVED),
    ]


def test_each_firing_starts_a_new_episode() -> None:
    instance, _ = run([(0, H), (1, C), (2, H)], Timing())
    assert instance.episode == 2
    assert instance.firing_since == 2 * MINUTE


def test_nodata_treated_as_firing_goes_through_the_pending_period() -> None:
    timing = Timing(pending_us=5 * MINUTE, nodata=Treatment.FIRING)
    _, trace = run([(0, N), (5, N), (6, C)], timing)
    assert trace == [
        (0, State.NODATA, None),
        (5, State.NODATA, Event.FIRING),
        (6, State.NORMAL, Event.RESOLVED),
    ]


def test_nodata_treated_as_normal_resolves_a_firing_alert() -> None:
    _, trace = run([(0, H), (1, N)], Timing(nodata=Treatment.NORMAL))
    assert trace == [(0, State.FIRING, Event.FIRING), (1, State.NODATA, Event.RESOLVED)]


def test_error_keeping_the_last_state_changes_nothing_but_the_state_shown() -> None:
    instance, trace = run([(0, H), (1, E), (2, E), (3, H)], Timing(error=Treatment.KEEP_LAST))
    assert trace == [
        (0, State.FIRING, Event.FIRING),
        (1, State.ERROR, None),
        (2, State.ERROR, None),
        (3, State.FIRING, None),
    ]
    assert instance.alerting and instance.episode == 1


def test_keep_last_freezes_a_pending_period() -> None:
    timing = Timing(pending_us=5 * MINUTE, nodata=Treatment.KEEP_LAST)
    instance, trace = run([(0, H), (10, N)], timing)
    assert trace[-1] == (10, State.NODATA, None)
    assert instance.phase is State.PENDING
    assert next_deadline(instance, timing) is None  # no timer runs while there is no data


def test_deadlines_tell_when_time_alone_changes_an_instance() -> None:
    timing = Timing(pending_us=5 * MINUTE, keep_firing_us=10 * MINUTE)
    pending, _ = advance(Instance(), H, 0, timing)
    assert next_deadline(pending, timing) == 5 * MINUTE
    firing, _ = advance(pending, H, 5 * MINUTE, timing)
    assert next_deadline(firing, timing) is None
    recovering, _ = advance(firing, C, 7 * MINUTE, timing)
    assert next_deadline(recovering, timing) == 17 * MINUTE


observations = st.lists(
    st.tuples(st.integers(min_value=0, max_value=30), st.sampled_from(list(Observation))),
    max_size=60,
)
treatments = st.sampled_from(list(Treatment))


@given(
    observations,
    st.integers(min_value=0, max_value=10),
    st.integers(min_value=0, max_value=10),
    treatments,
    treatments,
)
def test_events_alternate_and_repeating_an_evaluation_changes_nothing(
    steps: list[tuple[int, Observation]],
    pending: int,
    keep: int,
    nodata: Treatment,
    error: Treatment,
) -> None:
    timing = Timing(pending * MINUTE, keep * MINUTE, nodata, error)
    instance, now, events = Instance(), 0, []
    for gap, observation in steps:
        now += gap * MINUTE
        instance, event = advance(instance, observation, now, timing)
        again, repeated = advance(instance, observation, now, timing)
        assert repeated is None and again == instance  # the same evaluation twice: no change
        if event is not None:
            events.append(event)
        assert instance.alerting == (instance.firing_since is not None)
    # Firing and resolved alternate, starting with firing: never a duplicate notification.
    assert events == [Event.FIRING, Event.RESOLVED] * (len(events) // 2) + (
        [Event.FIRING] if len(events) % 2 else []
    )
    assert instance.episode == (len(events) + 1) // 2
