"""Storing customer segmentations and reading them back: every segments query in one place.

Each run keeps its summary (k, how k was chosen, the silhouette, each segment's name, size,
MRR, centroid and centre) for good, or why no segmentation could be made that day. Every
customer's segment is kept for the runs of the last ASSIGNMENT_DAYS days (at least the
newest run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

from sqlalchemy import Connection, delete, func, insert, select

from execmetrics.analytics.segments import Segmentation, segmentation_document
from execmetrics.store.tables import customers, segment_assignments, segment_runs

ASSIGNMENT_DAYS = 35
INSERT_BATCH = 5000


@dataclass(frozen=True)
class SegmentRun:
    id: int
    as_of: date
    computed_at: int  # microseconds
    k: int
    chosen_by: str
    silhouette: float | None  # None when no segmentation could be made
    rows: int  # the paying customers segmented (or found, when too few)
    currency: str
    # As `execmetrics segments --format json` gives them: segment (the number), name, size,
    # share, mrr, centroid, centre, standing.
    segments: list[dict[str, Any]]
    notes: list[str]
    problem: str | None  # why no segmentation could be made that day

    def names(self) -> dict[int, str]:
        return {int(found["segment"]): str(found["name"]) for found in self.segments}


def save_segmentation(
    connection: Connection, result: Segmentation, keys: Mapping[str, int], now: int
) -> int:
    """Stores a segmentation of the company's customers (`keys`: each customer id's key);
    returns its run. Drops the assignments of runs older than ASSIGNMENT_DAYS."""
    assert result.as_of is not None and result.currency is not None
    document = segmentation_document(result)
    run = _saved_run(
        connection, as_of=result.as_of, computed_at=now, k=result.k,
        chosen_by=result.chosen_by, silhouette=document["silhouette"], rows=result.rows,
        currency=result.currency, segments=document["segments"], notes=result.notes,
        problem=None,
    )  # fmt: skip
    rows = [
        {"run_id": run, "customer_key": keys[customer_id], "segment": number}
        for customer_id, number in result.assignments.items()
    ]
    for start in range(0, len(rows), INSERT_BATCH):
        connection.execute(insert(segment_assignments), rows[start : start + INSERT_BATCH])
    r = segment_runs.c
    oldest_kept = result.as_of - timedelta(days=ASSIGNMENT_DAYS)
    stale = select(r.id).where(r.as_of < oldest_kept, r.id != run)
    connection.execute(delete(segment_assignments).where(segment_assignments.c.run_id.in_(stale)))
    return run


def save_problem(
    connection: Connection, as_of: date, k: int, found: int, currency: str, problem: str, now: int
) -> int:
    """Records that no segmentation of `k` segments could be made as of the date, and why;
    `found` is how many paying customers there were. Returns the run."""
    return _saved_run(
        connection, as_of=as_of, computed_at=now, k=k, chosen_by="default", silhouette=None,
        rows=found, currency=currency, segments=[], notes=[], problem=problem,
    )  # fmt: skip


def _saved_run(connection: Connection, **values: Any) -> int:
    result = connection.execute(insert(segment_runs).values(**values))
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def latest_segmentation(connection: Connection) -> SegmentRun | None:
    """The newest run that made a segmentation."""
    r = segment_runs.c
    query = select(segment_runs).where(r.problem.is_(None)).order_by(r.id.desc()).limit(1)
    return _run(connection.execute(query).first())


def latest_attempt(connection: Connection) -> SegmentRun | None:
    """The newest run, whether or not it made a segmentation."""
    query = select(segment_runs).order_by(segment_runs.c.id.desc()).limit(1)
    return _run(connection.execute(query).first())


def _run(row: Any) -> SegmentRun | None:
    if row is None:
        return None
    found = row._mapping
    return SegmentRun(
        id=int(found["id"]), as_of=found["as_of"], computed_at=int(found["computed_at"]),
        k=int(found["k"]), chosen_by=found["chosen_by"], silhouette=found["silhouette"],
        rows=int(found["rows"]), currency=found["currency"],
        segments=cast(list[dict[str, Any]], found["segments"]),
        notes=cast(list[str], found["notes"]), problem=found["problem"],
    )  # fmt: skip


def why_none_yet(connection: Connection) -> str:
    """Why there is no stored segmentation: none tried yet, or the newest try's reason."""
    attempt = latest_attempt(connection)
    if attempt is None or attempt.problem is None:
        return "no customer segments yet: the daily analytics job stores them once a day"
    return (
        f"no customer segments yet: the daily analytics job could not make them as of "
        f"{attempt.as_of}: {attempt.problem}"
    )


def segmented_on(connection: Connection, day: date) -> bool:
    """Whether a run as of `day` is stored, whether or not it made a segmentation."""
    r = segment_runs.c
    return connection.execute(select(r.id).where(r.as_of == day).limit(1)).first() is not None


def run_assignments(
    connection: Connection, run: SegmentRun, segment: int | None, limit: int, offset: int = 0
) -> tuple[int, list[dict[str, Any]]]:
    """The run's customers (of one segment, or all) in order of their own id, each with its
    segment's number and name: (how many in all, this page of them)."""
    a = segment_assignments.c
    chosen = [a.run_id == run.id] + ([] if segment is None else [a.segment == segment])
    total = connection.execute(
        select(func.count()).select_from(segment_assignments).where(*chosen)
    ).scalar_one()
    rows = connection.execute(
        select(customers.c.customer_id, a.segment)
        .join(customers, customers.c.id == a.customer_key)
        .where(*chosen)
        .order_by(customers.c.customer_id)
        .limit(limit)
        .offset(offset)
    ).all()
    names = run.names()
    return int(total), [
        {"customer_id": customer_id, "segment": number, "name": names[number]}
        for customer_id, number in rows
    ]
