"""Forecasts and anomaly judgements of the engine's own series (docs/forecasting.md,
docs/anomalies.md) and the data quality report (docs/quality.md): the same documents as
`execmetrics forecast`, `anomalies` and `quality` print."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import Connection

from execmetrics.analytics.anomaly import AnomalyError
from execmetrics.analytics.forecast import MAX_HORIZON, ForecastError
from execmetrics.analytics.metric_series import NamedSeries, stored_series
from execmetrics.analytics.series import SeriesError
from execmetrics.analytics.service import anomalies_of, cached_forecast, quality_of
from execmetrics.api.deps import AnalystCaller, DbDep, ServerDep, ServerState
from execmetrics.api.problems import PROBLEM_RESPONSES
from execmetrics.api.routes.metrics import Tz
from execmetrics.api.schemas import AnomaliesDocument, ForecastDocument, QualityDocument
from execmetrics.errors import InvalidParameter
from execmetrics.kpi.formula import NAME_PATTERN
from execmetrics.metrics.periods import time_zone
from execmetrics.timeutil import parse_duration

router = APIRouter(prefix="/api/v1", tags=["analytics"], responses=PROBLEM_RESPONSES)

SeriesName = Annotated[
    str,
    Query(
        max_length=70,
        pattern=rf"^[a-z_]+$|^kpi:{NAME_PATTERN}$",
        description="mrr, arr, customers, new_mrr, net_new_mrr, churned_mrr or kpi:NAME",
    ),
]


def _series(state: ServerState, connection: Connection, name: str, tz: str) -> NamedSeries:
    """The named series, a metric's computed from the movement ledger this process keeps."""
    today = datetime.now(time_zone(tz)).date()
    ledger = functools.partial(state.cache.current_ledger, connection)
    try:
        return stored_series(connection, name, today, tz, ledger)
    except SeriesError as error:
        raise InvalidParameter("series", str(error).removeprefix("series: ")) from None


@router.get("/forecast", response_model=ForecastDocument, response_model_exclude_none=True)
def forecast(
    _: AnalystCaller,
    state: ServerDep,
    connection: DbDep,
    series: SeriesName,
    horizon: Annotated[int, Query(ge=1, le=MAX_HORIZON)] = 12,
    tz: Tz = "UTC",
) -> ForecastDocument:
    """The series forecast `horizon` periods ahead, with 80% and 95% intervals, by the model
    that forecast its past best, and that model's backtest MASE beside the baseline's."""
    named = _series(state, connection, series, tz)
    try:
        return ForecastDocument.model_validate(cached_forecast(state.cache, named, horizon))
    except ForecastError as error:
        raise InvalidParameter("series", str(error)) from None


@router.get("/anomalies", response_model=AnomaliesDocument)
def anomalies(
    _: AnalystCaller,
    state: ServerDep,
    connection: DbDep,
    series: SeriesName,
    method: Literal["robust_seasonal", "rolling_zscore"] = "robust_seasonal",
    sensitivity: Annotated[
        float | None,
        Query(gt=0, le=1000, allow_inf_nan=False, description="default: the method's own"),
    ] = None,
    tz: Tz = "UTC",
) -> AnomaliesDocument:
    """Every point of the series judged against the points before it: expected value, band,
    score and whether it is flagged."""
    named = _series(state, connection, series, tz)
    try:
        return AnomaliesDocument.model_validate(anomalies_of(named, method, sensitivity))
    except AnomalyError as error:
        raise InvalidParameter("sensitivity", str(error)) from None


@router.get("/quality", response_model=QualityDocument)
def quality(
    _: AnalystCaller,
    connection: DbDep,
    freshness: Annotated[
        str,
        Query(max_length=12, description="How old the newest row may be: 90m, 36h, 2d"),
    ] = "2d",
) -> QualityDocument:
    """Data quality scores from 0 to 100 per check, per dataset and dimension, per dataset
    and overall, with each check's failing rows and up to five of their ids."""
    try:
        limit = parse_duration(freshness)
    except ValueError as error:
        raise InvalidParameter("freshness", str(error)) from None
    return QualityDocument.model_validate(quality_of(connection, limit))
