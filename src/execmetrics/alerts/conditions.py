"""The conditions an alert rule watches a KPI for, and how each is judged.

Four kinds, told apart by `kind`: a threshold (with a recovery level, so a value hovering at
the line does not fire and clear over and over), a trend (a change against an earlier
period), an anomaly (a value far from what the anomaly detector expects from the KPI's own
history) and a target (a period on course to miss its goal, or one that missed it).

KPI values are exact fractions, and threshold, trend and target conditions are judged
exactly: their numbers are written as whole numbers or decimal strings, never as
floating-point numbers, which cannot hold most decimals. Only the anomaly detector is
statistical. Each check returns an `Outcome` whose summary is one plain sentence for the
notification; the caller passes `describe` to write KPI values in the KPI's unit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from execmetrics.analytics.anomaly import (
    DEFAULT_SENSITIVITY,
    DETECTORS,
    MIN_HISTORY,
    Latest,
    judge_latest,
)
from execmetrics.kpi.definitions import Direction
from execmetrics.kpi.targets import ExactNumber
from execmetrics.metrics.periods import (
    PERIODS_PER_YEAR,
    PeriodError,
    label,
    parse_label,
    period_start,
    shift_periods,
)

Describe = Callable[[Fraction], str]
Pace = Literal["flow", "stock", "rate"]

# Before a tenth of the period has gone, a projection multiplies a few days' figures by ten
# or more: too early to judge pacing.
MIN_ELAPSED = Fraction(1, 10)
# An anomaly's history reaches back five years of periods, and at least 24 periods (so a
# yearly KPI, which has no season, still has enough).
HISTORY_YEARS = 5
MIN_HISTORY_PERIODS = 24
# The most history an anomaly rule may ask for: five years of weeks.
MAX_MIN_HISTORY = HISTORY_YEARS * PERIODS_PER_YEAR["week"]


@dataclass(frozen=True)
class Outcome:
    """The verdict of one check.

    `holds` is None when there is nothing to decide on (no value, no base, no goal, too
    little history). `observed` is the figure judged (the value, the change, the score or the
    projection) and `bound` what it was judged against.
    """

    holds: bool | None
    observed: Fraction | float | None
    bound: Fraction | float | None
    summary: str


class _Condition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ThresholdCondition(_Condition):
    """The value is above (or below) a line; once firing, it holds until the value is back
    at or past the recovery level."""

    kind: Literal["threshold"] = "threshold"
    above: ExactNumber | None = None
    below: ExactNumber | None = None
    recover_below: ExactNumber | None = None
    recover_above: ExactNumber | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.above is None) == (self.below is None):
            raise ValueError("give either above or below, not both or neither")
        if self.above is not None:
            if self.recover_above is not None:
                raise ValueError("recover_above goes with below; with above, give recover_below")
            if self.recover_below is not None and self.recover_below > self.above:
                raise ValueError("recover_below must not be more than above")
        if self.below is not None:
            if self.recover_below is not None:
                raise ValueError("recover_below goes with above; with below, give recover_above")
            if self.recover_above is not None and self.recover_above < self.below:
                raise ValueError("recover_above must not be less than below")
        return self

    @property
    def recovery(self) -> Fraction:
        """Where a firing alert clears: the recovery level, by default the firing line."""
        if self.above is not None:
            return self.above if self.recover_below is None else self.recover_below
        assert self.below is not None
        return self.below if self.recover_above is None else self.recover_above


class TrendCondition(_Condition):
    """The value rose (or fell) by at least an amount or a percentage against the period
    `periods` back, or against the same period `periods` years back."""

    kind: Literal["trend"] = "trend"
    compare_to: Literal["previous_period", "same_period_last_year"] = "previous_period"
    periods: int = Field(default=1, ge=1, le=24, strict=True)
    change: Literal["percent", "absolute"] = "percent"
    rises_by: ExactNumber | None = None
    falls_by: ExactNumber | None = None

    @model_validator(mode="after")
    def _one_positive_change(self) -> Self:
        if (self.rises_by is None) == (self.falls_by is None):
            raise ValueError("give either rises_by or falls_by, not both or neither")
        if self.rises_by is not None and self.rises_by <= 0:
            raise ValueError("rises_by must be more than zero")
        if self.falls_by is not None and self.falls_by <= 0:
            raise ValueError("falls_by must be more than zero")
        return self

    @property
    def signed_bound(self) -> Fraction:
        """The change at which the condition holds: +rises_by, or -falls_by."""
        if self.rises_by is not None:
            return self.rises_by
        assert self.falls_by is not None
        return -self.falls_by

    def periods_back(self, interval: str) -> int:
        """How many periods of `interval` before the judged one the base period is."""
        if self.compare_to == "previous_period":
            return self.periods
        return periods_per_year(interval) * self.periods


class AnomalyCondition(_Condition):
    """The value is further from the detector's expected value than `sensitivity` allows
    (docs/anomalies.md); without a sensitivity, the detector's default."""

    kind: Literal["anomaly"] = "anomaly"
    sensitivity: float | None = Field(default=None, gt=0, allow_inf_nan=False, strict=True)
    detector: str = "robust_seasonal"
    direction: Literal["both", "up", "down"] = "both"
    min_history: int = Field(default=MIN_HISTORY, ge=MIN_HISTORY, le=MAX_MIN_HISTORY, strict=True)

    @field_validator("detector")
    @classmethod
    def _known_detector(cls, name: str) -> str:
        if name not in DETECTORS:
            raise ValueError(f"unknown detector {name!r}: expected one of {', '.join(DETECTORS)}")
        return name

    @property
    def threshold(self) -> float:
        """The sensitivity the rule judges by: its own, else the detector's default."""
        return DEFAULT_SENSITIVITY[self.detector] if self.sensitivity is None else self.sensitivity


class TargetCondition(_Condition):
    """The period is on course to miss its goal by more than the margin (pacing), or a
    completed period missed it (missed)."""

    kind: Literal["target"] = "target"
    margin_percent: ExactNumber = Fraction(0)
    check: Literal["pacing", "missed", "both"] = "both"

    @field_validator("margin_percent")
    @classmethod
    def _not_negative(cls, margin: Fraction) -> Fraction:
        if margin < 0:
            raise ValueError("margin_percent must not be negative")
        return margin

    @property
    def checks_pacing(self) -> bool:
        return self.check in ("pacing", "both")

    @property
    def checks_missed(self) -> bool:
        return self.check in ("missed", "both")


Condition = Annotated[
    ThresholdCondition | TrendCondition | AnomalyCondition | TargetCondition,
    Field(discriminator="kind"),
]


# Threshold


def check_threshold(
    cond: ThresholdCondition, value: Fraction | None, firing: bool, describe: Describe
) -> Outcome:
    """Whether the value is past the line; while `firing`, whether it has not yet come back
    to the recovery level (hysteresis)."""
    line = cond.recovery if firing else (cond.above if cond.above is not None else cond.below)
    assert line is not None
    if value is None:
        return Outcome(None, None, line, "There is no value to judge.")
    rising = cond.above is not None
    side = "above" if rising else "below"
    past = value > line if rising else value < line
    if not firing:
        verdict = "is" if past else "is not"
        summary = f"{describe(value)} {verdict} {side} the threshold of {describe(line)}."
    elif past:
        summary = f"{describe(value)} is still {side} {describe(line)}, where the alert clears."
    else:
        summary = f"{describe(value)} is back to {describe(line)} or beyond: the alert clears."
    return Outcome(past, value, line, summary)


# Trend


def check_trend(
    cond: TrendCondition,
    series: Mapping[str, Fraction | None],
    current: str,
    interval: str,
    describe: Describe,
) -> Outcome:
    """Whether the change from the base period to `current` is at least the rise, or at least
    the fall, the condition names. A percentage change is relative to the base's size, so
    going from -100 to -50 is a rise of 50%."""
    base = label_back(current, interval, cond.periods_back(interval))
    bound = cond.signed_bound
    now, then = series.get(current), series.get(base)
    if now is None or then is None:
        missing = current if now is None else base
        return Outcome(None, None, bound, f"There is no value for {missing} to compare.")
    if cond.change == "percent" and then == 0:
        reason = f"The change since {base} has no percentage: the value then was zero."
        return Outcome(None, None, bound, reason)
    change = (now - then) / abs(then) * 100 if cond.change == "percent" else now - then
    holds = change >= bound if bound > 0 else change <= bound
    return Outcome(holds, change, bound, _trend_summary(cond, change, then, now, base, describe))


def _trend_summary(
    cond: TrendCondition,
    change: Fraction,
    then: Fraction,
    now: Fraction,
    base: str,
    describe: Describe,
) -> str:
    def amount(size: Fraction) -> str:
        return f"{_decimal_text(size)}%" if cond.change == "percent" else describe(size)

    movement = "Up" if change > 0 else "Down" if change < 0 else "Unchanged"
    by = f" {amount(abs(change))}" if change else ""
    watched = "rise" if cond.rises_by is not None else "fall"
    return (
        f"{movement}{by} from {describe(then)} in {base} to {describe(now)}; "
        f"the rule watches for a {watched} of {amount(abs(cond.signed_bound))} or more."
    )


# Anomaly


def check_anomaly(
    cond: AnomalyCondition,
    series: Mapping[str, Fraction | None],
    current: str,
    interval: str,
    describe: Describe,
) -> Outcome:
    """Whether the value of `current` is further from the detector's expected value than the
    sensitivity allows, in the chosen direction.

    The value is judged from the history as the detector judges a series' latest point, and
    its score and band decide.
    The history is the unbroken run of values just before `current`, at most five years (and
    at least 24 periods) long: it stops at the first period without a value, since the
    detector needs evenly spaced values and a season aligned with the calendar.
    """
    value = series.get(current)
    if value is None:
        return Outcome(None, None, None, f"There is no value for {current} to judge.")
    history = history_before(series, current, interval, _lookback(cond, interval))
    if len(history) < cond.min_history:
        reason = (
            f"Too little history to judge: {len(history)} periods with values in a row "
            f"before {current}, and at least {cond.min_history} are needed."
        )
        return Outcome(None, None, None, reason)
    judged = [float(past) for past in history] + [float(value)]
    found = judge_latest(judged, periods_per_year(interval), cond.detector, cond.threshold)
    score = found.score
    if not math.isfinite(score):
        reason = f"The {cond.detector} detector cannot judge {current} from this history."
        return Outcome(None, None, None, reason)
    bound = -cond.threshold if score < 0 else cond.threshold
    return Outcome(_beyond(cond, score), score, bound, _anomaly_summary(value, found, describe))


def _lookback(cond: AnomalyCondition, interval: str) -> int:
    return max(HISTORY_YEARS * periods_per_year(interval), MIN_HISTORY_PERIODS, cond.min_history)


def _beyond(cond: AnomalyCondition, score: float) -> bool:
    if cond.direction == "up":
        return score > cond.threshold
    if cond.direction == "down":
        return score < -cond.threshold
    return abs(score) > cond.threshold


def _anomaly_summary(value: Fraction, found: Latest, describe: Describe) -> str:
    usual = (
        f"about {describe(Fraction(found.expected))} was expected, "
        f"{describe(Fraction(found.lower))} to {describe(Fraction(found.upper))} is usual"
    )
    if found.lower <= value <= found.upper:
        return f"{describe(value)} is within the usual range: {usual}."
    side = "high" if value > found.upper else "low"
    return f"{describe(value)} is unusually {side}: {usual} (score {found.score:.1f})."


# Targets


def project_period_end(
    value: Fraction, opening: Fraction | None, pace: Pace, elapsed: Fraction
) -> Fraction:
    """Where the KPI will be at the period's end if it keeps its pace so far.

    flow (it accumulates over the period, such as new MRR this quarter): value / elapsed.
    stock (a level, such as MRR): opening + (value - opening) / elapsed, where opening is the
    value at the period's start. rate (a ratio that does not accumulate, such as churn
    rate): the value itself. `elapsed` is the fraction of the period gone, 0 < elapsed <= 1.
    """
    if not 0 < elapsed <= 1:
        raise ValueError(f"elapsed must be more than 0 and at most 1, got {elapsed}")
    if pace == "flow":
        return value / elapsed
    if pace == "stock":
        if opening is None:
            raise ValueError("a stock's projection needs its value at the period's start")
        return opening + (value - opening) / elapsed
    return value


def check_pacing(
    cond: TargetCondition,
    value: Fraction | None,
    opening: Fraction | None,
    goal: Fraction | None,
    direction: Direction,
    pace: Pace,
    elapsed: Fraction,
    describe: Describe,
) -> Outcome:
    """Whether the period is on course to miss its goal by more than the margin: for higher
    is better, projection < goal - |goal| x margin / 100; for lower is better, projection >
    goal + |goal| x margin / 100 (for a positive goal, goal x (1 -+ margin / 100)).

    None when there is no goal, no value, no opening value of a stock, or when less than
    `MIN_ELAPSED` of the period has gone. `cond.check` says whether to call this at all.
    """
    if not 0 < elapsed <= 1:
        raise ValueError(f"elapsed must be more than 0 and at most 1, got {elapsed}")
    if goal is None:
        return Outcome(None, None, None, "There is no target for this period.")
    if value is None:
        return Outcome(None, None, goal, "There is no value to judge.")
    if pace == "stock" and opening is None:
        return Outcome(None, None, goal, "There is no value at the period's start to project.")
    if elapsed < MIN_ELAPSED:
        reason = (
            f"Too early to judge: {_decimal_text(elapsed * 100)}% of the period has gone, "
            f"and pacing is judged from {_decimal_text(MIN_ELAPSED * 100)}%."
        )
        return Outcome(None, None, goal, reason)
    projection = project_period_end(value, opening, pace, elapsed)
    higher = direction == Direction.HIGHER_IS_BETTER
    limit = pacing_limit(goal, cond.margin_percent, higher)
    holds = projection < limit if higher else projection > limit
    summary = _pacing_summary(projection, goal, cond.margin_percent, higher, holds, describe)
    return Outcome(holds, projection, limit, summary)


def pacing_limit(goal: Fraction, margin_percent: Fraction, higher_is_better: bool) -> Fraction:
    """The projection beyond which pacing holds: the goal moved by the margin towards the
    worse side, a share of the goal's size (so a negative goal loosens the same way)."""
    allowance = abs(goal) * margin_percent / 100
    return goal - allowance if higher_is_better else goal + allowance


def _pacing_summary(
    projection: Fraction,
    goal: Fraction,
    margin_percent: Fraction,
    higher_is_better: bool,
    holds: bool,
    describe: Describe,
) -> str:
    if not holds:
        verdict = f"against a target of {describe(goal)}"
    else:
        side = "short of" if higher_is_better else "over"
        margin = f" by more than the {_decimal_text(margin_percent)}% margin"
        verdict = f"{side} the target of {describe(goal)}{margin if margin_percent else ''}"
    return f"On course for {describe(projection)} by the period's end, {verdict}."


def check_missed(
    value_at_end: Fraction | None, goal: Fraction | None, direction: Direction, describe: Describe
) -> Outcome:
    """Whether a completed period's final value missed its goal (below it when higher is
    better, above it when lower is better; reaching it exactly meets it).

    The margin does not apply: a missed target is a fact about a finished period, while the
    margin allows for the uncertainty of a forecast, which pacing is.
    """
    if goal is None:
        return Outcome(None, None, None, "There is no target for this period.")
    if value_at_end is None:
        return Outcome(None, None, goal, "There is no value for the period to judge.")
    higher = direction == Direction.HIGHER_IS_BETTER
    missed = value_at_end < goal if higher else value_at_end > goal
    if missed:
        verdict = f"{'short of' if higher else 'over'} the target of {describe(goal)}"
    else:
        verdict = f"meeting the target of {describe(goal)}"
    return Outcome(
        missed, value_at_end, goal, f"The period ended at {describe(value_at_end)}, {verdict}."
    )


# Periods


def periods_per_year(interval: str) -> int:
    """How many periods of `interval` make a year, the season of seasonal KPIs."""
    if interval not in PERIODS_PER_YEAR:
        raise PeriodError("interval", f"expected one of {', '.join(PERIODS_PER_YEAR)}")
    return PERIODS_PER_YEAR[interval]


def current_start(current: str, interval: str) -> date:
    """The first day of the period labelled `current`; PeriodError if it is no label of
    `interval`."""
    periods_per_year(interval)
    start = period_start(parse_label(current, "period"), interval)
    if label(start, interval) != current.strip():
        raise PeriodError("period", f"{current!r} is not a {interval} label")
    return start


def label_back(current: str, interval: str, count: int) -> str:
    """The label of the period `count` periods before `current`."""
    return label(shift_periods(current_start(current, interval), interval, count), interval)


def history_before(
    series: Mapping[str, Fraction | None], current: str, interval: str, limit: int
) -> list[Fraction]:
    """The values of the periods just before `current`, oldest first: at most `limit`, and
    none before the latest period without a value."""
    start = current_start(current, interval)
    values: list[Fraction] = []
    for back in range(1, limit + 1):
        value = series.get(label(shift_periods(start, interval, back), interval))
        if value is None:
            break
        values.append(value)
    return values[::-1]


def _decimal_text(number: Fraction, places: int = 2) -> str:
    """A number rounded to at most `places` decimals, without trailing zeros."""
    scaled = round(abs(number) * 10**places)
    whole, part = divmod(scaled, 10**places)
    digits = f"{part:0{places}d}".rstrip("0")
    sign = "-" if number < 0 and scaled else ""
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"
