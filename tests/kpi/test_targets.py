"""KPI targets: exact values, which target applies to a period, and whether it is met."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from pydantic import ValidationError
from tests.builders import kpi_definition

from execmetrics.as_code import Declared, export_document, parse_declared
from execmetrics.kpi.definitions import KpiDefinition
from execmetrics.kpi.targets import goal_for, met

F = Fraction


def kpi(targets: list[dict[str, Any]], direction: str = "higher_is_better") -> KpiDefinition:
    return kpi_definition(targets=targets, direction=direction)


def test_targets_are_exact_and_survive_storage_and_export() -> None:
    definition = kpi(
        [
            {"kind": "threshold", "at_least": "0.95"},
            {"kind": "recurring", "every": "quarter", "value": 250_000_000},
            {"kind": "series", "values": {"2025-01": "1000.25", "2025-02": 1100}},
        ]
    )
    threshold, recurring, series = definition.targets
    assert threshold.at_least == F(19, 20)  # type: ignore[union-attr]
    assert recurring.value == 250_000_000  # type: ignore[union-attr]
    assert series.values == {"2025-01": F(4001, 4), "2025-02": 1100}  # type: ignore[union-attr]
    assert KpiDefinition.model_validate(definition.model_dump(mode="json")) == definition
    assert (
        parse_declared(export_document(Declared(kpis=[definition])), "export").kpis[0] == definition
    )


def test_which_goal_applies_to_a_period() -> None:
    targets = kpi(
        [
            {"kind": "recurring", "every": "quarter", "value": "300"},
            {"kind": "recurring", "every": "month", "value": "100"},
            {"kind": "series", "values": {"2025-01": "120"}},
        ]
    ).targets
    assert goal_for(targets, "2025-01") == 120  # the series names this very month
    assert goal_for(targets, "2025-02") == 100
    assert goal_for(targets, "2025-Q1") == 300
    assert goal_for(targets, "2025") is None


def test_whether_a_value_meets_its_targets() -> None:
    higher = kpi(
        [{"kind": "threshold", "at_least": "10"}, {"kind": "series", "values": {"2025-01": 20}}]
    ).targets
    assert met(higher, "2025-01", F(25), higher_is_better=True) is True
    assert met(higher, "2025-01", F(15), higher_is_better=True) is False  # short of the goal
    assert met(higher, "2025-02", F(15), higher_is_better=True) is True  # only the threshold
    assert met(higher, "2025-02", F(5), higher_is_better=True) is False
    assert met(higher, "2025-02", None, higher_is_better=True) is None
    churn = kpi([{"kind": "series", "values": {"2025-01": "0.03"}}], "lower_is_better").targets
    assert met(churn, "2025-01", F(2, 100), higher_is_better=False) is True
    assert met(churn, "2025-01", F(4, 100), higher_is_better=False) is False
    assert met(churn, "2025-02", F(4, 100), higher_is_better=False) is None


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"kind": "threshold", "at_least": 0.95}, "write the number as a string, such as '0.95'"),
        ({"kind": "threshold", "at_least": True}, "expected a decimal number, got True"),
        ({"kind": "threshold", "at_least": "lots"}, "expected a decimal number, got 'lots'"),
        ({"kind": "threshold", "at_least": "NaN"}, "expected a decimal number, got 'NaN'"),
        ({"kind": "threshold"}, "give either at_least or at_most"),
        ({"kind": "threshold", "at_least": 1, "at_most": 2}, "give either at_least or at_most"),
        ({"kind": "recurring", "every": "week", "value": 1}, "Input should be 'month'"),
        ({"kind": "series", "values": {}}, "at least 1 item"),
        ({"kind": "series", "values": {"January": 1}}, "'January' is not a period"),
        ({"kind": "someday", "value": 1}, "does not match any of the expected tags"),
    ],
)
def test_bad_targets_are_named(target: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        kpi([target])
    assert any(
        message in error["msg"] and error["loc"][0] == "targets" for error in raised.value.errors()
    )
