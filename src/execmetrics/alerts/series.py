"""The stored values of each KPI as alert rules read them: by period, the newest evaluation
of each period for the KPI's current version."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from sqlalchemy import Connection, func, select

from execmetrics.kpi.definitions import KpiDefinition
from execmetrics.kpi.evaluation import PERIOD_OF, parse_fraction, period_order
from execmetrics.kpi.service import StoredKpi
from execmetrics.metrics.periods import label, make_period, parse_label, shift_periods, time_zone
from execmetrics.store.tables import kpi_evaluations

Pace = Literal["flow", "stock", "rate"]
# Metrics that add up over a period (a quarter's new MRR is its months' new MRR), and levels
# that stand at a moment (MRR at the end of the period); every other metric is a rate or an
# average, which a projection leaves as it is.
FLOWS = frozenset(
    {
        "new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr", "churned_mrr",
        "net_new_mrr", "new_customers", "reactivated_customers", "churned_customers",
        "marketing_spend",
    }
)  # fmt: skip
STOCKS = frozenset({"mrr_end", "arr", "customers_end"})


@dataclass(frozen=True)
class KpiSeries:
    definition: KpiDefinition
    version: int
    values: dict[str, Fraction | None]  # by period label
    current: str | None  # the newest period evaluated
    data_version: str | None  # the data version of the current period's value
    evaluated_at: int | None  # when the current period's value was evaluated
    tz: str = "UTC"

    @property
    def interval(self) -> str:
        return PERIOD_OF[self.definition.period][0]

    @property
    def back(self) -> int:
        """How many periods before the one under way the KPI's period is (0: to date)."""
        return PERIOD_OF[self.definition.period][1]

    @property
    def pace(self) -> Pace:
        metric = self.definition.metric
        if metric in FLOWS:
            return "flow"
        return "stock" if metric in STOCKS else "rate"

    def label(self, back: int) -> str:
        """The label of the period `back` periods before the current one."""
        assert self.current is not None
        start = parse_label(self.current, "period")
        return label(shift_periods(start, self.interval, back), self.interval)

    def elapsed(self) -> Fraction | None:
        """The exact share of the current period gone when its value was evaluated."""
        if self.current is None or self.evaluated_at is None:
            return None
        period = make_period(parse_label(self.current, "period"), self.interval, time_zone(self.tz))
        length = period.end_us - period.start_us
        gone = min(max(self.evaluated_at - period.start_us, 0), length)
        return Fraction(gone, length)


def kpi_series(
    connection: Connection, kpis: dict[str, StoredKpi], tz: str = "UTC"
) -> dict[str, KpiSeries]:
    """Every current KPI's values by period, for its current version, in one query."""
    e = kpi_evaluations.c
    newest = select(func.max(e.id)).group_by(e.name, e.version, e.period)
    rows = connection.execute(
        select(e.name, e.version, e.period, e.value, e.data_version, e.evaluated_at).where(
            e.id.in_(newest)
        )
    )
    found: dict[str, list[tuple[str, Fraction | None, str, int]]] = {}
    for row in rows:
        kpi = kpis.get(row.name)
        if kpi is not None and kpi.version == row.version:
            found.setdefault(row.name, []).append(
                (row.period, parse_fraction(row.value), row.data_version, row.evaluated_at)
            )
    series = {}
    for name, kpi in kpis.items():
        points = sorted(found.get(name, []), key=lambda point: period_order(point[0]))
        latest = points[-1] if points else None
        series[name] = KpiSeries(
            definition=kpi.definition,
            version=kpi.version,
            values={period: value for period, value, _, _ in points},
            current=latest[0] if latest else None,
            data_version=latest[2] if latest else None,
            evaluated_at=latest[3] if latest else None,
            tz=tz,
        )
    return series
