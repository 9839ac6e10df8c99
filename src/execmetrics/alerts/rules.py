"""What an alert rule is: a condition over one or more KPIs, its severity, its timing (pending
and keep-firing periods), how NoData and Error count, its labels, and whom it notifies
(docs/alerts.md)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from execmetrics.alerts.conditions import Condition
from execmetrics.alerts.escalation import Recipient
from execmetrics.alerts.state import Timing, Treatment
from execmetrics.kpi import formula as expression
from execmetrics.notify.message import Severity

NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}$"
LABEL_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
# Labels the engine sets on every instance; a rule's own labels may not use them.
RESERVED_LABELS = ("kpi", "check")
MINUTE_US = 60_000_000
WEEK_MINUTES = 7 * 24 * 60


class AlertRule(BaseModel):
    """An alert rule as configured; a change to any field makes a new version of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: Annotated[str, Field(max_length=2000)] = ""
    kpi: Annotated[str | list[str], Field(description="the KPI, or KPIs, the rule watches")]
    severity: Severity = Severity.WARNING
    condition: Condition
    pending_minutes: Annotated[int, Field(ge=0, le=WEEK_MINUTES)] = 0
    keep_firing_minutes: Annotated[int, Field(ge=0, le=WEEK_MINUTES)] = 0
    nodata: Treatment = Treatment.KEEP_LAST
    error: Treatment = Treatment.FIRING
    labels: Annotated[dict[str, str], Field(max_length=20)] = {}
    notify: Annotated[list[Recipient], Field(max_length=50)] = []
    policy: Annotated[str | None, Field(pattern=NAME_PATTERN)] = None

    @field_validator("kpi")
    @classmethod
    def _kpi_names(cls, kpi: str | list[str]) -> str | list[str]:
        names = [kpi] if isinstance(kpi, str) else kpi
        if not names or len(names) > 500:
            raise ValueError("name between 1 and 500 KPIs")
        for name in names:
            if not re.fullmatch(expression.NAME_PATTERN, name) or len(name) > 64:
                raise ValueError(f"{name!r} is not a KPI name")
        if len(set(names)) < len(names):
            raise ValueError("a KPI is named twice")
        return kpi

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            if not re.fullmatch(LABEL_PATTERN, key):
                raise ValueError(f"label {key!r}: expected lower-case letters, digits and _")
            if key in RESERVED_LABELS:
                raise ValueError(f"label {key!r} is set by the engine")
            if not 1 <= len(value) <= 200:
                raise ValueError(f"label {key!r}: a value of 1 to 200 characters")
        return labels

    @model_validator(mode="after")
    def _someone_to_tell(self) -> Self:
        if len(set(self.notify)) < len(self.notify):
            raise ValueError("notify: a recipient is named twice")
        return self

    @property
    def kpis(self) -> list[str]:
        return [self.kpi] if isinstance(self.kpi, str) else list(self.kpi)

    @property
    def timing(self) -> Timing:
        return Timing(
            pending_us=self.pending_minutes * MINUTE_US,
            keep_firing_us=self.keep_firing_minutes * MINUTE_US,
            nodata=self.nodata,
            error=self.error,
        )


def check_rule_references(
    rules: Iterable[AlertRule],
    kpis: Iterable[str],
    policies: Iterable[str],
    channels: Iterable[str],
) -> list[str]:
    """Problems with what rules refer to: unknown KPIs, policies and channels."""
    known_kpis, known_policies, known_channels = set(kpis), set(policies), set(channels)
    problems = []
    for rule in rules:
        for name in rule.kpis:
            if name not in known_kpis:
                problems.append(f"rules.{rule.name}.kpi: unknown KPI {name!r}")
        if rule.policy is not None and rule.policy not in known_policies:
            problems.append(f"rules.{rule.name}.policy: unknown escalation policy {rule.policy!r}")
        for recipient in rule.notify:
            kind, _, target = recipient.partition(":")
            if kind == "channel" and target not in known_channels:
                problems.append(f"rules.{rule.name}.notify: unknown channel {target!r}")
    return problems
