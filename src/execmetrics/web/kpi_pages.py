"""The KPIs page: each KPI's value, target, benchmark band, status and trend."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection

from execmetrics import render
from execmetrics.alerts.service import (
    list_instances,
)
from execmetrics.api.deps import (
    DbDep,
    ServerDep,
)
from execmetrics.kpi.benchmarks import (
    Band,
    BandsError,
    band_beside,
    load_bands,
)
from execmetrics.kpi.definitions import Category, KpiDefinition, Period
from execmetrics.kpi.evaluation import current_values, value_history
from execmetrics.kpi.service import current_kpis
from execmetrics.kpi.targets import Threshold
from execmetrics.money import currency_exponent
from execmetrics.settings_store import reporting_currency
from execmetrics.web.pages import (
    ViewerPage,
    render_page,
)

router = APIRouter(include_in_schema=False)

# ------------------------------------------------------------------------------------------

TREND_PERIODS = 12
PERIOD_NAMES = {
    Period.MONTH_TO_DATE: "month to date",
    Period.LAST_COMPLETE_MONTH: "last complete month",
    Period.QUARTER_TO_DATE: "quarter to date",
    Period.YEAR_TO_DATE: "year to date",
}
STATUS_TEXT = {
    "alert": "Alert firing",
    "met": "Target met",
    "missed": "Target missed",
    "none": "No target",
}


def kpi_status(met: bool | None, alerting: bool) -> str:
    """The colour of a KPI card: amber while an alert on it fires, else its target's verdict."""
    if alerting:
        return "alert"
    if met is None:
        return "none"
    return "met" if met else "missed"


def chart_number(value: Fraction | None, unit: str, exponent: int) -> float | None:
    """A KPI value in the units its card shows: money in major units, percent in percent."""
    if value is None:
        return None
    if unit == "money":
        return float(value / 10**exponent)
    if unit == "percent":
        return float(value * 100)
    return float(value)


def _target_text(definition: KpiDefinition, goal: Fraction | None, currency: str) -> str | None:
    """The goal for the period and any thresholds, in the KPI's unit."""

    def shown(value: Fraction) -> str:
        return render.format_kpi_value(value, definition.unit.value, currency)

    parts = [f"goal {shown(goal)}"] if goal is not None else []
    for target in definition.targets:
        if isinstance(target, Threshold) and target.at_least is not None:
            parts.append(f"at least {shown(target.at_least)}")
        if isinstance(target, Threshold) and target.at_most is not None:
            parts.append(f"at most {shown(target.at_most)}")
    return ", ".join(parts) or None


def _band_view(band: Band, unit: str, currency: str) -> dict[str, Any]:
    return {
        "basis": band.basis.value,
        "population": band.population,
        "figures": [
            {
                "name": name,
                "value": render.format_kpi_value(value, unit, currency),
                "meaning": getattr(band.meaning, name),
            }
            for name, value in band.figures().items()
        ],
        "publisher": band.source.publisher,
        "title": band.source.title,
        "year": band.source.year,
        "url": band.source.url,
    }


def _trend(connection: Connection, name: str, unit: str, currency: str) -> dict[str, Any]:
    """The KPI's last periods for its trend line: labels, numbers to draw, texts to show."""
    rows = value_history(connection, name)[-TREND_PERIODS:]
    exponent = currency_exponent(currency)
    return {
        "labels": [row["period"] for row in rows],
        "values": [chart_number(row["value"], unit, exponent) for row in rows],
        "texts": [render.format_kpi_value(row["value"], unit, currency) for row in rows],
    }


def _alerting_kpis(connection: Connection) -> set[str]:
    """The KPIs a firing (or recovering) alert names."""
    return {
        row["labels"]["kpi"]
        for row in list_instances(connection, alerting_only=True)
        if "kpi" in row["labels"]
    }


def _kpi_card(
    connection: Connection,
    current: dict[str, Any],
    definition: KpiDefinition,
    bands: list[Band],
    alerting: set[str],
    currency: str,
) -> dict[str, Any]:
    """What a KPI's card shows, from its latest stored value."""
    unit = definition.unit.value
    status = kpi_status(current["met"], definition.name in alerting)
    fitting = None
    if current["period"] is not None:
        fitting = band_beside(bands, definition.name, definition.metric, current["period"])
    return {
        "name": definition.name,
        "title": definition.title,
        "category": definition.category.value,
        "value": render.format_kpi_value(current["value"], unit, currency),
        "period": current["period"],
        "period_name": PERIOD_NAMES[definition.period],
        "target": _target_text(definition, current["goal"], currency),
        "met": current["met"],
        "has_targets": bool(definition.targets),
        "status": status,
        "status_text": STATUS_TEXT[status],
        "band": _band_view(fitting, unit, currency) if fitting else None,
        "trend_json": json.dumps(_trend(connection, definition.name, unit, currency)),
    }


def _bands(state: ServerDep) -> tuple[list[Band], str | None]:
    """The benchmark bands, or none and why when the configured file has problems."""
    try:
        return load_bands(state.settings.benchmarks_file), None
    except BandsError as error:
        return [], f"Benchmark bands are not shown: {error.problems[0]}"


CATEGORIES = tuple(item.value for item in Category)


def _kpis_shown(
    connection: Connection, definitions: dict[str, KpiDefinition], category: str | None
) -> list[dict[str, Any]]:
    """The current values of the KPIs of one category (or all), by category, then title."""

    def order(current: dict[str, Any]) -> tuple[int, str]:
        definition = definitions[current["name"]]
        return CATEGORIES.index(definition.category.value), definition.title.lower()

    values = current_values(connection)
    chosen = [v for v in values if category in (None, definitions[v["name"]].category.value)]
    return sorted(chosen, key=order)


@router.get("/kpis", response_class=HTMLResponse)
def kpis_page(
    request: Request,
    caller: ViewerPage,
    connection: DbDep,
    state: ServerDep,
    category: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    chosen = category if category in CATEGORIES else None
    definitions = {name: stored.definition for name, stored in current_kpis(connection).items()}
    currency = reporting_currency(connection)
    bands, notice = _bands(state)
    alerting = _alerting_kpis(connection)
    cards = [
        _kpi_card(connection, current, definitions[current["name"]], bands, alerting, currency)
        for current in _kpis_shown(connection, definitions, chosen)
    ]
    if category and chosen is None:
        notice = f"There is no category {category!r}; showing every KPI."
    context = {
        "cards": cards,
        "categories": CATEGORIES,
        "chosen": chosen,
        "currency": currency,
        "notice": notice,
    }
    return render_page(request, "kpis.html", caller, context)
