"""Targets of a KPI: a threshold it should always meet, and goals for its periods.

Target values are exact: written as decimal strings (`"0.95"`) or whole numbers, never as
floating-point numbers, which cannot hold most decimals exactly. A money KPI's target is in
minor units of the reporting currency, like every amount in execmetrics.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

_PERIOD_LABEL = re.compile(r"^[0-9]{4}(-[0-9]{2}|-Q[1-4])?$")


def _exact(value: object) -> Fraction:
    if isinstance(value, bool):
        raise ValueError(f"expected a decimal number, got {value!r}")
    if isinstance(value, float):
        raise ValueError(
            f"write the number as a string, such as '{value}': a floating-point number cannot "
            "hold most decimals exactly"
        )
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, Fraction):
        return value
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"expected a decimal number, got {value!r}") from None
        if number.is_finite():
            return Fraction(number)
    raise ValueError(f"expected a decimal number, got {value!r}")


def _text(value: Fraction) -> str:
    """The exact decimal text of a target (targets are written as decimals, so it ends)."""
    if value.denominator == 1:
        return str(value.numerator)
    digits = 0
    while (value * 10**digits).denominator != 1:
        digits += 1
    return f"{Decimal(value.numerator) / Decimal(value.denominator):.{digits}f}"


ExactNumber = Annotated[Fraction, BeforeValidator(_exact), PlainSerializer(_text, return_type=str)]


class Threshold(BaseModel):
    """The KPI should always be at least, or at most, this value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["threshold"]
    at_least: ExactNumber | None = None
    at_most: ExactNumber | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Threshold:
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError("give either at_least or at_most")
        return self


class Recurring(BaseModel):
    """The value the KPI should reach by the end of each month, quarter or year."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["recurring"]
    every: Literal["month", "quarter", "year"]
    value: ExactNumber


class Series(BaseModel):
    """A value for each of some periods, by label: 2025-01, 2025-Q1 or 2025."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["series"]
    values: dict[str, ExactNumber] = Field(min_length=1, max_length=600)

    @model_validator(mode="after")
    def _labels(self) -> Series:
        for label in self.values:
            if not _PERIOD_LABEL.fullmatch(label):
                raise ValueError(f"{label!r} is not a period: YYYY-MM, YYYY-Qn or YYYY")
        return self


Target = Annotated[Threshold | Recurring | Series, Field(discriminator="kind")]


def period_interval(label: str) -> str:
    if "-Q" in label:
        return "quarter"
    return "month" if "-" in label else "year"


def goal_for(targets: list[Threshold | Recurring | Series], period: str) -> Fraction | None:
    """The value the KPI should reach in the period with this label, if a target names one: a
    series' value for that very period, else a recurring target of the period's kind."""
    for target in targets:
        if isinstance(target, Series) and period in target.values:
            return target.values[period]
    for target in targets:
        if isinstance(target, Recurring) and target.every == period_interval(period):
            return target.value
    return None


def met(
    targets: list[Threshold | Recurring | Series],
    period: str,
    value: Fraction | None,
    higher_is_better: bool,
) -> bool | None:
    """Whether a value meets every target that applies to its period; None when none applies
    or the KPI has no value."""
    if value is None:
        return None
    verdicts: list[bool] = []
    for target in targets:
        if isinstance(target, Threshold):
            if target.at_least is not None:
                verdicts.append(value >= target.at_least)
            if target.at_most is not None:
                verdicts.append(value <= target.at_most)
    goal = goal_for(targets, period)
    if goal is not None:
        verdicts.append(value >= goal if higher_is_better else value <= goal)
    return all(verdicts) if verdicts else None
