"""The value of each KPI for its period, computed exactly from the revenue engine's metrics
and the data quality scores."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, insert, select

from execmetrics.analytics.quality_store import StoredQuality, latest_quality
from execmetrics.kpi import formula as expression
from execmetrics.kpi.definitions import (
    QUALITY_METRICS,
    Direction,
    KpiDefinition,
    Period,
    check_references,
)
from execmetrics.kpi.service import StoredKpi, current_kpi, current_kpis
from execmetrics.kpi.targets import goal_for, met, period_interval
from execmetrics.metrics.cache import data_version
from execmetrics.metrics.periods import (
    PERIODS_PER_YEAR,
    label,
    parse_label,
    period_start,
    shift_periods,
)
from execmetrics.metrics.queries import SUBSCRIPTION_BREAKDOWNS
from execmetrics.metrics.service import compute_metrics
from execmetrics.store.tables import kpi_evaluations
from execmetrics.timeutil import now_micros

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


# The metrics only a computation with retention gives (metrics/service.py).
RETENTION_METRICS = frozenset({"nrr_12m", "grr_12m"})


@dataclass(frozen=True)
class KpiValue:
    name: str
    period: str  # the label of the period the value is for: 2025-11, 2025-Q4, 2025
    value: Fraction | None  # None: the KPI has no value for the period


def period_label(period: Period, today: date, back: int = 0) -> str:
    interval, offset = PERIOD_OF[period]
    return label(shift_periods(period_start(today, interval), interval, offset + back), interval)


def evaluate_kpis(
    connection: Connection,
    definitions: list[KpiDefinition],
    today: date,
    tz: str = "UTC",
    ledger: LedgerArrays | None = None,
) -> dict[str, KpiValue]:
    """Every KPI's value for its period as of `today` (a date in `tz`)."""
    history = evaluate_kpi_history(connection, definitions, today, tz, ledger, periods=1)
    return {name: values[-1] for name, values in history.items()}


def evaluate_kpi_history(
    connection: Connection,
    definitions: list[KpiDefinition],
    today: date,
    tz: str = "UTC",
    ledger: LedgerArrays | None = None,
    periods: int = 1,
) -> dict[str, list[KpiValue]]:
    """Every KPI's values for its period as of `today` and the `periods - 1` periods before,
    oldest first: metric KPIs from one metrics computation per period kind and breakdown,
    then formulas in the order they read each other, each reading its inputs the same
    number of periods back. A quality KPI, and a formula that reads one, has the current
    period's value only, from the newest stored quality report (analytics/quality_store.py;
    none before the first is stored): a quality score is measured at a moment, and what it
    was in an earlier period cannot be measured again. Raises FormulaError for definitions
    that refer to unknown KPIs or to themselves."""
    quality = _quality(connection, definitions)
    return _history(connection, definitions, today, tz, ledger, periods, quality)


def _history(
    connection: Connection,
    definitions: list[KpiDefinition],
    today: date,
    tz: str,
    ledger: LedgerArrays | None,
    periods: int,
    quality: StoredQuality | None,
) -> dict[str, list[KpiValue]]:
    order = check_references(definitions)
    by_name = {definition.name: definition for definition in definitions}
    rows = _metric_rows(connection, definitions, today, tz, ledger, periods)
    now_only = measured_now(definitions)
    values: dict[str, list[KpiValue]] = {}
    for name in order:
        definition = by_name[name]
        values[name] = []
        for back in (0,) if name in now_only else range(periods - 1, -1, -1):
            period = period_label(definition.period, today, back)
            if definition.formula is not None:
                inputs = {read: values[read][-1 - back].value for read in definition.reads()}
                value = expression.evaluate(expression.parse(definition.formula), inputs)
            elif definition.metric in QUALITY_METRICS:
                value = _quality_score(quality, definition.metric)
            else:
                assert definition.metric is not None  # a definition has a metric or a formula
                group = definition.group
                key = (PERIOD_OF[definition.period][0], group.by if group else None, period)
                row = rows[key].get(group.value if group else None)
                value = None if row is None else _fraction(row[definition.metric])
            values[name].append(KpiValue(name, period, value))
    return values


def measured_now(definitions: list[KpiDefinition]) -> set[str]:
    """The quality KPIs and the formulas that read one, directly or through others: their
    values depend on the moment they are measured, not only on the data."""
    by_name = {definition.name: definition for definition in definitions}
    found: set[str] = set()
    for name in check_references(definitions):
        definition = by_name[name]
        if definition.metric in QUALITY_METRICS or definition.reads() & found:
            found.add(name)
    return found


def reads_quality(definitions: Iterable[KpiDefinition]) -> bool:
    """Whether a KPI follows a data quality score (and so reads the stored reports)."""
    return any(definition.metric in QUALITY_METRICS for definition in definitions)


def _quality(connection: Connection, definitions: list[KpiDefinition]) -> StoredQuality | None:
    """The newest stored quality report, when a KPI reads one."""
    return latest_quality(connection) if reads_quality(definitions) else None


def _quality_score(quality: StoredQuality | None, metric: str) -> Fraction | None:
    """One score of the report: none before the first report, or for a dataset without
    checks (no tickets yet)."""
    if quality is None:
        return None
    report = quality.report
    dataset, dimension = QUALITY_METRICS[metric]
    if dataset is None:
        return report.overall
    found = report.datasets.get(dataset)
    if found is None:
        return None
    return _fraction(found["score"] if dimension is None else found["dimensions"].get(dimension))


def _metric_rows(
    connection: Connection,
    definitions: list[KpiDefinition],
    today: date,
    tz: str,
    ledger: LedgerArrays | None,
    periods: int,
) -> dict[tuple[str, str | None, str], dict[str | None, dict[str, Any]]]:
    """The metrics row of each period (by interval and label) and breakdown the metric KPIs
    need, by group value: one computation per interval and breakdown, whatever the KPI
    periods (a month to date and the last complete month share the months' rows)."""
    backs: dict[tuple[str, str | None], set[int]] = defaultdict(set)
    retention: set[tuple[str, str | None]] = set()  # the computations a retention KPI reads
    for d in definitions:
        if d.metric is not None:
            interval, back = PERIOD_OF[d.period]
            backs[(interval, d.group.by if d.group else None)].add(back)
            if d.metric in RETENTION_METRICS:
                retention.add((interval, d.group.by if d.group else None))
    rows: dict[tuple[str, str | None, str], dict[str | None, dict[str, Any]]]
    rows = defaultdict(dict)
    if ledger is None and any(by not in SUBSCRIPTION_BREAKDOWNS for _, by in backs):
        from execmetrics.metrics.ledger_arrays import load_ledger

        ledger = load_ledger(connection)  # read once for every interval and breakdown
    for (interval, by), offsets in sorted(backs.items(), key=str):
        current = period_start(today, interval)
        last = shift_periods(current, interval, min(offsets))
        first = shift_periods(current, interval, max(offsets) + periods - 1)
        report = compute_metrics(
            connection, first, last, interval, tz, by, ledger,
            exact=True, retention=(interval, by) in retention,
        )  # fmt: skip
        for row in report.rows:
            # Customers without a value for the breakdown form the group "(none)".
            rows[(interval, by, row["period"])][row["group"]] = row
    return rows


def _fraction(value: object) -> Fraction | None:
    if value is None:
        return None
    if isinstance(value, int | Fraction):
        return Fraction(value)
    raise TypeError(f"a metric value must be a whole number or a fraction, got {value!r}")


@dataclass(frozen=True)
class Evaluation:
    name: str
    version: int
    period: str
    value: Fraction | None
    recorded: bool  # False: the same inputs were evaluated before, nothing was added


def record_evaluations(
    connection: Connection,
    today: date,
    tz: str = "UTC",
    ledger: LedgerArrays | None = None,
    periods: int = 1,
    kpis: dict[str, StoredKpi] | None = None,
) -> list[Evaluation]:
    """Evaluate every current KPI for its current period (and with `periods` > 1 the
    periods before it too) and store each value not yet stored for its KPI version, period
    and data version: evaluating again at the same data version adds nothing. A value of an
    earlier period is stored only when it differs from the one stored last for that period
    (late data can change it), so the history grows with changes, not with evaluations.

    A quality KPI's value (and a formula's that reads one) comes from the newest stored
    quality report, and can change with time alone, as data grows stale and the report is
    measured again: it is stored at a new data version or when it differs from the one
    stored last, with the data version followed by `@` and the moment the report was
    measured (nothing before the first report), so that alert rules, which judge a value
    again when its data version changes, judge it again. `kpis` are the current KPIs when
    the caller has read them already."""
    stored = current_kpis(connection) if kpis is None else kpis
    version = data_version(connection)
    definitions = [kpi.definition for kpi in stored.values()]
    quality = _quality(connection, definitions)
    history = _history(connection, definitions, today, tz, ledger, periods, quality)
    measured = "" if quality is None else str(quality.measured_at)
    now_only = measured_now(definitions)
    e = kpi_evaluations.c
    newest = select(func.max(e.id)).group_by(e.name, e.version, e.period)
    last = {
        (row.name, row.version, row.period): (row.data_version, row.value)
        for row in connection.execute(
            select(e.name, e.version, e.period, e.data_version, e.value).where(e.id.in_(newest))
        )
    }
    evaluations = []
    for name, values in sorted(history.items()):
        # Oldest first: the current period's row is the newest of each KPI (current_values).
        for index, value in enumerate(values):
            back = len(values) - 1 - index
            key = (name, stored[name].version, value.period)
            before = last.get(key)
            if name in now_only:
                new = before is None or before[1] != fraction_text(value.value) or (
                    before[0].partition("@")[0] != version
                )  # fmt: skip
            else:
                new = before is None or before[0] != version if back == 0 else (
                    before is None or before[1] != fraction_text(value.value)
                )  # fmt: skip
            evaluations.append(Evaluation(name, key[1], value.period, value.value, new))
    now = now_micros()
    new_rows = [
        {"name": ev.name, "version": ev.version, "period": ev.period,
         "value": fraction_text(ev.value), "evaluated_at": now,
         "data_version": f"{version}@{measured}" if ev.name in now_only else version}
        for ev in evaluations if ev.recorded
    ]  # fmt: skip
    if new_rows:
        connection.execute(insert(kpi_evaluations), new_rows)
    return evaluations


def kpi_values(
    connection: Connection, name: str, first: int | None = None, last: int | None = None
) -> list[dict[str, Any]]:
    """The stored evaluations of one KPI, oldest first, between two instants (inclusive)."""
    e = kpi_evaluations.c
    query = select(e.version, e.period, e.value, e.data_version, e.evaluated_at).where(
        e.name == name
    )
    if first is not None:
        query = query.where(e.evaluated_at >= first)
    if last is not None:
        query = query.where(e.evaluated_at <= last)
    rows = connection.execute(query.order_by(e.evaluated_at, e.id))
    return [dict(row._mapping) | {"value": parse_fraction(row.value)} for row in rows]


def fraction_text(value: Fraction | None) -> str | None:
    """An exact value as stored: "p/q", or "p" when it is whole."""
    return None if value is None else str(value)


def parse_fraction(text: str | None) -> Fraction | None:
    return None if text is None else Fraction(text)


def current_values(connection: Connection) -> list[dict[str, Any]]:
    """Each current KPI with its latest stored value (for its current version) and whether
    that value meets its targets; `value` is None when nothing is stored yet."""
    e = kpi_evaluations.c
    # Only the newest row of each KPI version: evaluations are appended as they are made, so
    # it has the highest id (the table grows by every KPI at every evaluation).
    newest = select(func.max(e.id)).group_by(e.name, e.version)
    rows = connection.execute(
        select(e.name, e.version, e.period, e.value, e.evaluated_at).where(e.id.in_(newest))
    )
    latest = {(row.name, row.version): dict(row._mapping) for row in rows}
    result = []
    for name, kpi in current_kpis(connection).items():
        found = latest.get((name, kpi.version))
        value = parse_fraction(found["value"]) if found else None
        period = found["period"] if found else None
        result.append(
            {
                "name": name,
                "version": kpi.version,
                "period": period,
                "value": value,
                "evaluated_at": found["evaluated_at"] if found else None,
                **_verdict(kpi.definition, period, value),
            }
        )
    return result


def value_history(
    connection: Connection, name: str, first: str | None = None, last: str | None = None
) -> list[dict[str, Any]]:
    """The KPI's latest stored value for each period from `first` to `last` (period labels,
    inclusive), with the value of the period before, of the same period a year before, and
    the goal its targets set for the period."""
    stored = current_kpi(connection, name)
    if stored is None:
        raise KeyError(name)
    by_period: dict[str, dict[str, Any]] = {}
    for row in kpi_values(connection, name):
        by_period[row["period"]] = row  # later evaluations of a period replace earlier ones
    rows = []
    for period in sorted(by_period, key=period_order):
        if (first and period_order(period) < period_order(first)) or (
            last and period_order(period) > period_order(last)
        ):
            continue
        row = by_period[period]
        interval = period_interval(period)
        start = parse_label(period, "period")
        previous = label(shift_periods(start, interval, 1), interval)
        year_ago = label(shift_periods(start, interval, PERIODS_PER_YEAR[interval]), interval)
        rows.append(
            {
                "period": period,
                "version": row["version"],
                "value": row["value"],
                "evaluated_at": row["evaluated_at"],
                "previous": by_period.get(previous, {}).get("value"),
                "year_ago": by_period.get(year_ago, {}).get("value"),
                **_verdict(stored.definition, period, row["value"]),
            }
        )
    return rows


def _verdict(
    definition: KpiDefinition, period: str | None, value: Fraction | None
) -> dict[str, Any]:
    if period is None:
        return {"goal": None, "met": None}
    higher = definition.direction is Direction.HIGHER_IS_BETTER
    return {
        "goal": goal_for(definition.targets, period),
        "met": met(definition.targets, period, value, higher),
    }


def period_order(period: str) -> tuple[int, int]:
    """Periods of one kind in time order: 2025-01 < 2025-02, 2025-Q1 < 2025-Q2."""
    start = parse_label(period, "period")
    return (start.year, start.month)
