"""The Forecast page (a fan chart of a series' forecast, with the chosen model's backtest beside
the baseline's) and the Data quality page (scores per dataset and dimension, and the failing
checks with example ids). Both are for analysts and above, as GET /api/v1/forecast and
/api/v1/quality are, and show the same documents. The Churn risk page (the newest scoring run,
riskiest customers first, with the model that scored them) is for executives and admins, as
GET /api/v1/churn/risk is."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime
from fractions import Fraction
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Connection

from execmetrics import render
from execmetrics.analytics.churn import WEIGHTED, ChurnModel
from execmetrics.analytics.churn_store import (
    NO_SCORES_YET,
    StoredModel,
    latest_model,
    latest_run,
    run_scores,
)
from execmetrics.analytics.forecast import MAX_HORIZON, ForecastError
from execmetrics.analytics.metric_series import (
    KPI_PREFIX,
    METRIC_SERIES,
    NamedSeries,
    stored_series,
)
from execmetrics.analytics.quality import DIMENSIONS
from execmetrics.analytics.series import SeriesError
from execmetrics.analytics.service import cached_forecast, quality_of
from execmetrics.api.deps import DbDep, ServerDep
from execmetrics.kpi.service import current_kpis
from execmetrics.money import currency_exponent
from execmetrics.settings_store import reporting_currency
from execmetrics.timeutil import parse_duration, parse_timestamp
from execmetrics.web.kpi_pages import chart_number
from execmetrics.web.pages import TEMPLATES, AnalystPage, ExecutivePage, render_page

router = APIRouter(include_in_schema=False)

# Forecast --------------------------------------------------------------------------------------

SERIES_TITLES = {
    "mrr": "MRR",
    "arr": "ARR",
    "customers": "Paying customers",
    "new_mrr": "New MRR",
    "net_new_mrr": "Net new MRR",
    "churned_mrr": "Churned MRR",
}
DEFAULT_SERIES = "mrr"
DEFAULT_HORIZON = 12
# The chart's lines and bands, each a list of numbers (or null) in the axis' units.
CHART_LINES = ("history", "forecast", "lower_95", "upper_95", "lower_80", "upper_80")


def parse_horizon(text: str) -> int:
    """The number of periods to forecast: a whole number from 1 to MAX_HORIZON."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_HORIZON:
        raise ValueError(f"give a whole number of periods from 1 to {MAX_HORIZON}")
    return int(value)


def series_options(connection: Connection) -> dict[str, list[tuple[str, str]]]:
    """The series a forecast may be asked for, as (value, title): the engine's metrics, then
    the current KPIs by title."""
    kpis = sorted(
        ((KPI_PREFIX + name, stored.definition.title) for name, stored in
         current_kpis(connection).items()),
        key=lambda option: option[1].lower(),
    )  # fmt: skip
    return {
        "Metrics": [(name, SERIES_TITLES.get(name, name)) for name in METRIC_SERIES],
        "KPIs": kpis,
    }


def axis_title(title: str, unit: str, currency: str) -> str:
    if unit == "money":
        return f"{title} ({currency})"
    return f"{title} (%)" if unit == "percent" else title


def fan_chart(named: NamedSeries, document: dict[str, Any], title: str) -> dict[str, Any]:
    """The history and the forecast on one axis of periods. The forecast and its bands start
    at the last value seen, so the fan opens from the history line."""
    unit = named.unit
    exponent = currency_exponent(named.currency) if unit == "money" else 0

    def shown(value: float | None) -> float | None:
        return None if value is None else chart_number(Fraction(value), unit, exponent)

    history = [shown(value) for value in named.series.values]
    points = document["forecast"]
    before: list[float | None] = [None] * (len(history) - 1)
    lines: dict[str, list[float | None]] = {
        "history": history + [None] * len(points),
        **{
            key: before + [history[-1]] + [shown(point[key]) for point in points]
            for key in CHART_LINES[1:]
        },
    }
    return {
        "labels": named.series.labels() + [point["period"] for point in points],
        "axis": axis_title(title, unit, named.currency),
        **lines,
    }


def forecast_rows(named: NamedSeries, document: dict[str, Any]) -> list[dict[str, str]]:
    """Each forecast period with its forecast and intervals as the KPI cards format values."""

    def text(value: float) -> str:
        # Through the decimal text, so 12.3 stays 12.3 rather than its binary neighbour.
        return render.format_kpi_value(Fraction(str(value)), named.unit, named.currency)

    return [
        {"period": point["period"]}
        | {key: text(point[key]) for key in CHART_LINES[1:]}
        for point in document["forecast"]
    ]  # fmt: skip


def _series_title(name: str, options: dict[str, list[tuple[str, str]]]) -> str:
    titles = {value: title for group in options.values() for value, title in group}
    return titles.get(name, name)


@router.get("/forecast", response_class=HTMLResponse)
def forecast_page(
    request: Request,
    caller: AnalystPage,
    state: ServerDep,
    connection: DbDep,
    series: Annotated[str, Query(max_length=70)] = DEFAULT_SERIES,
    horizon: Annotated[str, Query(max_length=10)] = str(DEFAULT_HORIZON),
) -> Response:
    options = series_options(connection)
    context: dict[str, Any] = {
        "options": options,
        "series": series,
        "horizon": horizon,
        "max_horizon": MAX_HORIZON,
        "forecast": None,
        "notice": None,
    }
    try:
        periods = parse_horizon(horizon)
    except ValueError as error:
        context["notice"] = f"Horizon: {error}."
        return render_page(request, "forecast.html", caller, context, status=422)
    try:
        today = datetime.now(UTC).date()
        ledger = functools.partial(state.cache.current_ledger, connection)
        named = stored_series(connection, series, today, ledger=ledger)
        document = cached_forecast(state.cache, named, periods)
    except (SeriesError, ForecastError) as error:
        context["notice"] = f"Series: {str(error).removeprefix('series: ')}."
        return render_page(request, "forecast.html", caller, context, status=422)
    title = _series_title(series, options)
    context["forecast"] = {
        "title": title,
        "document": document,
        "history_periods": len(named.series.values),
        "rows": forecast_rows(named, document),
        "chart_json": json.dumps(fan_chart(named, document, title)),
    }
    return render_page(request, "forecast.html", caller, context)


# Data quality ----------------------------------------------------------------------------------

DEFAULT_FRESHNESS = "2d"


def score_band(score: float | None) -> str:
    """The colour of a score: good from 95, fair from 80, else poor."""
    if score is None:
        return "none"
    return "good" if score >= 95 else "fair" if score >= 80 else "poor"


def score_text(score: float | None) -> str:
    return "-" if score is None else f"{score:.2f}"


TEMPLATES.env.filters["score"] = score_text
TEMPLATES.env.filters["score_band"] = score_band


def quality_view(document: dict[str, Any]) -> dict[str, Any]:
    """The quality document laid out for the page: one row per dataset with a column per
    dimension (None where it has no check), and the checks split into failing and passing."""
    datasets = [
        {
            "name": name,
            "score": found["score"],
            "dimensions": [found["dimensions"].get(dimension) for dimension in DIMENSIONS],
        }
        for name, found in document["datasets"].items()
    ]
    return {
        "measured_at": parse_timestamp(document["measured_at"]),
        "overall": document["overall"],
        "datasets": datasets,
        "failing": [check for check in document["checks"] if check["failing"] > 0],
        "passing": [check for check in document["checks"] if check["failing"] == 0],
    }


@router.get("/quality", response_class=HTMLResponse)
def quality_page(
    request: Request,
    caller: AnalystPage,
    connection: DbDep,
    freshness: Annotated[str, Query(max_length=12)] = DEFAULT_FRESHNESS,
) -> Response:
    context: dict[str, Any] = {
        "freshness": freshness,
        "dimensions": DIMENSIONS,
        "report": None,
        "notice": None,
    }
    try:
        limit = parse_duration(freshness)
    except ValueError as error:
        context["notice"] = f"Freshness: {error}."
        return render_page(request, "quality.html", caller, context, status=422)
    context["report"] = quality_view(quality_of(connection, limit))
    return render_page(request, "quality.html", caller, context)


# Churn risk ------------------------------------------------------------------------------------

CHURN_PAGE_SIZE = 50
METHOD_TITLES = {
    "gradient_boosting": "Gradient boosting",
    "logistic_regression": "Logistic regression",
    WEIGHTED: "Weighted risk score",
}
MEASURES = ("roc_auc", "pr_auc", "brier")


def page_count(customers: int) -> int:
    """Pages of CHURN_PAGE_SIZE customers; one (empty) page when none was scored."""
    return max(1, (customers + CHURN_PAGE_SIZE - 1) // CHURN_PAGE_SIZE)


def parse_page(text: str, pages: int) -> int:
    """The page of the table asked for: a whole number from 1 to the number of pages."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= pages:
        raise ValueError(f"give a whole number from 1 to {pages}")
    return int(value)


def judged_figures(model: ChurnModel) -> list[dict[str, Any]]:
    """Each method's ROC AUC, PR AUC and Brier score on the test snapshot, when the training
    got as far as judging them (not when history was too short)."""
    judged: dict[str, dict[str, float]] = model.evaluation.get("test", {})
    return [
        {"method": name, "title": METHOD_TITLES.get(name, name), "chosen": name == model.method}
        | {measure: f"{scores[measure]:.3f}" for measure in MEASURES}
        for name, scores in judged.items()
    ]  # fmt: skip


def model_view(stored: StoredModel) -> dict[str, Any]:
    model = stored.model
    split = model.evaluation.get("split", {})
    return {
        "version": stored.version,
        "method": model.method,
        "title": METHOD_TITLES.get(model.method, model.method),
        "weighted": model.method == WEIGHTED,
        "reason": model.reason,
        "horizon_days": model.horizon_days,
        "trained_at": stored.trained_at,
        "figures": judged_figures(model),
        "test_snapshot": split.get("test_snapshot"),
        "test_rows": f"{split.get('test_rows', 0):,}",
        "test_churned": f"{split.get('test_churned', 0):,}",
    }


def risk_row(rank: int, scored: dict[str, Any], currency: str) -> dict[str, Any]:
    """One customer for the table: its risk as a percent, MRR in whole units and its factors
    as stored."""
    return {
        "rank": rank,
        "customer_id": scored["customer_id"],
        "name": scored["name"],
        "risk": f"{scored['probability']:.1%}",
        "mrr": render.format_value("mrr", scored["mrr"], currency),
        "factors": list(scored["factors"]),
    }


def paging_view(page: int, pages: int, customers: int) -> dict[str, Any]:
    first = (page - 1) * CHURN_PAGE_SIZE
    return {
        "page": page,
        "pages": pages,
        "first": first + 1,
        "last": min(first + CHURN_PAGE_SIZE, customers),
        "previous": f"/churn?page={page - 1}" if page > 1 else None,
        "next": f"/churn?page={page + 1}" if page < pages else None,
    }


@router.get("/churn", response_class=HTMLResponse)
def churn_page(
    request: Request,
    caller: ExecutivePage,
    connection: DbDep,
    page: Annotated[str, Query(max_length=10)] = "1",
) -> Response:
    context: dict[str, Any] = {"churn": None, "empty": None, "notice": None}
    run = latest_run(connection)
    if run is None:
        context["empty"] = NO_SCORES_YET[:1].upper() + NO_SCORES_YET[1:] + "."
        return render_page(request, "churn.html", caller, context)
    pages = page_count(run["customers"])
    try:
        number = parse_page(page, pages)
    except ValueError as error:
        context["notice"] = f"Page: {error}."
        return render_page(request, "churn.html", caller, context, status=422)
    # The model that scored the run, which a newer training may since have replaced.
    stored = latest_model(connection, run["model_id"])
    assert stored is not None
    currency = reporting_currency(connection)
    offset = (number - 1) * CHURN_PAGE_SIZE
    _, rows = run_scores(connection, run["id"], CHURN_PAGE_SIZE, offset)
    context["churn"] = {
        "as_of": run["as_of"].isoformat(),
        "scored_at": run["scored_at"],
        "customers": f"{run['customers']:,}",
        "currency": currency,
        "model": model_view(stored),
        "rows": [risk_row(offset + i + 1, row, currency) for i, row in enumerate(rows)],
        "paging": paging_view(number, pages, run["customers"]),
    }
    return render_page(request, "churn.html", caller, context)
