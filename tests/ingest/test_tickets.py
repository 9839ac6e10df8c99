"""Support tickets: stored by customer, a later export may close or re-prioritise a ticket,
and bad rows are refused naming the line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from tests.ingest.support import TICKET_FIELDS, TICKETS, write_company, write_records

from execmetrics.ingest.problems import IngestError
from execmetrics.ingest.service import ingest_files
from execmetrics.store.tables import customers, support_tickets
from execmetrics.timeutil import parse_timestamp


def stored(engine: Engine) -> dict[str, dict[str, object]]:
    t = support_tickets.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(t.ticket_id, customers.c.customer_id, t.opened_at, t.closed_at, t.priority,
                   t.category, t.source)
            .join(customers, customers.c.id == t.customer_key)
        ).all()  # fmt: skip
    return {row.ticket_id: dict(row._mapping) for row in rows}


def tickets_file(
    folder: Path, records: list[dict[str, object]], name: str = "support_tickets"
) -> Path:
    return write_records(folder / f"{name}.csv", records, TICKET_FIELDS)


def test_tickets_are_stored_by_customer_with_their_priority(engine: Engine, tmp_path: Path) -> None:
    result = ingest_files(engine, [write_company(tmp_path / "company")])
    assert result.counts["support_tickets"].inserted == 3
    found = stored(engine)
    assert found["t1"]["customer_id"] == "c-smb" and found["t1"]["category"] == "billing"
    assert found["t1"]["closed_at"] == parse_timestamp("2024-02-03T11:30:00Z")
    assert (found["t2"]["priority"], found["t2"]["closed_at"]) == ("urgent", None)
    assert found["t3"]["source"] == f"{tmp_path / 'company' / 'support_tickets.csv'}:4"


def test_a_later_export_closes_a_ticket_and_nothing_else_changes(
    engine: Engine, tmp_path: Path
) -> None:
    ingest_files(engine, [write_company(tmp_path / "company")])
    closed = [dict(TICKETS[1], closed_at="2024-04-12T10:00:00Z", priority="high"), TICKETS[2]]
    later = tickets_file(tmp_path / "later", closed)
    result = ingest_files(engine, [later])
    counts = result.counts["support_tickets"]
    assert (counts.received, counts.inserted, counts.unchanged, counts.updated) == (2, 0, 1, 1)
    found = stored(engine)
    assert found["t2"]["closed_at"] == parse_timestamp("2024-04-12T10:00:00Z")
    assert found["t2"]["priority"] == "high" and found["t2"]["source"] == f"{later}:2"
    assert found["t3"]["source"].endswith("company/support_tickets.csv:4")


def test_a_ticket_that_moves_customer_or_opening_time_is_refused(
    engine: Engine, tmp_path: Path
) -> None:
    ingest_files(engine, [write_company(tmp_path / "company")])
    moved = tickets_file(tmp_path / "moved", [dict(TICKETS[0], opened_at="2024-02-04T09:00:00Z")])
    with pytest.raises(IngestError) as raised:
        ingest_files(engine, [moved])
    [problem] = raised.value.problems
    assert (problem.source, problem.line, problem.column) == (str(moved), 2, "ticket_id")
    assert "'t1' was already ingested with different content" in problem.reason
    assert stored(engine)["t1"]["opened_at"] == parse_timestamp("2024-02-03T09:00:00Z")


@pytest.mark.parametrize(
    ("change", "column", "reason"),
    [
        ({"priority": "p1"}, "priority", "expected low, normal, high or urgent, got 'p1'"),
        ({"priority": ""}, "priority", "required but empty"),
        ({"ticket_id": ""}, "ticket_id", "required but empty"),
        ({"opened_at": "yesterday"}, "opened_at", "not an ISO 8601 timestamp: 'yesterday'"),
        ({"closed_at": "2024-13-01T00:00:00Z"}, "closed_at", "not an ISO 8601 timestamp"),
        ({"customer_id": "c-nobody"}, "customer_id", "unknown customer 'c-nobody'"),
    ],
)
def test_a_bad_ticket_is_refused_naming_its_line_and_field(
    engine: Engine, tmp_path: Path, change: dict[str, object], column: str, reason: str
) -> None:
    ingest_files(engine, [write_company(tmp_path / "company")])
    bad = tickets_file(
        tmp_path / "bad",
        [dict(TICKETS[0], ticket_id="t9"), dict(TICKETS[0], ticket_id="t10") | change],
    )
    with pytest.raises(IngestError) as raised:
        ingest_files(engine, [bad])
    [problem] = raised.value.problems
    assert (problem.source, problem.line, problem.column) == (str(bad), 3, column)
    assert reason in problem.reason
    assert set(stored(engine)) == {"t1", "t2", "t3"}  # nothing of the file was kept


def test_a_ticket_closed_before_it_opened_is_kept_for_the_quality_checks(
    engine: Engine, tmp_path: Path
) -> None:
    ingest_files(engine, [write_company(tmp_path / "company")])
    odd = dict(TICKETS[0], ticket_id="t4", closed_at="2024-02-01T00:00:00Z")
    ingest_files(engine, [tickets_file(tmp_path / "odd", [odd])])
    assert stored(engine)["t4"]["closed_at"] < stored(engine)["t4"]["opened_at"]
