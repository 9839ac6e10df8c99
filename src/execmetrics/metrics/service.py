"""Metrics per period (and per group): docs/metrics.md, definitions 4 to 7."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from execmetrics.fx import load_fx_rates
from execmetrics.metrics import queries
from execmetrics.metrics.periods import (
    PERIODS_PER_YEAR,
    Period,
    add_months,
    local_midnight_us,
    periods_between,
    shift_periods,
    time_zone,
)
from execmetrics.money import conversion_factor, divide_half_up, ratio_of_money, round_half_up
from execmetrics.settings_store import gross_margin, reporting_currency
from execmetrics.store.tables import marketing_spend

if TYPE_CHECKING:
    from execmetrics.metrics.ledger_arrays import Flow, LedgerArrays

LTV_CHURN_PERIODS = 6
RATE_DIGITS = 6

FIELDS = (
    "period",
    "group",
    "mrr_start",
    "mrr_end",
    "new_mrr",
    "expansion_mrr",
    "reactivation_mrr",
    "contraction_mrr",
    "churned_mrr",
    "net_new_mrr",
    "arr",
    "customers_start",
    "customers_end",
    "new_customers",
    "reactivated_customers",
    "churned_customers",
    "arpa",
    "customer_churn_rate",
    "gross_mrr_churn_rate",
    "net_mrr_churn_rate",
    "grr",
    "nrr",
    "nrr_12m",
    "grr_12m",
    "quick_ratio",
    "ltv",
    "mrr_growth",
    "mrr_growth_yoy",
    "marketing_spend",
    "cac",
    "ltv_to_cac",
    "cac_payback_months",
)

Row = dict[str, Any]


class MetricsError(ValueError):
    """A metrics request that cannot be answered; names the parameter."""


@dataclass(frozen=True)
class MetricsReport:
    currency: str
    timezone: str
    interval: str
    rows: list[Row]

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "timezone": self.timezone,
            "interval": self.interval,
            "rows": self.rows,
        }


def rate(numerator: int | Fraction, denominator: int | Fraction) -> Fraction | None:
    return None if denominator == 0 else Fraction(numerator) / Fraction(denominator)


def as_decimal(value: Fraction | None) -> Decimal | None:
    """Rates are reported as decimals rounded half up to six places."""
    if value is None:
        return None
    # Rounded once, on the exact fraction: no intermediate decimal division.
    millionths = divide_half_up(value.numerator * 10**RATE_DIGITS, value.denominator)
    return Decimal(millionths).scaleb(-RATE_DIGITS)


def history_periods(interval: str) -> int:
    """Periods computed before --from, for year-on-year growth and LTV's churn history."""
    return max(PERIODS_PER_YEAR[interval], LTV_CHURN_PERIODS)


def compute_metrics(
    connection: Connection,
    first: date,
    last: date,
    interval: str = "month",
    tz: str = "UTC",
    by: str | None = None,
    ledger: LedgerArrays | None = None,
    exact: bool = False,
    retention: bool = True,
) -> MetricsReport:
    """The metrics of each period from `first` to `last`. `ledger` is the movement ledger
    already read into memory at the current data version, if the caller keeps one. Rates are
    decimals rounded to six places, or with `exact` the fractions they were rounded from.
    Without `retention`, the 12-month retention figures (nrr_12m, grr_12m), which cost more
    than all the others together, are left out (None) for a caller that reads none of them."""
    zone = time_zone(tz)
    requested = periods_between(first, last, interval, zone)
    extra = history_periods(interval)
    start = shift_periods(requested[0].start, interval, extra)
    periods = periods_between(start, requested[-1].start, interval, zone)
    currency = reporting_currency(connection)
    if by in queries.SUBSCRIPTION_BREAKDOWNS:
        rows = _subscription_rows(connection, periods[extra:], by)
    else:
        rows = _customer_rows(connection, periods, extra, interval, by, zone, ledger, retention)
    if not exact:
        for row in rows:
            _finish(row)
    return MetricsReport(currency, tz, interval, rows)


def _customer_rows(
    connection: Connection,
    periods: list[Period],
    extra: int,
    interval: str,
    by: str | None,
    zone: ZoneInfo,
    ledger: LedgerArrays | None,
    retention: bool,
) -> list[Row]:
    # numpy is imported here, not at module level: it costs every command 0.15 s to load.
    from execmetrics.metrics import ledger_arrays

    queries.customer_group(by)  # an unknown breakdown is refused before the ledger is read
    ledger = ledger if ledger is not None else ledger_arrays.load_ledger(connection)
    codes = ledger.groups(connection, by)
    boundaries = [p.start_us for p in periods] + [periods[-1].end_us]
    opening = ledger_arrays.opening_balances(ledger, codes, boundaries[0])
    flows = ledger_arrays.period_flows(ledger, codes, boundaries)
    windows = [(local_midnight_us(add_months(p.end, -12), zone), p.end_us) for p in periods[extra:]]
    retained = ledger_arrays.retention_12m(ledger, codes, windows) if retention else None
    spend = _marketing_spend(connection, periods, by, reporting_currency(connection))
    margin = gross_margin(connection)
    # Spend on a source or campaign that won no customers still forms a group.
    keys = set(opening) | {key for _, key in flows} | {key for _, key in spend}
    groups = sorted(keys, key=lambda g: (g is None, str(g)))
    rows: list[Row] = []
    for key in groups if by else [None]:
        mrr, paying = opening.get(key, (0, 0))
        history: list[Row] = []
        for index, period in enumerate(periods):
            flow = flows.get((index, key)) or ledger_arrays.Flow()
            row = _period_row(period, flow, mrr, paying)
            mrr, paying = row["mrr_end"], row["customers_end"]
            _add_history_ratios(row, history, interval, margin)
            history.append(row)
            if index >= extra:
                _add_retention(row, retained, (index - extra, key))
                _add_cac(row, spend.get((index, key)), by, margin)
                row["group"] = None if by is None else (queries.NONE_GROUP if key is None else key)
                rows.append(row)
    rows.sort(key=lambda row: row["period_start"])
    return [{name: row[name] for name in FIELDS} for row in rows]


def _period_row(period: Period, flow: Flow, mrr_start: int, paying: int) -> Row:
    new = flow.mrr["new"]
    expansion = flow.mrr["expansion"]
    reactivation = flow.mrr["reactivation"]
    contraction = flow.mrr["contraction"]
    churned = flow.mrr["churn"]
    net_new = new + expansion + reactivation - contraction - churned
    mrr_end = mrr_start + net_new
    customers_end = paying + flow.count["new"] + flow.count["reactivation"] - flow.count["churn"]
    return {
        "period": period.label,
        "period_start": period.start_us,
        "group": None,
        "mrr_start": mrr_start,
        "mrr_end": mrr_end,
        "new_mrr": new,
        "expansion_mrr": expansion,
        "reactivation_mrr": reactivation,
        "contraction_mrr": contraction,
        "churned_mrr": churned,
        "net_new_mrr": net_new,
        "arr": 12 * mrr_end,
        "customers_start": paying,
        "customers_end": customers_end,
        "new_customers": flow.count["new"],
        "reactivated_customers": flow.count["reactivation"],
        "churned_customers": flow.count["churn"],
        "arpa": ratio_of_money(mrr_end, customers_end),
        "customer_churn_rate": rate(flow.churned_from_start, paying),
        "gross_mrr_churn_rate": rate(churned + contraction, mrr_start),
        "net_mrr_churn_rate": rate(churned + contraction - expansion - reactivation, mrr_start),
        "quick_ratio": rate(new + expansion + reactivation, contraction + churned),
    }


def _add_history_ratios(row: Row, history: list[Row], interval: str, margin: Fraction) -> None:
    gross = row["gross_mrr_churn_rate"]
    net = row["net_mrr_churn_rate"]
    row["grr"] = None if gross is None else 1 - gross
    row["nrr"] = None if net is None else 1 - net
    previous = history[-1]["mrr_end"] if history else None
    row["mrr_growth"] = _growth(row["mrr_end"], previous)
    year = PERIODS_PER_YEAR[interval]
    year_ago = history[-year]["mrr_end"] if len(history) >= year else None
    row["mrr_growth_yoy"] = _growth(row["mrr_end"], year_ago)
    churn_rates = [h["customer_churn_rate"] for h in history[-LTV_CHURN_PERIODS:]]
    row["ltv"] = None
    if len(churn_rates) == LTV_CHURN_PERIODS and all(r is not None for r in churn_rates):
        mean = sum(churn_rates, Fraction(0)) / LTV_CHURN_PERIODS
        if mean != 0 and row["arpa"] is not None:
            row["ltv"] = round_half_up(row["arpa"] * margin / mean)


def _growth(current: int, earlier: int | None) -> Fraction | None:
    return None if earlier is None else rate(current - earlier, earlier)


def _add_retention(
    row: Row, retained: dict[tuple[int, Any], tuple[int, int, int]] | None, key: tuple[int, Any]
) -> None:
    if retained is None:  # not asked for
        row["nrr_12m"] = row["grr_12m"] = None
        return
    then, now, capped = retained.get(key) or (0, 0, 0)
    row["nrr_12m"] = rate(now, then)
    row["grr_12m"] = rate(capped, then)


def _add_cac(row: Row, spend: int | None, by: str | None, margin: Fraction) -> None:
    split = by is None or by in ("source", "campaign")
    row["marketing_spend"] = (spend or 0) if split else None
    row["cac"] = ratio_of_money(spend or 0, row["new_customers"]) if split else None
    row["ltv_to_cac"] = (
        rate(row["ltv"], row["cac"]) if row["ltv"] is not None and row["cac"] is not None else None
    )
    payback = None
    if row["cac"] is not None and row["arpa"] is not None:
        payback = rate(row["cac"], row["arpa"] * margin)
    row["cac_payback_months"] = payback


def _finish(row: Row) -> None:
    for name, value in row.items():
        if isinstance(value, Fraction):
            row[name] = as_decimal(value)


def _marketing_spend(
    connection: Connection, periods: Sequence[Period], by: str | None, currency: str
) -> dict[tuple[int, Any], int]:
    """Spend per (period index, group), converted at the rate in force on the period's first
    day; a month's spend belongs to the period containing the month's first day."""
    if by not in (None, "source", "campaign"):
        return {}
    m = marketing_spend.c
    rows = connection.execute(
        select(m.month, m.source, m.campaign, m.amount_minor, m.currency)
    ).all()
    # The rate table is needed only for spend in another currency.
    fx = load_fx_rates(connection) if any(row.currency != currency for row in rows) else None
    totals: dict[tuple[int, Any], Fraction] = defaultdict(Fraction)
    starts = [p.start for p in periods]
    for row in rows:
        first_day = date.fromisoformat(f"{row.month}-01")
        index = _index_of(starts, periods[-1].end, first_day)
        if index is None:
            continue
        amount = Fraction(row.amount_minor)
        if fx is not None and row.currency != currency:
            period_rate = fx.rate_on(row.currency, periods[index].start)
            if period_rate is None:
                raise MetricsError(
                    f"no {row.currency} fx rate on or before {periods[index].start} for the "
                    f"marketing spend of {row.month}"
                )
            amount *= conversion_factor(row.currency, currency, period_rate)
        key = None if by is None else (row.source if by == "source" else (row.campaign or None))
        totals[(index, key)] += amount
    return {key: round_half_up(value) for key, value in totals.items()}


def _index_of(starts: Sequence[date], end: date, day: date) -> int | None:
    """The index of the period containing `day`, if any."""
    if day < starts[0] or day >= end:
        return None
    return bisect_right(starts, day) - 1


def _subscription_rows(connection: Connection, periods: list[Period], by: str) -> list[Row]:
    instants = [p.start_us for p in periods] + [periods[-1].end_us]
    balances = queries.subscription_balances(connection, instants, by)
    groups = sorted({key for _, key in balances}, key=lambda g: (g is None, str(g)))
    rows: list[Row] = []
    for index, period in enumerate(periods):
        for key in groups:
            start_mrr, start_customers = balances.get((index, key), (0, 0))
            end_mrr, end_customers = balances.get((index + 1, key), (0, 0))
            row: Row = dict.fromkeys(FIELDS)
            row.update(
                period=period.label,
                group=queries.NONE_GROUP if key is None else key,
                mrr_start=start_mrr,
                mrr_end=end_mrr,
                arr=12 * end_mrr,
                customers_start=start_customers,
                customers_end=end_customers,
            )
            rows.append(row)
    return rows
