"""Ingesting JSON batches, with the validation and all-or-nothing rule of `execmetrics ingest`,
and the history of ingestions."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request

from execmetrics.accounts.roles import Role
from execmetrics.api.deps import (
    AnalystCaller,
    DbDep,
    ExecutiveCaller,
    ServerDep,
    ServerState,
    set_database_role,
)
from execmetrics.api.problems import PROBLEM_RESPONSES
from execmetrics.api.schemas import EventBatch, IngestionPage, IngestOut, KindCountsOut
from execmetrics.audit.chain import append
from execmetrics.ingest.problems import RowError
from execmetrics.ingest.readers import Record, Row, record_of_row, scalar_text
from execmetrics.ingest.rows import (
    ACTIVITY_COLUMNS,
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    REQUIRED_COLUMNS,
    TICKET_COLUMNS,
)
from execmetrics.ingest.service import ingest_in_transaction, ingestion_history
from execmetrics.metrics.cache import warm_documents

log = logging.getLogger("execmetrics.api")

router = APIRouter(prefix="/api/v1", tags=["ingestion"], responses=PROBLEM_RESPONSES)

Kind = Literal[
    "customers", "subscription_events", "fx_rates", "marketing_spend", "support_tickets",
    "activity_events",
]  # fmt: skip
# Fields a row of each kind may have; customers also take custom attributes.
KNOWN_FIELDS = {
    "customers": set(CUSTOMER_COLUMNS),
    "subscription_events": set(EVENT_COLUMNS),
    "fx_rates": {"date", "currency", "rate"},
    "marketing_spend": {"month", "source", "campaign", "amount_minor", "currency"},
    "support_tickets": set(TICKET_COLUMNS),
    "activity_events": set(ACTIVITY_COLUMNS),
}


def _rows(kind: str, batch: EventBatch) -> Iterator[tuple[int, Row | Record | RowError]]:
    """Rows numbered from 1, as `rows[N]` in problem reports."""
    for number, record in enumerate(batch.rows, start=1):
        unknown = sorted(set(record) - KNOWN_FIELDS[kind]) if kind != "customers" else []
        missing = [column for column in REQUIRED_COLUMNS[kind] if column not in record]
        if unknown:
            yield number, RowError(unknown[0], "unknown field")
        elif missing:
            yield number, RowError(missing[0], "required but missing")
        else:
            try:
                row = {key: scalar_text(value, key) for key, value in record.items()}
            except RowError as error:
                yield number, error
                continue
            # Activity events are staged as tuples, the shape their bulk path reads.
            yield number, record_of_row(row, ACTIVITY_COLUMNS) if kind == "activity_events" else row


@router.post("/events/{kind}", response_model=IngestOut)
def ingest_batch(
    request: Request,
    caller: ExecutiveCaller,
    connection: DbDep,
    state: ServerDep,
    background: BackgroundTasks,
    kind: Kind,
    batch: EventBatch,
) -> IngestOut:
    """Validate and store a batch in one transaction: every row or none. Rows whose id is
    already stored with the same content are counted as unchanged; a support ticket stored
    before with another closing time, priority or category is updated."""
    result = ingest_in_transaction(
        connection,
        [(kind, f"{kind}.rows", _rows(kind, batch))],
        actor=caller.label,
        keep_activity_rows=state.settings.keep_activity_rows,
    )
    counts = result.counts[kind]
    entry = request.state.audit
    entry.outcome = "200"
    entry.parameters = {
        "kind": kind,
        "rows": len(batch.rows),
        "inserted": counts.inserted,
        "unchanged": counts.unchanged,
        "updated": counts.updated,
        "ingestion_id": result.ingestion_id,
    }
    # Recorded in the ingestion's own transaction: both are written, or neither.
    append(connection, entry)
    request.state.audit_written = True
    background.add_task(_warm, state)
    return IngestOut(
        ingestion_id=result.ingestion_id,
        counts={kind: KindCountsOut(**vars(counts))},
        ledger_customers=result.ledger.customers,
        ledger_movements=result.ledger.movements,
    )


def _warm(state: ServerState) -> None:
    """After the response: evaluate KPIs and alert rules on the new data and measure its
    quality (this process's scheduler and analytics job, if it runs them), and compute the
    default documents."""
    state.wake_scheduler.set()
    state.wake_analytics.set()
    try:
        with state.engine.begin() as connection:
            set_database_role(connection, Role.ANALYST)
            warm_documents(state.cache, connection)
    except Exception:  # the ingestion is done; a cold cache only costs the next request time
        log.exception("documents not warmed after an ingestion")


@router.get("/ingestions", response_model=IngestionPage)
def ingestions(
    _: AnalystCaller,
    connection: DbDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> IngestionPage:
    """Ingestions, newest first: who, when, which sources and how many rows."""
    return IngestionPage.model_validate({"items": ingestion_history(connection, limit, before)})
