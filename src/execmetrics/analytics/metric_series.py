"""The engine's own series to forecast or watch: a revenue metric month by month over the
whole ledger, or a KPI's stored value period by period."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select

from execmetrics.analytics.series import SeriesError, TimeSeries
from execmetrics.kpi.evaluation import PERIOD_OF, period_label, value_history
from execmetrics.kpi.service import current_kpi
from execmetrics.metrics.periods import local_midnight_us, parse_label, period_start, shift_periods
from execmetrics.metrics.periods import time_zone as zone_of
from execmetrics.metrics.service import compute_metrics
from execmetrics.settings_store import reporting_currency
from execmetrics.store.tables import mrr_movements
from execmetrics.timeutil import from_micros

if TYPE_CHECKING:
    from execmetrics.metrics.ledger_arrays import LedgerArrays

# Each name a forecast may be asked for, with the metric it reads and its unit.
METRIC_SERIES = {
    "mrr": ("mrr_end", "money"),
    "arr": ("arr", "money"),
    "customers": ("customers_end", "count"),
    "new_mrr": ("new_mrr", "money"),
    "net_new_mrr": ("net_new_mrr", "money"),
    "churned_mrr": ("churned_mrr", "money"),
}
KPI_PREFIX = "kpi:"


@dataclass(frozen=True)
class NamedSeries:
    name: str
    series: TimeSeries
    unit: str  # money (minor units of `currency`), count, ratio, percent or days
    currency: str


def stored_series(
    connection: Connection,
    name: str,
    today: date,
    tz: str = "UTC",
    ledger: Callable[[], LedgerArrays] | None = None,
) -> NamedSeries:
    """`mrr`, `customers`, ... (METRIC_SERIES) for each complete month since the first
    movement, or `kpi:NAME` for each period the KPI has a stored value. `ledger` gives the
    movement ledger at the current data version where the caller keeps one in memory (the
    server), called only for a metric series."""
    currency = reporting_currency(connection)
    if name.startswith(KPI_PREFIX):
        return _kpi_series(connection, name, currency, today)
    if name not in METRIC_SERIES:
        raise SeriesError(
            f"series: expected one of {', '.join(METRIC_SERIES)} or kpi:NAME, got {name!r}"
        )
    metric, unit = METRIC_SERIES[name]
    first_at = connection.execute(select(func.min(mrr_movements.c.occurred_at))).scalar()
    last = shift_periods(period_start(today, "month"), "month", 1)
    if first_at is None:
        raise SeriesError("series: the ledger has no movements yet")
    zone = zone_of(tz)
    first = period_start(from_micros(first_at).astimezone(zone).date(), "month")
    if local_midnight_us(first, zone) > local_midnight_us(last, zone):
        raise SeriesError("series: no complete month since the first movement")
    # No series reads the 12-month retention figures, the costliest to compute.
    rows = compute_metrics(
        connection, first, last, "month", tz, ledger=None if ledger is None else ledger(),
        exact=True, retention=False,
    ).rows  # fmt: skip
    series = TimeSeries(
        "month",
        tuple(parse_label(row["period"], "period") for row in rows),
        tuple(float(row[metric]) for row in rows),
    )
    return NamedSeries(name, series, unit, currency)


def _kpi_series(connection: Connection, name: str, currency: str, today: date) -> NamedSeries:
    kpi_name = name.removeprefix(KPI_PREFIX)
    stored = current_kpi(connection, kpi_name)
    if stored is None:
        raise SeriesError(f"series: no KPI named {kpi_name!r}")
    interval = PERIOD_OF[stored.definition.period][0]
    # A period to date is still under way: its value so far is not the period's.
    under_way = period_label(stored.definition.period, today)
    rows = [
        row
        for row in value_history(connection, kpi_name)
        if row["value"] is not None and row["period"] != under_way
    ]
    if not rows:
        raise SeriesError(f"series: the KPI {kpi_name!r} has no stored value yet")
    starts = [parse_label(row["period"], "period") for row in rows]
    for previous, row, start in zip(starts[:-1], rows[1:], starts[1:], strict=True):
        if shift_periods(start, interval, 1) != previous:
            raise SeriesError(
                f"series: the KPI {kpi_name!r} has no stored value for the period before "
                f"{row['period']}; a forecast needs every period"
            )
    values = tuple(float(row["value"]) for row in rows)
    return NamedSeries(
        name, TimeSeries(interval, tuple(starts), values), stored.definition.unit.value, currency
    )
