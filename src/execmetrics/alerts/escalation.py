"""Escalation policies: who is told about a firing alert, and when, until someone acts.

The schedule is a pure function of the policy, the moment the alert started firing, its
acknowledgements and its resolution, so the engine can recompute it on every pass and queue
each step once, by its key.

Timing, within one arm (a run of the policy from level 0):

- Level 0 is due `levels[0].delay_minutes` after the arm starts; each later level is due its
  own `delay_minutes` after the level before it was due.
- With `repeat` = N the levels run N more rounds after the first. A round's level 0 is due
  `levels[0].delay_minutes` after the previous round's last level, so every round takes the
  sum of the delays and round r's level i is due at arm start + r * sum + delays[0..i].
- A step is due only while the alert fires: before it resolves (due_at < resolved_at) and
  not after an acknowledgement of its arm (due_at <= the acknowledgement).

Arms: the first starts when the alert starts firing. An acknowledgement stops every pending
step of the current arm, for every recipient. With `ack_timeout_minutes` = T, an alert still
unresolved T minutes after the acknowledgement starts a new arm then, from level 0. Further
acknowledgements before that are no-ops, as are acknowledgements before the alert fired.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
MAX_DELAY_MINUTES = 7 * 24 * 60  # a week
MAX_ACK_TIMEOUT_MINUTES = 30 * 24 * 60
MAX_RECIPIENTS = 50
MAX_LEVELS = 20
MAX_REPEAT = 9
_NAME = re.compile(NAME_PATTERN)
_EMAIL = re.compile(r"[^@\s:]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}")


def _recipient(text: str) -> str:
    """A recipient as "user:<email>" (the email lowercased, as user accounts store it) or
    "channel:<name>"."""
    kind, _, target = text.partition(":")
    if kind == "user" and _EMAIL.fullmatch(target):
        return f"user:{target.lower()}"
    if kind == "channel" and _NAME.fullmatch(target):
        return text
    raise ValueError(f"expected user:<email> or channel:<name>, got {text!r}")


Recipient = Annotated[str, AfterValidator(_recipient)]


class EscalationLevel(BaseModel):
    """Who is told at one level, and how long after the previous level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delay_minutes: Annotated[int, Field(strict=True, ge=0, le=MAX_DELAY_MINUTES)]
    recipients: Annotated[list[Recipient], Field(min_length=1, max_length=MAX_RECIPIENTS)]

    @field_validator("recipients")
    @classmethod
    def _distinct_recipients(cls, recipients: list[str]) -> list[str]:
        repeated = sorted({r for r in recipients if recipients.count(r) > 1})
        if repeated:
            raise ValueError(f"recipient {repeated[0]!r} is listed more than once")
        return recipients


class EscalationPolicy(BaseModel):
    """A named escalation policy; a change to any field makes a new version of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    levels: Annotated[list[EscalationLevel], Field(min_length=1, max_length=MAX_LEVELS)]
    repeat: Annotated[int, Field(strict=True, ge=0, le=MAX_REPEAT)] = 0
    ack_timeout_minutes: Annotated[
        int | None, Field(strict=True, ge=1, le=MAX_ACK_TIMEOUT_MINUTES)
    ] = None

    @field_validator("repeat")
    @classmethod
    def _rounds_take_time(cls, repeat: int, info: ValidationInfo) -> int:
        levels: list[EscalationLevel] = info.data.get("levels", [])
        if repeat and levels and not any(level.delay_minutes for level in levels):
            raise ValueError("repeat needs a level with a delay, or every round fires at once")
        return repeat


@dataclass(frozen=True)
class EscalationStep:
    """One recipient to notify at one level of one round of one arm, due at `due_at`."""

    arm: int
    round: int
    level: int
    recipient: str
    due_at: datetime

    @property
    def key(self) -> str:
        """Identifies the step among all steps of one alert episode, for idempotency."""
        return f"arm{self.arm}.round{self.round}.level{self.level}.{self.recipient}"


@dataclass(frozen=True)
class Arm:
    """A run of the policy from level 0: when it started, and the acknowledgement that
    stopped it (None while it runs)."""

    started_at: datetime
    acknowledged_at: datetime | None


def arms(
    policy: EscalationPolicy,
    fired_at: datetime,
    acknowledgements: Sequence[datetime],
    resolved_at: datetime | None,
) -> list[Arm]:
    """The arms of one firing, in order, from its acknowledgements and the ack timeout."""
    timeout = policy.ack_timeout_minutes
    result: list[Arm] = []
    started_at = fired_at
    for acknowledged_at in sorted(a for a in acknowledgements if a >= fired_at):
        if acknowledged_at < started_at:
            continue  # acknowledged already; the next arm has not started
        result.append(Arm(started_at, acknowledged_at))
        if timeout is None:
            return result
        started_at = acknowledged_at + timedelta(minutes=timeout)
        if resolved_at is not None and started_at >= resolved_at:
            return result
    result.append(Arm(started_at, None))
    return result


def level_offsets(policy: EscalationPolicy) -> Iterator[tuple[int, int, timedelta]]:
    """(round, level, time from the arm's start) for each level, in the order they fire."""
    elapsed = timedelta()
    for round_number in range(policy.repeat + 1):
        for index, level in enumerate(policy.levels):
            elapsed += timedelta(minutes=level.delay_minutes)
            yield round_number, index, elapsed


def is_due(due_at: datetime, arm: Arm, resolved_at: datetime | None, until: datetime) -> bool:
    """Whether a step of `arm` falls inside the window this call reports on and inside the
    time the alert fired unacknowledged."""
    return (
        due_at <= until
        and (arm.acknowledged_at is None or due_at <= arm.acknowledged_at)
        and (resolved_at is None or due_at < resolved_at)
    )


def _utc(name: str, moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} {moment.isoformat()} has no time zone")
    return moment.astimezone(UTC)


def escalation_steps(
    policy: EscalationPolicy,
    *,
    fired_at: datetime,
    acknowledgements: Sequence[datetime],
    resolved_at: datetime | None,
    until: datetime,
) -> list[EscalationStep]:
    """Every step due at or before `until`, in firing order: by due time, then arm, round,
    level and recipient (a round's level 0 may fall due with the previous round's last).

    The schedule follows the policy object given, so an alert keeps the policy version its
    firing started with when the caller passes that version (the engine stores it on the
    alert instance). Growing `until` only appends steps: an earlier call's steps come back
    unchanged, so queuing steps by key sends each exactly once.
    """
    fired = _utc("fired_at", fired_at)
    acks = [_utc("acknowledgement", moment) for moment in acknowledgements]
    resolved = None if resolved_at is None else _utc("resolved_at", resolved_at)
    horizon = _utc("until", until)
    steps: list[EscalationStep] = []
    for arm_number, arm in enumerate(arms(policy, fired, acks, resolved)):
        for round_number, index, offset in level_offsets(policy):
            due_at = arm.started_at + offset
            if not is_due(due_at, arm, resolved, horizon):
                break  # due times only grow within an arm
            steps.extend(
                EscalationStep(arm_number, round_number, index, recipient, due_at)
                for recipient in policy.levels[index].recipients
            )
    return sorted(steps, key=lambda s: (s.due_at, s.arm, s.round, s.level, s.recipient))
