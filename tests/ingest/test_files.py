"""Ingesting valid files: CSV, JSON Lines and gzip, what is stored, and idempotence."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from tests.ingest.support import (
    COMPANY,
    CUSTOMERS,
    EVENTS,
    event,
    row_dicts,
    snapshot,
    stored_data,
    table_counts,
    write_company,
    write_file,
    write_records,
)

from execmetrics.ingest.service import ingest_files
from execmetrics.store.database import open_database
from execmetrics.store.tables import ingestions
from execmetrics.timeutil import to_micros


def micros(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return to_micros(datetime(year, month, day, hour, minute, tzinfo=UTC))


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[Engine]:
    """A separate SQLite database holding the company ingested from plain CSV files."""
    engine = open_database(f"sqlite:///{tmp_path / 'reference.db'}")
    ingest_files(engine, [write_company(tmp_path / "reference-csv", "csv")])
    yield engine
    engine.dispose()


@pytest.mark.parametrize("suffix", ["jsonl", "ndjson", "csv.gz", "jsonl.gz", "ndjson.gz"])
def test_every_format_stores_the_same_rows_as_csv(
    engine: Engine, reference: Engine, tmp_path: Path, suffix: str
) -> None:
    expected = stored_data(reference)
    for table in (
        "customers",
        "subscription_events",
        "fx_rates",
        "marketing_spend",
        "mrr_movements",
        "subscription_mrr_spans",
    ):
        assert expected[table], f"the reference company left {table} empty"

    ingest_files(engine, [write_company(tmp_path / suffix.replace(".", "-"), suffix)])

    assert stored_data(engine) == expected


def test_formats_can_be_mixed_in_one_folder(
    engine: Engine, reference: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    write_file(folder, "customers", CUSTOMERS, "jsonl")
    write_file(folder, "subscription_events", EVENTS, "csv.gz")
    write_file(folder, "fx_rates", COMPANY["fx_rates"], "ndjson.gz")
    write_file(folder, "marketing_spend", COMPANY["marketing_spend"], "csv")
    write_file(folder, "support_tickets", COMPANY["support_tickets"], "jsonl")
    (folder / "README.md").write_text("not data: ignored in a folder\n")

    ingest_files(engine, [folder])

    assert stored_data(engine) == stored_data(reference)


def test_files_can_be_given_one_by_one(engine: Engine, reference: Engine, tmp_path: Path) -> None:
    folder = write_company(tmp_path / "files", "jsonl.gz")
    ingest_files(engine, sorted(folder.iterdir(), reverse=True))
    assert stored_data(engine) == stored_data(reference)


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_unknown_customer_columns_become_attributes(
    engine: Engine, tmp_path: Path, suffix: str
) -> None:
    ingest_files(engine, [write_company(tmp_path / "in", suffix)])
    stored = row_dicts(engine, "customers", "customer_id")
    assert stored["c-smb"]["attributes"] == {"industry": "photography"}
    assert stored["c-mid-50"]["attributes"] == {"industry": "catering", "region": "Île-de-France"}
    assert stored["c-ent"]["attributes"] == {}
    # The known columns are stored in their own columns, not as attributes.
    assert stored["c-smb"]["acquisition_source"] == "instagram"
    assert stored["c-smb"]["acquisition_campaign"] == "spring-fair"
    assert stored["c-mid-50"]["name"] == "Café Crème Catering"
    assert stored["c-mid-50"]["country"] == "FR"


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_segment_is_derived_from_employees_unless_given(
    engine: Engine, tmp_path: Path, suffix: str
) -> None:
    ingest_files(engine, [write_company(tmp_path / "in", suffix)])
    stored = row_dicts(engine, "customers", "customer_id")
    assert {cid: (row["employees"], row["segment"]) for cid, row in stored.items()} == {
        "c-smb": (49, "SMB"),
        "c-mid-50": (50, "Mid-Market"),
        "c-mid-999": (999, "Mid-Market"),
        "c-ent": (1000, "Enterprise"),
        "c-none": (None, None),
        "c-explicit": (10, "Enterprise"),
        "c-explicit-smb": (5000, "SMB"),
    }


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_timestamps_are_stored_in_utc(engine: Engine, tmp_path: Path, suffix: str) -> None:
    ingest_files(engine, [write_company(tmp_path / "in", suffix)])
    events = row_dicts(engine, "subscription_events", "event_id")
    customers = row_dicts(engine, "customers", "customer_id")

    # A date alone is midnight UTC.
    assert events["e1"]["occurred_at"] == micros(2024, 1, 10)
    assert customers["c-smb"]["created_at"] == micros(2024, 1, 5)
    assert events["e6"]["trial_ends_at"] == micros(2024, 2, 15)
    # Offsets are converted to UTC, across a day boundary too, keeping fractions of a second.
    assert events["e2"]["occurred_at"] == micros(2024, 1, 10, 7, 30)
    assert events["e3"]["occurred_at"] == micros(2024, 2, 1, 0, 30)
    assert events["e7"]["occurred_at"] == micros(2024, 2, 1, 6, 30) + 250_000
    assert events["e4"]["occurred_at"] == micros(2024, 3, 1)
    assert customers["c-mid-50"]["created_at"] == micros(2024, 1, 6, 9)
    assert customers["c-ent"]["created_at"] is None


@pytest.mark.parametrize("suffix", ["csv", "jsonl.gz"])
def test_event_fields_are_stored_with_defaults(engine: Engine, tmp_path: Path, suffix: str) -> None:
    ingest_files(engine, [write_company(tmp_path / "in", suffix)])
    events = row_dicts(engine, "subscription_events", "event_id")
    e1, e3, e5, e6 = events["e1"], events["e3"], events["e5"], events["e6"]
    assert (
        e1["type"],
        e1["plan_id"],
        e1["tier"],
        e1["amount_minor"],
        e1["currency"],
        e1["interval"],
    ) == ("start", "pro-monthly", "Professional", 4900, "GBP", "month")
    # quantity and interval_count default to 1.
    assert (e1["quantity"], e1["interval_count"], e1["trial_ends_at"]) == (1, 1, None)
    assert (e3["quantity"], e3["currency"], e3["amount_minor"]) == (3, "EUR", 10000)
    assert (e6["interval"], e6["interval_count"]) == ("week", 2)
    assert (e5["type"], e5["amount_minor"], e5["currency"]) == ("cancel", None, None)
    assert len(events) == len(EVENTS)


def test_ingestion_history_is_recorded(engine: Engine, tmp_path: Path) -> None:
    folder = write_company(tmp_path / "in")
    before = micros(2000, 1, 1)
    result = ingest_files(engine, [folder])

    with engine.connect() as connection:
        history = connection.execute(select(ingestions)).mappings().all()
    assert len(history) == 1
    row = history[0]
    assert row["id"] == result.ingestion_id
    assert row["actor"] == "cli"
    assert sorted(row["sources"]) == sorted(str(folder / f"{kind}.csv") for kind in COMPANY)
    assert before < row["started_at"] <= row["finished_at"]
    assert row["counts"]["subscription_events"] == {
        "received": len(EVENTS),
        "inserted": len(EVENTS),
        "unchanged": 0,
        "updated": 0,
    }
    assert row["counts"]["customers"]["inserted"] == len(CUSTOMERS)
    # Each stored row points at its ingestion and at the file and line it came from.
    events = row_dicts(engine, "subscription_events", "event_id")
    assert events["e1"]["ingestion_id"] == result.ingestion_id
    assert events["e1"]["source"] == f"{folder / 'subscription_events.csv'}:2"
    assert events["e8"]["source"] == f"{folder / 'subscription_events.csv'}:9"


def test_reingesting_the_same_files_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    folder = write_company(tmp_path / "in")
    ingest_files(engine, [folder])
    data = {k: v for k, v in snapshot(engine).items() if k != "ingestions"}
    counts = table_counts(engine)

    again = ingest_files(engine, [folder])

    assert {k: v for k, v in snapshot(engine).items() if k != "ingestions"} == data
    assert {k: v for k, v in table_counts(engine).items() if k != "ingestions"} == {
        k: v for k, v in counts.items() if k != "ingestions"
    }
    for kind, records in COMPANY.items():
        assert (
            again.counts[kind].received,
            again.counts[kind].inserted,
            again.counts[kind].unchanged,
        ) == (len(records), 0, len(records)), kind


def test_reingesting_the_same_data_in_another_format_changes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    ingest_files(engine, [write_company(tmp_path / "csv", "csv")])
    data = {k: v for k, v in snapshot(engine).items() if k != "ingestions"}

    again = ingest_files(engine, [write_company(tmp_path / "jsonl", "jsonl.gz")])

    assert {k: v for k, v in snapshot(engine).items() if k != "ingestions"} == data
    assert sum(c.inserted for c in again.counts.values()) == 0


def test_an_identical_repeated_row_in_one_file_is_stored_once(
    engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    write_file(folder, "customers", [CUSTOMERS[0], CUSTOMERS[0]])
    write_file(folder, "subscription_events", [EVENTS[0], EVENTS[0]])
    result = ingest_files(engine, [folder])
    counts = table_counts(engine)
    assert (counts["customers"], counts["subscription_events"]) == (1, 1)
    assert result.counts["subscription_events"].received == 2


def test_a_later_batch_adds_only_what_is_new(engine: Engine, tmp_path: Path) -> None:
    ingest_files(engine, [write_company(tmp_path / "first")])
    later = tmp_path / "later"
    write_file(
        later,
        "subscription_events",
        [
            EVENTS[0],
            event("e9", "c-ent", "s9", "2024-05-01T00:00:00Z", amount=7000),
            event("e10", "c-ent", "s3", "2024-05-02T00:00:00Z", "cancel"),
        ],
    )
    result = ingest_files(engine, [later])
    assert (
        result.counts["subscription_events"].inserted,
        result.counts["subscription_events"].unchanged,
    ) == (2, 1)
    events = row_dicts(engine, "subscription_events", "event_id")
    assert len(events) == len(EVENTS) + 2
    # The unchanged event keeps its original source.
    assert events["e1"]["source"] == f"{tmp_path / 'first' / 'subscription_events.csv'}:2"


def test_events_may_name_customers_ingested_earlier(engine: Engine, tmp_path: Path) -> None:
    write_file(tmp_path / "a", "customers", CUSTOMERS)
    ingest_files(engine, [tmp_path / "a"])
    write_file(tmp_path / "b", "subscription_events", [EVENTS[0]], "jsonl")
    ingest_files(engine, [tmp_path / "b"])
    assert table_counts(engine)["subscription_events"] == 1


def test_json_lines_accept_numbers_and_blank_lines(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "in" / "subscription_events.jsonl"
    write_records(tmp_path / "in" / "customers.jsonl", [{"customer_id": "c1", "employees": 7}])
    path.write_text(
        '{"event_id": "j1", "customer_id": "c1", "subscription_id": "s1", '
        '"occurred_at": "2024-01-01T00:00:00Z", "type": "start", "plan_id": "p", '
        '"amount_minor": 4900, "quantity": 2, "currency": "GBP", "interval": "month", '
        '"interval_count": 1, "tier": null}\n\n'
        '{"event_id": "j2", "customer_id": "c1", "subscription_id": "s1", '
        '"occurred_at": "2024-02-01T00:00:00Z", "type": "cancel"}\n'
    )
    ingest_files(engine, [tmp_path / "in"])
    events = row_dicts(engine, "subscription_events", "event_id")
    assert (events["j1"]["amount_minor"], events["j1"]["quantity"]) == (4900, 2)
    assert events["j2"]["source"] == f"{path}:3"
    assert row_dicts(engine, "customers", "customer_id")["c1"]["segment"] == "SMB"
