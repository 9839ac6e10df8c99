"""The Segments page: the newest stored segmentation of the paying customers (docs/segments.md),
for analysts and above, as GET /api/v1/segments is. The daily analytics job stores one a day:
segmenting a large company takes seconds, too long for a page view."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from execmetrics import render
from execmetrics.analytics.segments_store import SegmentRun, latest_segmentation, why_none_yet
from execmetrics.api.deps import DbDep
from execmetrics.web.pages import AnalystPage, render_page

router = APIRouter(include_in_schema=False)

HOW_K_WAS_CHOSEN = {
    "default": "the default",
    "given": "given",
    "silhouette": "chosen by silhouette",
}


def segment_row(stored: dict[str, Any], currency: str) -> dict[str, str]:
    """One segment for the table: its size, share and MRR, and its centre (the median member)
    in each feature's units, formatted as the command's table formats them."""
    centre = stored["centre"]
    return {
        "segment": str(stored["segment"]),
        "name": stored["name"],
        "size": f"{stored['size']:,}",
        "share": f"{stored['share']:.1%}",
        "mrr": render.format_value("mrr", stored["mrr"], currency),
        "centre_mrr": render.format_value("mrr", centre["mrr"], currency),
        "tenure_days": f"{centre['tenure_days']:,.0f}",
        "logins_30d": f"{centre['logins_30d']:.1f}",
        "feature_breadth_90d": f"{centre['feature_breadth_90d']:.1f}",
        "tickets_90d": f"{centre['tickets_90d']:.1f}",
    }


def segmentation_view(found: SegmentRun) -> dict[str, Any]:
    return {
        "as_of": found.as_of.isoformat(),
        "computed_at": found.computed_at,
        "k": found.k,
        "how_k_was_chosen": HOW_K_WAS_CHOSEN.get(found.chosen_by, found.chosen_by),
        "silhouette": f"{found.silhouette:.4f}" if found.silhouette is not None else "-",
        "rows": f"{found.rows:,}",
        "currency": found.currency,
        "segments": [segment_row(stored, found.currency) for stored in found.segments],
        "notes": found.notes,
    }


@router.get("/segments", response_class=HTMLResponse)
def segments_page(request: Request, caller: AnalystPage, connection: DbDep) -> Response:
    found = latest_segmentation(connection)
    context: dict[str, Any] = {"segmentation": None, "empty": None}
    if found is None:
        reason = why_none_yet(connection)
        context["empty"] = reason[:1].upper() + reason[1:] + "."
    else:
        context["segmentation"] = segmentation_view(found)
    return render_page(request, "segments.html", caller, context)
