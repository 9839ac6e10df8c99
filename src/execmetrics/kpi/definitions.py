"""What a KPI is: a built-in metric (overall or for one breakdown group), a data quality
score, or a formula over other KPIs, with its category, unit, direction, evaluation schedule
and period (docs/kpis.md).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from execmetrics.analytics.quality import DATASET_DIMENSIONS
from execmetrics.kpi import formula as expression
from execmetrics.kpi.targets import Target
from execmetrics.metrics.queries import CUSTOMER_BREAKDOWNS
from execmetrics.metrics.service import FIELDS

# Every metrics field a KPI can follow: the figures of a period, not its labels.
METRICS = tuple(name for name in FIELDS if name not in ("period", "group"))
# The data quality scores a KPI can follow (docs/quality.md), each from 0 to 100, by the
# dataset and dimension they score: None for the overall score or a dataset's own.
QUALITY_METRICS: dict[str, tuple[str | None, str | None]] = {
    "quality_overall": (None, None),
    **{f"quality_{dataset}": (dataset, None) for dataset in DATASET_DIMENSIONS},
    **{
        f"quality_{dataset}_{dimension}": (dataset, dimension)
        for dataset, dimensions in DATASET_DIMENSIONS.items()
        for dimension in dimensions
    },
}
DEFAULT_SCHEDULE = "0 * * * *"  # hourly, on the hour


def check_cron(schedule: str) -> str:
    """A five-field cron expression, or ValueError saying what is wrong with it."""
    try:
        CronSim(schedule, datetime(2000, 1, 1))
    except CronSimError as error:
        raise ValueError(f"not a cron expression ({error})") from None
    return schedule


class Category(StrEnum):
    FINANCIAL = "financial"
    OPERATIONAL = "operational"
    MARKETING = "marketing"
    CUSTOMER = "customer"
    QUALITY = "quality"


class Unit(StrEnum):
    MONEY = "money"
    COUNT = "count"
    RATIO = "ratio"
    PERCENT = "percent"
    DAYS = "days"
    SCORE = "score"  # from 0 to 100, as the data quality scores are


class Direction(StrEnum):
    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


class Period(StrEnum):
    MONTH_TO_DATE = "month_to_date"
    LAST_COMPLETE_MONTH = "last_complete_month"
    QUARTER_TO_DATE = "quarter_to_date"
    YEAR_TO_DATE = "year_to_date"


class Group(BaseModel):
    """One group of a customer breakdown, such as segment SMB."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    by: str
    value: str = Field(min_length=1, max_length=200)

    @field_validator("by")
    @classmethod
    def _known_breakdown(cls, by: str) -> str:
        if by not in CUSTOMER_BREAKDOWNS and not (by.startswith("attr.") and len(by) > 5):
            raise ValueError(f"expected one of {', '.join(CUSTOMER_BREAKDOWNS)} or attr.NAME")
        return by


class KpiDefinition(BaseModel):
    """A KPI as configured; a change to any field makes a new version of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=rf"^{expression.NAME_PATTERN}$", max_length=64)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=2000)] = ""
    metric: str | None = None
    group: Group | None = None
    formula: Annotated[str | None, Field(max_length=expression.MAX_LENGTH)] = None
    category: Category
    unit: Unit
    direction: Direction
    schedule: str = DEFAULT_SCHEDULE
    period: Period = Period.LAST_COMPLETE_MONTH
    targets: Annotated[list[Target], Field(max_length=20)] = []

    @field_validator("name")
    @classmethod
    def _not_a_function(cls, name: str) -> str:
        if name in expression.FUNCTIONS:
            raise ValueError(f"{name!r} is a formula function")
        return name

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str | None) -> str | None:
        if metric is not None and metric not in METRICS and metric not in QUALITY_METRICS:
            raise ValueError(
                f"unknown metric {metric!r} (docs/metrics.md lists them, and docs/kpis.md the "
                "data quality scores)"
            )
        return metric

    @field_validator("formula")
    @classmethod
    def _parsable_formula(cls, text: str | None) -> str | None:
        if text is not None:
            try:
                expression.parse(text)
            except expression.FormulaError as error:
                raise ValueError(str(error)) from None
        return text

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, schedule: str) -> str:
        return check_cron(schedule)

    @model_validator(mode="after")
    def _metric_or_formula(self) -> Self:
        if (self.metric is None) == (self.formula is None):
            raise ValueError("give either metric or formula, not both or neither")
        if self.group is not None and self.metric is None:
            raise ValueError("group applies to a metric, not to a formula")
        if self.metric in QUALITY_METRICS:
            if self.group is not None:
                raise ValueError("group applies to a revenue metric, not to a quality score")
            # A score is measured at the moment of evaluation, after a complete month ended.
            if self.period is Period.LAST_COMPLETE_MONTH:
                raise ValueError(
                    "a quality score is measured now: give period month_to_date, "
                    "quarter_to_date or year_to_date"
                )
        return self

    def reads(self) -> set[str]:
        """The KPIs this one's formula reads (none for a metric)."""
        return set() if self.formula is None else expression.names(expression.parse(self.formula))


def check_references(definitions: list[KpiDefinition]) -> list[str]:
    """The names in an order where each formula follows what it reads; FormulaError names a
    KPI that reads an unknown KPI or itself, directly or through others."""
    names = [d.name for d in definitions]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise expression.FormulaError(f"{repeated[0]}: defined more than once")
    formulas = {d.name: d.reads() for d in definitions if d.formula is not None}
    metrics = {d.name for d in definitions if d.formula is None}
    order = expression.evaluation_order(formulas, metrics)
    return sorted(metrics) + order
