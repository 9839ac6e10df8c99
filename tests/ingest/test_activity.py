"""Activity events: kept as daily counts per customer, UTC day and type; idempotent by event
id; the raw rows only when asked for; bad rows refused naming the line and field."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from tests.ingest.support import write_company, write_records

from execmetrics.ingest.problems import IngestError
from execmetrics.ingest.service import ingest_files
from execmetrics.store.tables import (
    activity_daily,
    activity_event_ids,
    activity_events,
    activity_types,
    customers,
)
from execmetrics.timeutil import parse_timestamp

FIELDS = ["event_id", "customer_id", "user_id", "occurred_at", "type", "quantity"]
DAY_2024_02_01 = 19754  # days since 1970-01-01
ACTIVITY: list[dict[str, object]] = [
    {"event_id": "a1", "customer_id": "c-smb", "user_id": "u1",
     "occurred_at": "2024-02-01T09:00:00Z", "type": "login"},
    {"event_id": "a2", "customer_id": "c-smb", "user_id": "u2",
     "occurred_at": "2024-02-01T23:59:59Z", "type": "login"},
    # 00:30 in Paris is still 1 February in UTC.
    {"event_id": "a3", "customer_id": "c-smb", "occurred_at": "2024-02-02T00:30:00+01:00",
     "type": "gallery_upload", "quantity": 40},
    {"event_id": "a4", "customer_id": "c-smb", "occurred_at": "2024-02-02T00:00:00Z",
     "type": "gallery_upload", "quantity": 2},
    {"event_id": "a5", "customer_id": "c-ent", "occurred_at": "2024-02-01", "type": "login"},
]  # fmt: skip


def daily(engine: Engine) -> dict[tuple[str, int, str], tuple[int, int]]:
    d = activity_daily.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(customers.c.customer_id, d.day, activity_types.c.name, d.events, d.quantity)
            .join(customers, customers.c.id == d.customer_key)
            .join(activity_types, activity_types.c.id == d.type_key)
        ).all()
    return {(row[0], row[1], row[2]): (row[3], row[4]) for row in rows}


def activity_file(folder: Path, records: list[dict[str, object]], suffix: str = "csv") -> Path:
    return write_records(folder / f"activity_events.{suffix}", records, FIELDS)


def company_with_activity(folder: Path, suffix: str = "csv") -> Path:
    write_company(folder, suffix)
    activity_file(folder, ACTIVITY, suffix)
    return folder


@pytest.mark.parametrize("suffix", ["csv", "jsonl.gz"])
def test_events_become_daily_counts_per_customer_utc_day_and_type(
    engine: Engine, tmp_path: Path, suffix: str
) -> None:
    result = ingest_files(engine, [company_with_activity(tmp_path / "company", suffix)])
    counts = result.counts["activity_events"]
    assert (counts.received, counts.inserted, counts.unchanged) == (5, 5, 0)
    assert daily(engine) == {
        ("c-smb", DAY_2024_02_01, "login"): (2, 2),
        ("c-smb", DAY_2024_02_01, "gallery_upload"): (1, 40),
        ("c-smb", DAY_2024_02_01 + 1, "gallery_upload"): (1, 2),
        ("c-ent", DAY_2024_02_01, "login"): (1, 1),
    }
    with engine.connect() as connection:
        assert connection.execute(select(activity_events)).all() == []
        ids = dict(connection.execute(select(activity_event_ids.c.event_id,
                                             activity_event_ids.c.ingestion_id)).all())  # fmt: skip
    assert ids == {f"a{n}": result.ingestion_id for n in range(1, 6)}


def test_raw_rows_are_kept_when_asked_for(engine: Engine, tmp_path: Path) -> None:
    ingest_files(engine, [company_with_activity(tmp_path / "company")], keep_activity_rows=True)
    e = activity_events.c
    with engine.connect() as connection:
        rows = connection.execute(
            select(e.event_id, customers.c.customer_id, e.user_id, e.occurred_at,
                   activity_types.c.name, e.quantity)
            .join(customers, customers.c.id == e.customer_key)
            .join(activity_types, activity_types.c.id == e.type_key)
            .order_by(e.event_id)
        ).all()  # fmt: skip
    assert [tuple(row) for row in rows[2:4]] == [
        ("a3", "c-smb", None, parse_timestamp("2024-02-01T23:30:00Z"), "gallery_upload", 40),
        ("a4", "c-smb", None, parse_timestamp("2024-02-02T00:00:00Z"), "gallery_upload", 2),
    ]
    assert rows[0].user_id == "u1" and len(rows) == 5


def test_ingesting_events_again_changes_nothing_and_new_ones_add_to_the_day(
    engine: Engine, tmp_path: Path
) -> None:
    ingest_files(engine, [company_with_activity(tmp_path / "company")])
    again = ingest_files(engine, [tmp_path / "company" / "activity_events.csv"])
    counts = again.counts["activity_events"]
    assert (counts.received, counts.inserted, counts.unchanged) == (5, 0, 5)
    later = [
        ACTIVITY[0],
        {"event_id": "a6", "customer_id": "c-smb", "occurred_at": "2024-02-01T12:00:00Z",
         "type": "login"},
    ]  # fmt: skip
    result = ingest_files(engine, [activity_file(tmp_path / "later", later)])
    counts = result.counts["activity_events"]
    assert (counts.received, counts.inserted, counts.unchanged) == (2, 1, 1)
    assert daily(engine)[("c-smb", DAY_2024_02_01, "login")] == (3, 3)


def test_a_repeated_event_counts_once_within_one_ingestion(engine: Engine, tmp_path: Path) -> None:
    ingest_files(engine, [write_company(tmp_path / "company")])
    # The same event in two files, written differently (an implied quantity of 1).
    first = activity_file(tmp_path / "one", [ACTIVITY[0]])
    second = activity_file(tmp_path / "two", [dict(ACTIVITY[0], quantity=1)], "jsonl")
    result = ingest_files(engine, [first, second])
    counts = result.counts["activity_events"]
    assert (counts.received, counts.inserted, counts.unchanged) == (2, 1, 1)
    assert daily(engine) == {("c-smb", DAY_2024_02_01, "login"): (1, 1)}


def test_an_event_repeated_with_other_content_is_refused(engine: Engine, tmp_path: Path) -> None:
    changed = dict(ACTIVITY[1], event_id="a1")
    folder = tmp_path / "company"
    write_company(folder)
    path = activity_file(folder, [*ACTIVITY, changed])
    with pytest.raises(IngestError) as raised:
        ingest_files(engine, [folder])
    [problem] = raised.value.problems
    assert (problem.source, problem.line, problem.column) == (str(path), 7, "event_id")
    assert problem.reason == f"event_id 'a1' repeats {path}:2 with different content"
    assert daily(engine) == {}


def test_a_stored_event_sent_with_other_content_is_refused_and_nothing_is_written(
    engine: Engine, tmp_path: Path
) -> None:
    first = ingest_files(engine, [company_with_activity(tmp_path / "company")])
    before = daily(engine)
    moved = dict(ACTIVITY[2], customer_id="c-ent")
    fresh = {"event_id": "a9", "customer_id": "c-ent", "occurred_at": "2024-03-01T00:00:00Z",
             "type": "login"}  # fmt: skip
    path = activity_file(tmp_path / "later", [fresh, moved])
    with pytest.raises(IngestError) as raised:
        ingest_files(engine, [path])
    [problem] = raised.value.problems
    assert (problem.source, problem.line, problem.column) == (str(path), 3, "event_id")
    assert problem.reason == (
        f"event_id 'a3' was already ingested with different content "
        f"(ingestion {first.ingestion_id})"
    )
    assert daily(engine) == before


@pytest.mark.parametrize(
    ("change", "column", "reason"),
    [
        ({"event_id": ""}, "event_id", "required but empty"),
        ({"event_id": "x" * 201}, "event_id", "longer than 200 characters (201)"),
        ({"customer_id": "nobody"}, "customer_id", "unknown customer 'nobody'"),
        ({"customer_id": ""}, "customer_id", "required but empty"),
        ({"occurred_at": "yesterday"}, "occurred_at", "not an ISO 8601 timestamp: 'yesterday'"),
        ({"occurred_at": "2024-02-01T09:00:00"}, "occurred_at",
         "timestamp '2024-02-01T09:00:00' needs an offset or Z (e.g. 2024-02-01T09:00:00Z)"),
        ({"occurred_at": ""}, "occurred_at", "required but empty"),
        ({"type": ""}, "type", "required but empty"),
        ({"type": "t" * 201}, "type", "longer than 200 characters (201)"),
        ({"quantity": "0"}, "quantity", "must be at least 1, got 0"),
        ({"quantity": "2.5"}, "quantity",
         "expected a whole number from 1 to 2147483647, got '2.5'"),
    ],
)  # fmt: skip
def test_a_bad_row_is_refused_naming_line_and_field(
    engine: Engine, tmp_path: Path, change: dict[str, object], column: str, reason: str
) -> None:
    ingest_files(engine, [write_company(tmp_path / "company")])
    path = activity_file(tmp_path / "bad", [ACTIVITY[0], dict(ACTIVITY[4], **change)])
    with pytest.raises(IngestError) as raised:
        ingest_files(engine, [path])
    [problem] = raised.value.problems
    assert (problem.source, problem.line, problem.column, problem.reason) == (
        str(path), 3, column, reason,
    )  # fmt: skip
    assert daily(engine) == {}
    with engine.connect() as connection:
        assert connection.execute(select(activity_event_ids)).all() == []


def test_a_header_without_a_required_column_is_refused(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "activity_events.csv"
    path.write_text("event_id,customer_id,type\na1,c-smb,login\n")
    with pytest.raises(IngestError) as raised:
        ingest_files(engine, [path])
    [problem] = raised.value.problems
    assert (problem.source, problem.line) == (str(path), 1)
    assert problem.reason == "required column 'occurred_at' missing from the header"


def test_columns_may_come_in_any_order_and_extra_ones_are_ignored(
    engine: Engine, tmp_path: Path
) -> None:
    ingest_files(engine, [write_company(tmp_path / "company")])
    path = tmp_path / "activity_events.csv"
    path.write_text(
        "type,note,occurred_at,customer_id,event_id\n"
        "login,first visit,2024-02-01T09:00:00Z,c-smb,a1\n"
    )
    ingest_files(engine, [path])
    assert daily(engine) == {("c-smb", DAY_2024_02_01, "login"): (1, 1)}
