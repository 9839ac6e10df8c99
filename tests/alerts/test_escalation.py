"""Escalation schedules: levels, acknowledgements, ack timeouts, repeats and resolution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from execmetrics.alerts.escalation import EscalationPolicy, EscalationStep, escalation_steps

FIRED = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
CEO = "user:ceo@example.com"
CFO = "user:cfo@example.com"
SLACK = "channel:finance-slack"


def minutes(count: float) -> datetime:
    return FIRED + timedelta(minutes=count)


def policy(**fields: Any) -> EscalationPolicy:
    """A 3-level policy at 0, 15 and 30 minutes (delays 0, 15, 15), with `fields` on top."""
    data: dict[str, Any] = {
        "name": "revenue-oncall",
        "levels": [
            {"delay_minutes": 0, "recipients": [SLACK]},
            {"delay_minutes": 15, "recipients": [CFO]},
            {"delay_minutes": 15, "recipients": [CEO, SLACK]},
        ],
    }
    return EscalationPolicy.model_validate(data | fields)


def steps(
    chosen: EscalationPolicy,
    *,
    until: float,
    acks: tuple[float, ...] = (),
    resolved: float | None = None,
) -> list[EscalationStep]:
    return escalation_steps(
        chosen,
        fired_at=FIRED,
        acknowledgements=[minutes(a) for a in acks],
        resolved_at=None if resolved is None else minutes(resolved),
        until=minutes(until),
    )


def summary(result: list[EscalationStep]) -> list[tuple[str, float]]:
    return [(s.key, (s.due_at - FIRED) / timedelta(minutes=1)) for s in result]


def error_locations(error: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {".".join(str(part) for part in detail["loc"]) for detail in error.value.errors()}


# --- Timing ------------------------------------------------------------------------------------


def test_levels_walk_up_over_time() -> None:
    assert summary(steps(policy(), until=0)) == [("arm0.round0.level0.channel:finance-slack", 0)]
    assert summary(steps(policy(), until=29)) == [
        ("arm0.round0.level0.channel:finance-slack", 0),
        ("arm0.round0.level1.user:cfo@example.com", 15),
    ]
    assert summary(steps(policy(), until=600)) == [
        ("arm0.round0.level0.channel:finance-slack", 0),
        ("arm0.round0.level1.user:cfo@example.com", 15),
        ("arm0.round0.level2.channel:finance-slack", 30),
        ("arm0.round0.level2.user:ceo@example.com", 30),
    ]


def test_nothing_is_due_before_the_alert_fires() -> None:
    assert steps(policy(), until=-1) == []


def test_step_keys_and_due_times_are_utc() -> None:
    step = steps(policy(), until=0)[0]
    assert step == EscalationStep(0, 0, 0, SLACK, FIRED)
    assert step.due_at.utcoffset() == timedelta(0)
    other_zone = FIRED.astimezone(timezone(timedelta(hours=5, minutes=30)))
    shifted = escalation_steps(
        policy(), fired_at=other_zone, acknowledgements=[], resolved_at=None, until=FIRED
    )
    assert shifted[0].due_at == FIRED and shifted[0].due_at.tzinfo is UTC


def test_repeat_loops_the_levels_after_the_last_one() -> None:
    # Each round takes 0 + 15 + 15 = 30 minutes: round r's levels at 30r, 30r + 15, 30r + 30.
    result = summary(steps(policy(repeat=2), until=10_000))
    assert result == [
        ("arm0.round0.level0.channel:finance-slack", 0),
        ("arm0.round0.level1.user:cfo@example.com", 15),
        ("arm0.round0.level2.channel:finance-slack", 30),
        ("arm0.round0.level2.user:ceo@example.com", 30),
        ("arm0.round1.level0.channel:finance-slack", 30),
        ("arm0.round1.level1.user:cfo@example.com", 45),
        ("arm0.round1.level2.channel:finance-slack", 60),
        ("arm0.round1.level2.user:ceo@example.com", 60),
        ("arm0.round2.level0.channel:finance-slack", 60),
        ("arm0.round2.level1.user:cfo@example.com", 75),
        ("arm0.round2.level2.channel:finance-slack", 90),
        ("arm0.round2.level2.user:ceo@example.com", 90),
    ]


def test_next_round_waits_the_first_level_delay() -> None:
    delayed = policy(
        levels=[
            {"delay_minutes": 5, "recipients": [SLACK]},
            {"delay_minutes": 10, "recipients": [CFO]},
        ],
        repeat=1,
    )
    assert summary(steps(delayed, until=10_000)) == [
        ("arm0.round0.level0.channel:finance-slack", 5),
        ("arm0.round0.level1.user:cfo@example.com", 15),
        ("arm0.round1.level0.channel:finance-slack", 20),
        ("arm0.round1.level1.user:cfo@example.com", 30),
    ]


# --- Acknowledgement ---------------------------------------------------------------------------


def test_ack_stops_the_pending_levels_for_every_recipient() -> None:
    assert summary(steps(policy(repeat=2), until=10_000, acks=(20,))) == [
        ("arm0.round0.level0.channel:finance-slack", 0),
        ("arm0.round0.level1.user:cfo@example.com", 15),
    ]


def test_step_due_at_the_moment_of_the_ack_stays() -> None:
    assert [s.level for s in steps(policy(), until=10_000, acks=(15,))] == [0, 1]


def test_ack_timeout_rearms_from_level_zero() -> None:
    result = summary(steps(policy(ack_timeout_minutes=60), until=10_000, acks=(20,)))
    assert result == [
        ("arm0.round0.level0.channel:finance-slack", 0),
        ("arm0.round0.level1.user:cfo@example.com", 15),
        ("arm1.round0.level0.channel:finance-slack", 80),
        ("arm1.round0.level1.user:cfo@example.com", 95),
        ("arm1.round0.level2.channel:finance-slack", 110),
        ("arm1.round0.level2.user:ceo@example.com", 110),
    ]


def test_acks_while_acknowledged_do_not_extend_the_timeout() -> None:
    once = steps(policy(ack_timeout_minutes=60), until=10_000, acks=(20,))
    again = steps(policy(ack_timeout_minutes=60), until=10_000, acks=(20, 30, 79))
    assert once == again


def test_ack_of_a_rearmed_arm_stops_it_and_rearms_again() -> None:
    # The ack at 100 comes while arm 1 is acknowledged (at 90): a no-op. Arm 2 starts at 150.
    result = summary(steps(policy(ack_timeout_minutes=60), until=10_000, acks=(20, 90, 100)))
    assert result == [
        ("arm0.round0.level0.channel:finance-slack", 0),
        ("arm0.round0.level1.user:cfo@example.com", 15),
        ("arm1.round0.level0.channel:finance-slack", 80),
        ("arm2.round0.level0.channel:finance-slack", 150),
        ("arm2.round0.level1.user:cfo@example.com", 165),
        ("arm2.round0.level2.channel:finance-slack", 180),
        ("arm2.round0.level2.user:ceo@example.com", 180),
    ]


def test_ack_at_the_rearm_instant_acknowledges_the_new_arm() -> None:
    result = summary(steps(policy(ack_timeout_minutes=60), until=150, acks=(20, 80)))
    assert result == [
        ("arm0.round0.level0.channel:finance-slack", 0),
        ("arm0.round0.level1.user:cfo@example.com", 15),
        ("arm1.round0.level0.channel:finance-slack", 80),
        ("arm2.round0.level0.channel:finance-slack", 140),
    ]


def test_without_ack_timeout_an_ack_ends_escalation() -> None:
    assert [s.due_at for s in steps(policy(), until=10_000, acks=(5, 500))] == [FIRED]


def test_acks_before_the_alert_fired_are_ignored() -> None:
    assert steps(policy(), until=10_000, acks=(-10,)) == steps(policy(), until=10_000)


def test_acks_are_taken_in_time_order() -> None:
    chosen = policy(ack_timeout_minutes=60)
    assert steps(chosen, until=10_000, acks=(90, 20)) == steps(chosen, until=10_000, acks=(20, 90))


# --- Resolution --------------------------------------------------------------------------------


def test_resolution_stops_everything() -> None:
    assert [s.level for s in steps(policy(repeat=2), until=10_000, resolved=20)] == [0, 1]


def test_step_due_at_the_resolution_is_not_sent() -> None:
    assert [s.level for s in steps(policy(), until=10_000, resolved=15)] == [0]


def test_resolution_before_the_rearm_prevents_it() -> None:
    chosen = policy(ack_timeout_minutes=60)
    result = steps(chosen, until=10_000, acks=(20,), resolved=80)
    assert {s.arm for s in result} == {0}


def test_resolution_during_a_rearmed_arm_stops_it() -> None:
    chosen = policy(ack_timeout_minutes=60)
    result = summary(steps(chosen, until=10_000, acks=(20,), resolved=100))
    assert result[-1] == ("arm1.round0.level1.user:cfo@example.com", 95)


# --- Policy versions ---------------------------------------------------------------------------


def test_schedule_follows_the_policy_version_passed_in() -> None:
    # The engine keeps the version the episode started with; a newer version does not change
    # the steps of an alert computed with the older one.
    version_1 = policy()
    version_2 = policy(
        levels=[
            {"delay_minutes": 0, "recipients": [CEO]},
            {"delay_minutes": 5, "recipients": [CFO]},
        ]
    )
    assert summary(steps(version_1, until=20)) == [
        ("arm0.round0.level0.channel:finance-slack", 0),
        ("arm0.round0.level1.user:cfo@example.com", 15),
    ]
    assert summary(steps(version_2, until=20)) == [
        ("arm0.round0.level0.user:ceo@example.com", 0),
        ("arm0.round0.level1.user:cfo@example.com", 5),
    ]


# --- Validation --------------------------------------------------------------------------------


def test_repeat_nine_is_accepted_and_ten_refused() -> None:
    assert policy(repeat=9).repeat == 9
    with pytest.raises(ValidationError) as error:
        policy(repeat=10)
    assert error_locations(error) == {"repeat"}


def test_repeat_needs_rounds_that_take_time() -> None:
    with pytest.raises(ValidationError, match="every round fires at once") as error:
        policy(levels=[{"delay_minutes": 0, "recipients": [SLACK]}], repeat=1)
    assert error_locations(error) == {"repeat"}


@pytest.mark.parametrize(
    ("level", "location"),
    [
        ({"delay_minutes": -5, "recipients": [CFO]}, "levels.1.delay_minutes"),
        ({"delay_minutes": 10081, "recipients": [CFO]}, "levels.1.delay_minutes"),
        ({"delay_minutes": "15", "recipients": [CFO]}, "levels.1.delay_minutes"),
        ({"delay_minutes": 15, "recipients": []}, "levels.1.recipients"),
        ({"delay_minutes": 15, "recipients": [CFO, CFO]}, "levels.1.recipients"),
        ({"delay_minutes": 15, "recipients": [CFO, "user:CFO@example.com"]}, "levels.1.recipients"),
        ({"delay_minutes": 15, "recipients": ["cfo@example.com"]}, "levels.1.recipients.0"),
        ({"delay_minutes": 15, "recipients": ["user:cfo"]}, "levels.1.recipients.0"),
        ({"delay_minutes": 15, "recipients": ["user:a b@example.com"]}, "levels.1.recipients.0"),
        ({"delay_minutes": 15, "recipients": ["channel:Finance"]}, "levels.1.recipients.0"),
        ({"delay_minutes": 15, "recipients": ["channel:9lives"]}, "levels.1.recipients.0"),
        ({"delay_minutes": 15, "recipients": ["channel:" + "a" * 65]}, "levels.1.recipients.0"),
        ({"delay_minutes": 15, "recipients": ["team:finance"]}, "levels.1.recipients.0"),
        ({"delay_minutes": 15, "recipients": [CFO], "wait": 3}, "levels.1.wait"),
    ],
)
def test_bad_level_is_refused_naming_the_field(level: dict[str, Any], location: str) -> None:
    levels = [{"delay_minutes": 0, "recipients": [SLACK]}, level]
    with pytest.raises(ValidationError) as error:
        policy(levels=levels)
    assert error_locations(error) == {location}


def test_negative_delay_error_names_the_field_path() -> None:
    levels = [
        {"delay_minutes": 0, "recipients": [SLACK]},
        {"delay_minutes": -1, "recipients": [CFO]},
    ]
    with pytest.raises(ValidationError, match=r"levels\.1\.delay_minutes"):
        policy(levels=levels)


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"name": "Revenue"}, "name"),
        ({"levels": []}, "levels"),
        ({"levels": [{"delay_minutes": 1, "recipients": [SLACK]}] * 21}, "levels"),
        ({"ack_timeout_minutes": 0}, "ack_timeout_minutes"),
        ({"owner": "finance"}, "owner"),
    ],
)
def test_bad_policy_is_refused_naming_the_field(fields: dict[str, Any], location: str) -> None:
    with pytest.raises(ValidationError) as error:
        policy(**fields)
    assert error_locations(error) == {location}


def test_user_emails_are_lowercased() -> None:
    chosen = policy(levels=[{"delay_minutes": 0, "recipients": ["user:CFO@Example.com"]}])
    assert chosen.levels[0].recipients == [CFO]


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="fired_at"):
        escalation_steps(
            policy(),
            fired_at=FIRED.replace(tzinfo=None),
            acknowledgements=[],
            resolved_at=None,
            until=FIRED,
        )


# --- Properties --------------------------------------------------------------------------------

level_data = st.fixed_dictionaries(
    {
        "delay_minutes": st.integers(0, 90),
        "recipients": st.lists(st.sampled_from([CEO, CFO, SLACK]), min_size=1, unique=True),
    }
)


def random_policy(
    levels: list[dict[str, Any]], repeat: int, timeout: int | None
) -> EscalationPolicy:
    """A policy whose first level waits at least a minute, so that repeats are allowed."""
    first = {**levels[0], "delay_minutes": max(levels[0]["delay_minutes"], 1)}
    return policy(name="p", levels=[first, *levels[1:]], repeat=repeat, ack_timeout_minutes=timeout)


policies = st.builds(
    random_policy,
    st.lists(level_data, min_size=1, max_size=4),
    st.integers(0, 3),
    st.none() | st.integers(1, 120),
)
offsets = st.integers(-60, 1000)


@given(
    policies,
    st.lists(offsets, max_size=5),
    st.none() | offsets,
    offsets,
    offsets,
)
def test_a_later_until_only_adds_steps(
    chosen: EscalationPolicy,
    acks: list[int],
    resolved: int | None,
    earlier: int,
    later: int,
) -> None:
    earlier, later = sorted((earlier, later))
    first = steps(chosen, until=earlier, acks=tuple(acks), resolved=resolved)
    second = steps(chosen, until=later, acks=tuple(acks), resolved=resolved)
    assert first == [s for s in second if s.due_at <= minutes(earlier)]
    assert second[: len(first)] == first
    assert all(s.due_at <= minutes(later) for s in second)
    assert len({s.key for s in second}) == len(second)


@given(policies, st.lists(offsets, max_size=5), st.none() | offsets)
def test_no_step_is_due_after_resolution_or_while_acknowledged(
    chosen: EscalationPolicy, acks: list[int], resolved: int | None
) -> None:
    result = steps(chosen, until=5000, acks=tuple(acks), resolved=resolved)
    assert result == sorted(result, key=lambda s: (s.due_at, s.arm, s.round, s.level, s.recipient))
    if resolved is not None:
        assert all(s.due_at < minutes(resolved) for s in result)
    valid_acks = sorted(minutes(a) for a in acks if a >= 0)
    if valid_acks and chosen.ack_timeout_minutes is None:
        assert all(s.due_at <= valid_acks[0] and s.arm == 0 for s in result)
    if chosen.ack_timeout_minutes is not None:
        # A step of a later arm comes no earlier than the timeout after some acknowledgement.
        timeout = timedelta(minutes=chosen.ack_timeout_minutes)
        for step in result:
            if step.arm > 0:
                assert any(a + timeout <= step.due_at for a in valid_acks)
