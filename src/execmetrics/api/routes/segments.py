"""Customer segments (docs/segments.md): the newest stored segmentation's summary for
analysts, and each customer's segment, which is for executives and admins only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import Connection

from execmetrics.analytics.segments_store import (
    SegmentRun,
    latest_segmentation,
    run_assignments,
    why_none_yet,
)
from execmetrics.api.deps import AnalystCaller, DbDep, ExecutiveCaller
from execmetrics.api.problems import PROBLEM_RESPONSES
from execmetrics.api.schemas import (
    SegmentCustomer,
    SegmentCustomersPage,
    SegmentOut,
    SegmentProfile,
    SegmentsDocument,
)
from execmetrics.errors import InvalidParameter, NotFound
from execmetrics.timeutil import format_micros

router = APIRouter(prefix="/api/v1/segments", tags=["segments"], responses=PROBLEM_RESPONSES)


def newest_segmentation(connection: Connection) -> SegmentRun:
    """The newest stored segmentation, or a 404 that says why there is none."""
    found = latest_segmentation(connection)
    if found is None:
        raise NotFound(why_none_yet(connection))
    return found


def segment_out(stored: dict[str, Any]) -> SegmentOut:
    return SegmentOut(
        segment=stored["segment"], name=stored["name"], size=stored["size"],
        share=stored["share"], mrr=stored["mrr"],
        centre=SegmentProfile.model_validate(stored["centre"]),
        centroid=SegmentProfile.model_validate(stored["centroid"]),
    )  # fmt: skip


@router.get("", response_model=SegmentsDocument)
def segments(_: AnalystCaller, connection: DbDep) -> SegmentsDocument:
    """The newest segmentation of the paying customers: each segment's name, size, share,
    MRR and centre, k and how it was chosen, and the silhouette."""
    found = newest_segmentation(connection)
    assert found.silhouette is not None
    return SegmentsDocument(
        run=found.id, as_of=found.as_of.isoformat(), computed_at=format_micros(found.computed_at),
        k=found.k, chosen_by=found.chosen_by, silhouette=found.silhouette, rows=found.rows,
        currency=found.currency, segments=[segment_out(stored) for stored in found.segments],
        notes=found.notes,
    )  # fmt: skip


@router.get("/customers", response_model=SegmentCustomersPage)
def segment_customers(
    _: ExecutiveCaller,
    connection: DbDep,
    segment: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SegmentCustomersPage:
    """The newest segmentation's customers (of one segment, or all) in order of their id,
    each with its segment's number and name."""
    found = newest_segmentation(connection)
    if segment is not None and segment > found.k:
        raise InvalidParameter(
            "segment", f"expected 1 to {found.k}, the newest segmentation's segments; got {segment}"
        )
    total, rows = run_assignments(connection, found, segment, limit, offset)
    return SegmentCustomersPage(
        run=found.id, as_of=found.as_of.isoformat(), computed_at=format_micros(found.computed_at),
        segment=segment, customers=total,
        items=[SegmentCustomer.model_validate(row) for row in rows],
    )  # fmt: skip
