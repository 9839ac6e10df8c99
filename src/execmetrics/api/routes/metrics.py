"""Metrics, cohorts, the summary and customer-level views."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from execmetrics.api.deps import (
    AnalystCaller,
    DbDep,
    ExecutiveCaller,
    ServerDep,
    ViewerCaller,
    read_in_aggregate,
)
from execmetrics.api.problems import PROBLEM_RESPONSES
from execmetrics.api.schemas import (
    CohortsDocument,
    CustomerOut,
    CustomerPage,
    MetricsDocument,
    SummaryDocument,
)
from execmetrics.metrics.cache import cohorts_document, metrics_document, summary_document
from execmetrics.metrics.customers import customer_detail, customer_page
from execmetrics.metrics.periods import default_range

router = APIRouter(prefix="/api/v1", tags=["metrics"], responses=PROBLEM_RESPONSES)

PERIOD_PATTERN = r"^(19|2[0-9])[0-9]{2}(-[0-9]{2}(-[0-9]{2})?|-W[0-9]{2}|-Q[1-4])?$"
From = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=10,
        pattern=PERIOD_PATTERN,
        description="First period, e.g. 2024-01",
    ),
]
To = Annotated[
    str | None,
    Query(max_length=10, pattern=PERIOD_PATTERN, description="Last period, e.g. 2025-12"),
]
Interval = Annotated[Literal["week", "month", "quarter", "year"], Query()]
Tz = Annotated[
    str, Query(max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$", description="IANA time zone")
]
By = Annotated[
    str | None,
    Query(max_length=105, pattern=r"^[A-Za-z0-9_.\-]+$", description="segment, country, source, "
          "campaign, currency, plan, tier or attr.NAME"),
]  # fmt: skip
JSON_DOCUMENT: dict[str, Any] = {"content": {"application/json": {}}}


def _json(document: str) -> Response:
    # The same text `execmetrics ... --format json` prints.
    return Response(document + "\n", media_type="application/json")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"model": MetricsDocument, **JSON_DOCUMENT}},
)
def metrics(
    _: AnalystCaller,
    connection: DbDep,
    state: ServerDep,
    first: From = None,
    to: To = None,
    interval: Interval = "month",
    by: By = None,
    tz: Tz = "UTC",
) -> Response:
    """MRR, ARR, movements, churn, retention, LTV and CAC per period (docs/metrics.md)."""
    start, end = default_range(first, to, interval, tz)
    return _json(metrics_document(state.cache, connection, start, end, interval, tz, by))


@router.get(
    "/cohorts",
    response_class=Response,
    responses={200: {"model": CohortsDocument, **JSON_DOCUMENT}},
)
def cohorts(
    _: AnalystCaller,
    connection: DbDep,
    state: ServerDep,
    first: From = None,
    to: To = None,
    interval: Interval = "month",
    tz: Tz = "UTC",
) -> Response:
    """Logo, revenue and activity retention of each sign-up cohort."""
    start, end = default_range(first, to, interval, tz)
    return _json(cohorts_document(state.cache, connection, start, end, interval, tz))


@router.get(
    "/summary",
    response_class=Response,
    responses={200: {"model": SummaryDocument, **JSON_DOCUMENT}},
)
def summary(_: ViewerCaller, connection: DbDep, state: ServerDep, tz: Tz = "UTC") -> Response:
    """The latest complete month and the month to date, each figure with its previous value;
    `as_of` is when the figures were computed from the current data."""
    read_in_aggregate(connection)
    return _json(summary_document(state.cache, connection, tz))


@router.get("/customers", response_model=CustomerPage)
def customers(
    _: ExecutiveCaller,
    connection: DbDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    after: Annotated[str | None, Query(max_length=200)] = None,
) -> CustomerPage:
    """Customers with their current MRR, by customer id, a page at a time."""
    return CustomerPage.model_validate(customer_page(connection, limit, after))


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def customer(
    _: ExecutiveCaller, connection: DbDep, customer_id: Annotated[str, Path(max_length=200)]
) -> CustomerOut:
    """One customer, its current MRR and every MRR movement."""
    return CustomerOut.model_validate(customer_detail(connection, customer_id))
