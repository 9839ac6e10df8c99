"""Churn risk (docs/churn.md): the newest model's figures for analysts, and customers' risk,
which is for executives and admins only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from execmetrics.analytics.churn_store import (
    NO_SCORES_YET,
    latest_model,
    latest_run,
    run_scores,
)
from execmetrics.api.deps import AnalystCaller, DbDep, ExecutiveCaller
from execmetrics.api.problems import PROBLEM_RESPONSES
from execmetrics.api.schemas import ChurnModelOut, ChurnRiskItem, ChurnRiskPage
from execmetrics.errors import NotFound
from execmetrics.settings_store import reporting_currency
from execmetrics.timeutil import format_micros

router = APIRouter(prefix="/api/v1/churn", tags=["churn"], responses=PROBLEM_RESPONSES)


@router.get("/model", response_model=ChurnModelOut)
def churn_model(_: AnalystCaller, connection: DbDep) -> ChurnModelOut:
    """The newest churn model version: the method in use, why, and its test figures."""
    stored = latest_model(connection)
    if stored is None:
        raise NotFound("no churn model yet: the daily analytics job trains one")
    model = stored.model
    return ChurnModelOut(
        version=stored.version, method=model.method, reason=model.reason,
        horizon_days=model.horizon_days, as_of=model.as_of.isoformat(),
        trained_at=format_micros(stored.trained_at), weights=model.weights,
        evaluation=model.evaluation,
    )  # fmt: skip


@router.get("/risk", response_model=ChurnRiskPage)
def churn_risk(
    _: ExecutiveCaller,
    connection: DbDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ChurnRiskPage:
    """Every paying customer's churn risk from the newest scoring run, riskiest first, with
    MRR and the top factors in words."""
    run = latest_run(connection)
    if run is None:
        raise NotFound(NO_SCORES_YET)
    stored = latest_model(connection, run["model_id"])
    assert stored is not None
    total, rows = run_scores(connection, run["id"], limit, offset)
    return ChurnRiskPage(
        run=run["id"], model_version=stored.version, method=stored.model.method,
        horizon_days=stored.model.horizon_days, as_of=run["as_of"].isoformat(),
        scored_at=format_micros(run["scored_at"]), customers=total,
        currency=reporting_currency(connection),
        items=[ChurnRiskItem.model_validate(row) for row in rows],
    )  # fmt: skip
