"""The life of one alert instance: Normal, Pending, Firing, Recovering, NoData and Error.

A condition must hold for the rule's pending period before the alert fires; once it clears,
the alert keeps firing for the keep-firing period, so that a value hovering at the edge does
not flap. When a rule has no data to judge, or its evaluation fails, the instance shows
NoData or Error, and the rule says how to treat that: as firing, as normal, or by keeping
the last state (docs/alerts.md).

`advance` is a pure function of the instance, the outcome and the time, so evaluating the
same rule on the same data at the same time twice gives the same instance and no event.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class State(StrEnum):
    NORMAL = "normal"
    PENDING = "pending"
    FIRING = "firing"
    RECOVERING = "recovering"
    NODATA = "nodata"
    ERROR = "error"


class Observation(StrEnum):
    """What one evaluation found."""

    HOLDS = "holds"  # the condition is true
    CLEAR = "clear"  # the condition is false
    NODATA = "nodata"  # nothing to judge: no value, or too little history
    ERROR = "error"  # the evaluation failed


class Treatment(StrEnum):
    """How NoData or Error counts."""

    FIRING = "firing"
    NORMAL = "normal"
    KEEP_LAST = "keep_last"


class Event(StrEnum):
    """A change that is notified."""

    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Timing:
    pending_us: int = 0  # how long the condition must hold before firing
    keep_firing_us: int = 0  # how long an alert keeps firing after its condition clears
    nodata: Treatment = Treatment.FIRING
    error: Treatment = Treatment.KEEP_LAST


@dataclass(frozen=True)
class Instance:
    """Where one alert instance stands. `phase` is the condition's own progress (Normal,
    Pending, Firing or Recovering); `health` is NoData or Error while the rule cannot judge,
    and is then the state shown."""

    phase: State = State.NORMAL
    health: State | None = None
    since: int = 0  # when `phase` was entered, microseconds since the epoch
    firing_since: int | None = None  # when the current firing episode began
    episode: int = 0  # how many times the instance has fired

    @property
    def state(self) -> State:
        return self.health or self.phase

    @property
    def alerting(self) -> bool:
        return self.phase in (State.FIRING, State.RECOVERING)


def advance(
    instance: Instance, observation: Observation, now: int, timing: Timing
) -> tuple[Instance, Event | None]:
    """The instance after one evaluation at `now`, and the event to notify, if any."""
    health = None
    holds: bool | None = observation is Observation.HOLDS
    if observation in (Observation.NODATA, Observation.ERROR):
        health = State.NODATA if observation is Observation.NODATA else State.ERROR
        treatment = timing.nodata if observation is Observation.NODATA else timing.error
        holds = {Treatment.FIRING: True, Treatment.NORMAL: False}.get(treatment)
    if holds is None:  # keep the last state, with its timers
        return replace(instance, health=health), None
    after, event = _step(instance, holds, now, timing)
    return replace(after, health=health), event


def _step(
    instance: Instance, holds: bool, now: int, timing: Timing
) -> tuple[Instance, Event | None]:
    phase = instance.phase
    if holds:
        if phase is State.NORMAL:
            pending = replace(instance, phase=State.PENDING, since=now)
            return _fire_when_due(pending, now, timing)
        if phase is State.PENDING:
            return _fire_when_due(instance, now, timing)
        if phase is State.RECOVERING:
            return replace(instance, phase=State.FIRING, since=now), None
        return instance, None
    if phase is State.PENDING:
        return replace(instance, phase=State.NORMAL, since=now), None
    if phase is State.FIRING:
        if timing.keep_firing_us > 0:
            return replace(instance, phase=State.RECOVERING, since=now), None
        return _resolve(instance, now)
    if phase is State.RECOVERING and now - instance.since >= timing.keep_firing_us:
        return _resolve(instance, now)
    return instance, None


def _fire_when_due(instance: Instance, now: int, timing: Timing) -> tuple[Instance, Event | None]:
    if now - instance.since < timing.pending_us:
        return instance, None
    fired = replace(
        instance,
        phase=State.FIRING,
        since=now,
        firing_since=now,
        episode=instance.episode + 1,
    )
    return fired, Event.FIRING


def _resolve(instance: Instance, now: int) -> tuple[Instance, Event]:
    return replace(instance, phase=State.NORMAL, since=now, firing_since=None), Event.RESOLVED


def next_deadline(instance: Instance, timing: Timing) -> int | None:
    """When the instance changes by time alone (a pending period or keep-firing period
    running out), so that an evaluation at the same data version is still worth making."""
    if instance.health is not None:
        return None
    if instance.phase is State.PENDING:
        return instance.since + timing.pending_us
    if instance.phase is State.RECOVERING:
        return instance.since + timing.keep_firing_us
    return None
