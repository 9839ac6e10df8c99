"""KPI definitions: a metric or a formula, each field checked, references resolved."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from tests.builders import kpi_definition

from execmetrics.kpi.definitions import (
    DEFAULT_SCHEDULE,
    Group,
    KpiDefinition,
    Period,
    check_references,
)
from execmetrics.kpi.formula import FormulaError


def kpi(**fields: Any) -> KpiDefinition:
    return kpi_definition(**fields)


def test_a_metric_kpi_with_defaults() -> None:
    definition = kpi()
    assert definition.schedule == DEFAULT_SCHEDULE
    assert definition.period is Period.LAST_COMPLETE_MONTH
    assert definition.reads() == set()


def test_a_metric_for_one_breakdown_group() -> None:
    definition = kpi(
        name="smb_churn",
        metric="customer_churn_rate",
        group={"by": "segment", "value": "SMB"},
        unit="ratio",
        direction="lower_is_better",
    )
    assert definition.group == Group(by="segment", value="SMB")


def test_a_formula_kpi_reads_other_kpis() -> None:
    definition = kpi(name="expansion_share", metric=None, formula="expansion_mrr / mrr_start")
    assert definition.reads() == {"expansion_mrr", "mrr_start"}


@pytest.mark.parametrize(
    ("fields", "location", "message"),
    [
        ({"name": "MRR"}, "name", "should match pattern"),
        ({"name": "max"}, "name", "'max' is a formula function"),
        ({"metric": "profit"}, "metric", "unknown metric 'profit'"),
        ({"metric": None, "formula": "a +"}, "formula", "at character 4"),
        ({"metric": "mrr_end", "formula": "a + b"}, "", "either metric or formula"),
        ({"metric": None}, "", "either metric or formula"),
        ({"schedule": "61 * * * *"}, "schedule", "not a cron expression (Bad minute)"),
        ({"schedule": "every hour"}, "schedule", "not a cron expression"),
        ({"category": "vanity"}, "category", "Input should be"),
        ({"unit": "pounds"}, "unit", "Input should be"),
        ({"direction": "up"}, "direction", "Input should be"),
        ({"period": "fortnight"}, "period", "Input should be"),
        ({"group": {"by": "shoe_size", "value": "9"}}, "group.by", "expected one of segment"),
        ({"group": {"by": "segment", "value": ""}}, "group.value", "at least 1 character"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
        (
            {"metric": None, "formula": "a", "group": {"by": "segment", "value": "SMB"}},
            "",
            "group applies to a metric",
        ),
    ],
)
def test_bad_fields_are_named(fields: dict[str, Any], location: str, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        kpi(**fields)
    [error] = raised.value.errors()
    assert ".".join(str(part) for part in error["loc"]) == location
    assert message in error["msg"]


def test_references_resolve_in_order() -> None:
    order = check_references(
        [
            kpi(name="share", metric=None, formula="expansion / mrr"),
            kpi(name="expansion", metric="expansion_mrr"),
            kpi(),
        ]
    )
    assert order == ["expansion", "mrr", "share"]


@pytest.mark.parametrize(
    ("formulas", "message"),
    [
        ({"a": "a + 1"}, "a: formulas read each other in a cycle: a -> a"),
        ({"a": "b", "b": "a * 2"}, "cycle: a -> b -> a"),
        ({"a": "mrr / nothing"}, "a: unknown KPI 'nothing'"),
    ],
)
def test_self_reference_cycles_and_unknown_kpis_are_refused(
    formulas: dict[str, str], message: str
) -> None:
    definitions = [kpi()] + [kpi(name=n, metric=None, formula=f) for n, f in formulas.items()]
    with pytest.raises(FormulaError, match=message.replace("(", r"\(")):
        check_references(definitions)


def test_a_name_defined_twice_is_refused() -> None:
    with pytest.raises(FormulaError, match="mrr: defined more than once"):
        check_references([kpi(), kpi(title="MRR again")])
