"""The value of each KPI for its period, computed exactly from the revenue engine's metrics."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from execmetrics.kpi import formula as expression
from execmetrics.kpi.definitions import KpiDefinition, Period, check_references
from execmetrics.metrics.periods import label, period_start, shift_periods
from execmetrics.metrics.service import compute_metrics

if TYPE_CHECKING:
    from execmetrics.metrics.ledger_arrays import LedgerArrays

# Each KPI period is one period of the metrics engine: its interval, and how many periods
# before the one containing today.
PERIOD_OF: dict[Period, tuple[str, int]] = {
    Period.MONTH_TO_DATE: ("month", 0),
    Period.LAST_COMPLETE_MONTH: ("month", 1),
    Period.QUARTER_TO_DATE: ("quarter", 0),
    Period.YEAR_TO_DATE: ("year", 0),
}


@dataclass(frozen=True)
class KpiValue:
    name: str
    period: str  # the label of the period the value is for: 2025-11, 2025-Q4, 2025
    value: Fraction | None  # None: the KPI has no value for the period


def period_label(period: Period, today: date) -> str:
    interval, back = PERIOD_OF[period]
    return label(shift_periods(period_start(today, interval), interval, back), interval)


def evaluate_kpis(
    connection: Connection,
    definitions: list[KpiDefinition],
    today: date,
    tz: str = "UTC",
    ledger: LedgerArrays | None = None,
) -> dict[str, KpiValue]:
    """Every KPI's value for its period as of `today` (a date in `tz`): metric KPIs from one
    metrics computation per period and breakdown, then formulas in the order they read each
    other. Raises FormulaError for definitions that refer to unknown KPIs or to themselves."""
    order = check_references(definitions)
    by_name = {definition.name: definition for definition in definitions}
    rows = _metric_rows(connection, definitions, today, tz, ledger)
    values: dict[str, KpiValue] = {}
    for name in order:
        definition = by_name[name]
        period = period_label(definition.period, today)
        if definition.formula is not None:
            inputs = {read: values[read].value for read in definition.reads()}
            value = expression.evaluate(expression.parse(definition.formula), inputs)
        else:
            assert definition.metric is not None  # a definition has a metric or a formula
            group = definition.group
            key = (definition.period, group.by if group else None)
            row = rows[key].get(group.value if group else None)
            value = None if row is None else _fraction(row[definition.metric])
        values[name] = KpiValue(name, period, value)
    return values


def _metric_rows(
    connection: Connection,
    definitions: list[KpiDefinition],
    today: date,
    tz: str,
    ledger: LedgerArrays | None,
) -> dict[tuple[Period, str | None], dict[str | None, dict[str, Any]]]:
    """The metrics row of each period and breakdown the metric KPIs need, by group value."""
    needed = {
        (d.period, d.group.by if d.group else None) for d in definitions if d.metric is not None
    }
    rows: dict[tuple[Period, str | None], dict[str | None, dict[str, Any]]] = defaultdict(dict)
    for period, by in sorted(needed, key=str):
        interval, back = PERIOD_OF[period]
        start = shift_periods(period_start(today, interval), interval, back)
        report = compute_metrics(connection, start, start, interval, tz, by, ledger, exact=True)
        for row in report.rows:
            # Customers without a value for the breakdown form the group "(none)".
            rows[(period, by)][row["group"]] = row
    return rows


def _fraction(value: object) -> Fraction | None:
    if value is None:
        return None
    if isinstance(value, int | Fraction):
        return Fraction(value)
    raise TypeError(f"a metric value must be a whole number or a fraction, got {value!r}")
