"""Bad input: every problem is pinned to its file, line and column, and nothing is written.

Each test first ingests a valid company (so the database is not empty), then ingests a folder
holding valid new rows of every data set plus the bad input, and checks that every table holds
exactly what it held before.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.ingest.support import (
    CUSTOMERS,
    EVENTS,
    event,
    first_line,
    snapshot,
    table_counts,
    where,
    write_bytes,
    write_company,
    write_file,
    write_records,
)

from execmetrics.ingest.problems import MAX_REPORTED, IngestError, Problem
from execmetrics.ingest.service import ingest_files

NEW_CUSTOMER = {"customer_id": "n1", "name": "New Bands Ltd", "country": "GB", "employees": 3}
NEW_FX = {"date": "2024-03-01", "currency": "EUR", "rate": "0.86"}
NEW_SPEND = {"month": "2024-03", "source": "wedding_fair", "amount_minor": 50000, "currency": "GBP"}


@pytest.fixture
def base(engine: Engine, tmp_path: Path) -> Engine:
    """The database holding the valid company."""
    ingest_files(engine, [write_company(tmp_path / "base")])
    counts = table_counts(engine)
    assert all(
        counts[t] > 0
        for t in (
            "customers",
            "subscription_events",
            "mrr_movements",
            "fx_rates",
            "marketing_spend",
            "ingestions",
        )
    )
    return engine


def refused(engine: Engine, paths: list[Path]) -> IngestError:
    """Ingest paths, expecting IngestError and that no table changed at all."""
    before = snapshot(engine)
    with pytest.raises(IngestError) as info:
        ingest_files(engine, paths)
    assert snapshot(engine) == before, "a refused ingest wrote to the database"
    return info.value


def new_rows_folder(
    folder: Path, events: list[dict[str, object]] | None = None, suffix: str = "csv"
) -> Path:
    """Valid new rows of every data set; events, when given, replace the default ones."""
    write_file(folder, "customers", [NEW_CUSTOMER], suffix)
    write_file(folder, "fx_rates", [NEW_FX], suffix)
    write_file(folder, "marketing_spend", [NEW_SPEND], suffix)
    write_file(
        folder,
        "subscription_events",
        events
        if events is not None
        else [
            event("n-e1", "c-ent", "n-s1", "2024-03-01T00:00:00Z"),
        ],
        suffix,
    )
    return folder


def with_bad_event(folder: Path, bad: dict[str, object], suffix: str = "csv") -> tuple[Path, int]:
    """A folder of valid new rows whose events file has `bad` as its third record."""
    events = [
        event("n-e1", "n1", "n-s1", "2024-03-01T00:00:00Z"),
        event("n-e2", "c-ent", "n-s2", "2024-03-02T00:00:00Z", amount=9900),
        bad,
        event("n-e3", "n1", "n-s1", "2024-03-05T00:00:00Z", "change", amount=5900),
    ]
    new_rows_folder(folder, events, suffix)
    path = folder / f"subscription_events.{suffix}"
    return path, first_line(path, 2)


def bad_event(**fields: object) -> dict[str, object]:
    base = event("n-bad", "n1", "n-s3", "2024-03-03T00:00:00Z")
    base.update(fields)
    return base


EVENT_CASES = [
    pytest.param({"occurred_at": "2024-02-30T10:00:00Z"}, "occurred_at", "", id="impossible-date"),
    pytest.param({"occurred_at": "last tuesday"}, "occurred_at", "", id="not-a-timestamp"),
    pytest.param(
        {"occurred_at": "2024-03-03T10:00:00"},
        "occurred_at",
        "offset",
        id="timestamp-without-offset",
    ),
    pytest.param(
        {"trial_ends_at": "2024-03-10T10:00:00"},
        "trial_ends_at",
        "offset",
        id="trial-end-without-offset",
    ),
    pytest.param({"amount_minor": "49.0"}, "amount_minor", "", id="float-money"),
    pytest.param({"amount_minor": "49.00"}, "amount_minor", "", id="decimal-money"),
    pytest.param({"amount_minor": "4.9e3"}, "amount_minor", "", id="exponent-money"),
    pytest.param({"amount_minor": "-4900"}, "amount_minor", "negative", id="negative-money"),
    pytest.param({"amount_minor": ""}, "amount_minor", "required", id="start-without-amount"),
    pytest.param({"currency": "ABC"}, "currency", "ABC", id="unknown-currency"),
    pytest.param({"interval": "fortnight"}, "interval", "fortnight", id="unknown-interval"),
    pytest.param({"type": "pause"}, "type", "pause", id="unknown-event-type"),
    pytest.param({"quantity": "0"}, "quantity", "", id="zero-quantity"),
    pytest.param({"quantity": "2.5"}, "quantity", "", id="fractional-quantity"),
    pytest.param({"interval_count": "1.5"}, "interval_count", "", id="fractional-interval-count"),
    pytest.param({"subscription_id": ""}, "subscription_id", "required", id="empty-required"),
    pytest.param({"customer_id": "ghost"}, "customer_id", "ghost", id="unknown-customer"),
]


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
@pytest.mark.parametrize(("fields", "column", "reason_part"), EVENT_CASES)
def test_bad_event_field_is_reported_and_nothing_written(
    base: Engine,
    tmp_path: Path,
    suffix: str,
    fields: dict[str, object],
    column: str,
    reason_part: str,
) -> None:
    path, line = with_bad_event(tmp_path / "bad", bad_event(**fields), suffix)
    error = refused(base, [tmp_path / "bad"])
    assert where(error) == [(str(path), line, column)]
    assert reason_part in error.problems[0].reason


@pytest.mark.parametrize("suffix", ["ndjson.gz"])
@pytest.mark.parametrize("amount", [49.0, 4900.0, 1e3, "49.5", True], ids=repr)
def test_json_money_must_be_an_integer(
    base: Engine, tmp_path: Path, suffix: str, amount: object
) -> None:
    path, line = with_bad_event(tmp_path / "bad", bad_event(amount_minor=amount), suffix)
    error = refused(base, [tmp_path / "bad"])
    assert where(error) == [(str(path), line, "amount_minor")]


def test_json_value_that_is_not_a_scalar(base: Engine, tmp_path: Path) -> None:
    path, line = with_bad_event(tmp_path / "bad", bad_event(amount_minor={"value": 4900}), "jsonl")
    error = refused(base, [tmp_path / "bad"])
    assert where(error) == [(str(path), line, "amount_minor")]


CUSTOMER_CASES = [
    pytest.param({"country": "UK"}, "country", id="country-UK"),
    pytest.param({"country": "GBR"}, "country", id="country-alpha-3"),
    pytest.param({"country": "ZZ"}, "country", id="country-unassigned"),
    pytest.param({"segment": "Startup"}, "segment", id="unknown-segment"),
    pytest.param({"employees": "-5"}, "employees", id="negative-employees"),
    pytest.param({"employees": "ten"}, "employees", id="employees-not-a-number"),
    pytest.param({"created_at": "2024-01-05T10:00:00"}, "created_at", id="created-without-offset"),
    pytest.param({"created_at": "05/01/2024"}, "created_at", id="created-not-iso"),
    pytest.param({"customer_id": ""}, "customer_id", id="empty-customer-id"),
]


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
@pytest.mark.parametrize(("fields", "column"), CUSTOMER_CASES)
def test_bad_customer_field_is_reported_and_nothing_written(
    base: Engine, tmp_path: Path, suffix: str, fields: dict[str, object], column: str
) -> None:
    folder = new_rows_folder(tmp_path / "bad", suffix=suffix)
    bad = {"customer_id": "n-bad", "name": "Bad Co", "country": "GB", **fields}
    path = write_records(
        folder / f"customers.{suffix}",
        [NEW_CUSTOMER, {"customer_id": "n2"}, bad],
        ["customer_id", "name", "country", "segment", "employees", "created_at"],
    )
    error = refused(base, [folder])
    assert where(error) == [(str(path), first_line(path, 2), column)]


FX_CASES = [
    pytest.param({"rate": "abc"}, "rate", id="rate-not-a-number"),
    pytest.param({"rate": "0"}, "rate", id="rate-zero"),
    pytest.param({"rate": "-0.85"}, "rate", id="rate-negative"),
    pytest.param({"date": "2024-02-30"}, "date", id="impossible-date"),
    pytest.param({"date": "2024-03-01T00:00:00Z"}, "date", id="timestamp-not-date"),
    pytest.param({"currency": "ABC"}, "currency", id="unknown-currency"),
]


@pytest.mark.parametrize(("fields", "column"), FX_CASES)
def test_bad_fx_rate_is_reported_and_nothing_written(
    base: Engine, tmp_path: Path, fields: dict[str, object], column: str
) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    bad = {"date": "2024-03-02", "currency": "USD", "rate": "0.78", **fields}
    path = write_file(folder, "fx_rates", [NEW_FX, bad])
    error = refused(base, [folder])
    assert where(error) == [(str(path), 3, column)]


SPEND_CASES = [
    pytest.param({"month": "2024-13"}, "month", id="month-13"),
    pytest.param({"month": "2024-03-01"}, "month", id="date-not-month"),
    pytest.param({"amount_minor": "1500.00"}, "amount_minor", id="decimal-money"),
    pytest.param({"amount_minor": "-1500"}, "amount_minor", id="negative-money"),
    pytest.param({"currency": "ABC"}, "currency", id="unknown-currency"),
    pytest.param({"source": ""}, "source", id="empty-source"),
]


@pytest.mark.parametrize(("fields", "column"), SPEND_CASES)
def test_bad_marketing_spend_is_reported_and_nothing_written(
    base: Engine, tmp_path: Path, fields: dict[str, object], column: str
) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    bad = {
        "month": "2024-04",
        "source": "partner",
        "amount_minor": 1500,
        "currency": "GBP",
        **fields,
    }
    path = write_file(folder, "marketing_spend", [NEW_SPEND, bad])
    error = refused(base, [folder])
    assert where(error) == [(str(path), 3, column)]


# Missing required columns.


@pytest.mark.parametrize(
    ("kind", "column"),
    [
        ("subscription_events", "occurred_at"),
        ("subscription_events", "event_id"),
        ("subscription_events", "type"),
        ("customers", "customer_id"),
        ("fx_rates", "rate"),
        ("marketing_spend", "amount_minor"),
    ],
)
def test_missing_required_column_in_a_csv_header(
    base: Engine, tmp_path: Path, kind: str, column: str
) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    path = folder / f"{kind}.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if name != column]
    assert len(keep) == len(header) - 1
    path.write_text("".join(",".join(line.split(",")[i] for i in keep) + "\n" for line in lines))

    error = refused(base, [folder])
    assert where(error) == [(str(path), 1, column)]


def test_missing_required_key_in_json_lines(base: Engine, tmp_path: Path) -> None:
    bad = bad_event()
    del bad["occurred_at"]
    path, line = with_bad_event(tmp_path / "bad", bad, "jsonl")
    error = refused(base, [tmp_path / "bad"])
    assert where(error) == [(str(path), line, "occurred_at")]


def test_csv_row_with_more_fields_than_the_header(base: Engine, tmp_path: Path) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    path = folder / "customers.csv"
    path.write_text(path.read_text() + "n9,Extra,GB,,,,,,,,surplus\n")
    error = refused(base, [folder])
    assert where(error) == [(str(path), 3, None)]


# Duplicate ids.


def test_duplicate_event_id_with_different_content_in_one_file(
    base: Engine, tmp_path: Path
) -> None:
    path, line = with_bad_event(
        tmp_path / "bad", event("n-e1", "n1", "n-s1", "2024-03-01T00:00:00Z", amount=5000)
    )
    error = refused(base, [tmp_path / "bad"])
    assert where(error) == [(str(path), line, "event_id")]
    assert "n-e1" in error.problems[0].reason


def test_duplicate_event_id_with_different_content_than_an_earlier_ingestion(
    base: Engine, tmp_path: Path
) -> None:
    earlier = dict(EVENTS[0], amount_minor=4901)
    path, line = with_bad_event(tmp_path / "bad", earlier, "jsonl")
    error = refused(base, [tmp_path / "bad"])
    assert where(error) == [(str(path), line, "event_id")]
    assert "e1" in error.problems[0].reason and "already" in error.problems[0].reason


def test_duplicate_customer_id_with_different_content_in_one_file(
    base: Engine, tmp_path: Path
) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    path = write_file(folder, "customers", [NEW_CUSTOMER, dict(NEW_CUSTOMER, employees=4)])
    error = refused(base, [folder])
    assert where(error) == [(str(path), 3, "customer_id")]


def test_duplicate_customer_id_with_different_content_than_an_earlier_ingestion(
    base: Engine, tmp_path: Path
) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    changed = dict(CUSTOMERS[0], name="Smith & Daughters Photography")
    path = write_file(folder, "customers", [NEW_CUSTOMER, changed])
    error = refused(base, [folder])
    assert where(error) == [(str(path), 3, "customer_id")]
    assert "c-smb" in error.problems[0].reason


def test_fx_rate_for_the_same_day_with_a_different_rate(base: Engine, tmp_path: Path) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    path = write_file(
        folder, "fx_rates", [NEW_FX, {"date": "2024-02-01", "currency": "EUR", "rate": "0.90"}]
    )
    error = refused(base, [folder])
    assert [(p.source, p.line) for p in error.problems] == [(str(path), 3)]


# Subscription histories that are not allowed.


@pytest.mark.parametrize("kind", ["change", "cancel"])
def test_change_or_cancel_of_a_subscription_never_started(
    base: Engine, tmp_path: Path, kind: str
) -> None:
    path, line = with_bad_event(
        tmp_path / "bad", bad_event(type=kind, subscription_id="never-started")
    )
    error = refused(base, [tmp_path / "bad"])
    assert where(error) == [(str(path), line, "type")]
    assert "never started" in error.problems[0].reason


def test_change_of_a_cancelled_subscription(base: Engine, tmp_path: Path) -> None:
    # s1 of c-smb was cancelled on 2024-04-15 and restarted on 2024-06-01.
    path, line = with_bad_event(
        tmp_path / "bad", event("n-bad", "c-smb", "s1", "2024-05-01T00:00:00Z", "change")
    )
    error = refused(base, [tmp_path / "bad"])
    assert where(error) == [(str(path), line, "type")]
    assert "cancelled" in error.problems[0].reason


def test_start_of_a_subscription_already_active_from_an_earlier_ingestion(
    base: Engine, tmp_path: Path
) -> None:
    path, line = with_bad_event(
        tmp_path / "bad", event("n-bad", "c-ent", "s3", "2024-03-03T00:00:00Z")
    )
    error = refused(base, [tmp_path / "bad"])
    assert where(error) == [(str(path), line, "type")]
    assert "already active" in error.problems[0].reason


def test_start_of_a_subscription_already_active_in_the_same_file(
    base: Engine, tmp_path: Path
) -> None:
    # n-s1 is started by the first record of the file.
    path, line = with_bad_event(
        tmp_path / "bad", event("n-bad", "n1", "n-s1", "2024-03-03T00:00:00Z")
    )
    error = refused(base, [tmp_path / "bad"])
    assert where(error) == [(str(path), line, "type")]


# Missing fx rates.


@pytest.mark.parametrize(
    ("currency", "at"),
    [
        pytest.param("EUR", "2024-01-15T00:00:00Z", id="before-the-first-EUR-rate"),
        # 00:30 in Paris on 1 February is still 31 January in UTC: no rate yet.
        pytest.param("EUR", "2024-02-01T00:30:00+01:00", id="utc-date-before-the-first-rate"),
        pytest.param("JPY", "2024-03-03T00:00:00Z", id="currency-without-any-rate"),
    ],
)
def test_missing_fx_rate_for_an_event(base: Engine, tmp_path: Path, currency: str, at: str) -> None:
    path, line = with_bad_event(tmp_path / "bad", bad_event(currency=currency, occurred_at=at))
    error = refused(base, [tmp_path / "bad"])
    assert where(error) == [(str(path), line, "currency")]
    assert currency in error.problems[0].reason


def test_missing_fx_rate_for_marketing_spend(base: Engine, tmp_path: Path) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    path = write_file(
        folder,
        "marketing_spend",
        [
            NEW_SPEND,
            {"month": "2024-01", "source": "partner", "amount_minor": 100, "currency": "EUR"},
        ],
    )
    error = refused(base, [folder])
    assert where(error) == [(str(path), 3, "currency")]


def test_an_fx_rate_in_the_same_ingest_is_used(base: Engine, tmp_path: Path) -> None:
    folder = new_rows_folder(
        tmp_path / "good",
        [
            bad_event(currency="JPY", occurred_at="2024-03-03T00:00:00Z"),
        ],
    )
    write_file(
        folder, "fx_rates", [NEW_FX, {"date": "2024-03-01", "currency": "JPY", "rate": "0.0052"}]
    )
    before = table_counts(base)["subscription_events"]
    ingest_files(base, [folder])
    assert table_counts(base)["subscription_events"] == before + 1


# Files that cannot be read.


@pytest.mark.parametrize(
    ("name", "bad_line"),
    [
        ("customers.csv", 4),
        ("customers.csv", 7000),
        ("customers.jsonl", 3),
        ("customers.csv.gz", 3),
    ],
)
def test_non_utf8_bytes_are_reported_at_their_line(
    base: Engine, tmp_path: Path, name: str, bad_line: int
) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    path = folder / name
    (folder / "customers.csv").unlink()
    good = [{"customer_id": f"n{i}", "name": f"Customer {i}"} for i in range(1, bad_line + 5)]
    write_records(path, good, ["customer_id", "name"])
    raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    lines = raw.split(b"\n")
    lines[bad_line - 1] = lines[bad_line - 1].replace(b"Customer", b"Caf\xe9 Customer")
    write_bytes(path, b"\n".join(lines))

    error = refused(base, [folder])
    assert where(error) == [(str(path), bad_line, None)]
    assert "UTF-8" in error.problems[0].reason


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("customers.csv", b""),
        ("customers.jsonl", b""),
        ("customers.csv.gz", b""),
        ("customers.jsonl", b"\n\n"),
        ("customers.csv", b"customer_id,name\n"),
        ("customers.csv", b"customer_id,name\r\n"),
    ],
    ids=["empty-csv", "empty-jsonl", "empty-gz", "blank-jsonl", "header-only", "header-only-crlf"],
)
def test_an_empty_file_is_refused(base: Engine, tmp_path: Path, name: str, content: bytes) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    (folder / "customers.csv").unlink()
    path = write_bytes(folder / name, content)
    error = refused(base, [folder])
    assert [(p.source, p.column) for p in error.problems] == [(str(path), None)]
    assert error.problems[0].line in (None, 1)
    assert "empty" in error.problems[0].reason


def test_a_file_that_is_not_gzip(base: Engine, tmp_path: Path) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    path = folder / "fx_rates.csv.gz"
    (folder / "fx_rates.csv").rename(path)  # plain text under a .gz name
    error = refused(base, [folder])
    assert [(p.source, p.column) for p in error.problems] == [(str(path), None)]


@pytest.mark.parametrize(
    "bad_line",
    ['{"customer_id": "n2", "name": "Broken"', "not json at all", '["n2", "Broken"]', '"n2"'],
    ids=["truncated", "text", "array", "string"],
)
def test_malformed_json_line(base: Engine, tmp_path: Path, bad_line: str) -> None:
    folder = new_rows_folder(tmp_path / "bad", suffix="jsonl")
    path = folder / "customers.jsonl"
    path.write_text(path.read_text() + bad_line + "\n" + '{"customer_id": "n3"}\n')
    error = refused(base, [folder])
    assert where(error) == [(str(path), 2, None)]


# Many problems.


def test_only_the_first_100_problems_are_reported_and_all_are_counted(
    base: Engine, tmp_path: Path
) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    rows = [{"customer_id": f"n{i}", "country": "UK" if i % 2 else "GB"} for i in range(300)]
    path = write_file(folder, "customers", [NEW_CUSTOMER, *rows])
    error = refused(base, [folder])
    assert MAX_REPORTED == 100
    assert error.total == 150
    assert where(error) == [(str(path), 3 + 2 * i + 1, "country") for i in range(100)]
    summary = error.summary().splitlines()
    assert len(summary) == 101
    assert summary[0] == f"{path}:4: country: {error.problems[0].reason}"
    assert "50 more" in summary[-1]


def test_problems_from_several_files_are_all_reported(base: Engine, tmp_path: Path) -> None:
    events, line = with_bad_event(tmp_path / "bad", bad_event(amount_minor="-1"))
    customers = write_file(
        tmp_path / "bad",
        "customers",
        [
            NEW_CUSTOMER,
            {"customer_id": "n2", "country": "UK"},
        ],
    )
    error = refused(base, [tmp_path / "bad"])
    assert sorted(where(error), key=repr) == sorted(
        [(str(customers), 3, "country"), (str(events), line, "amount_minor")], key=repr
    )


def test_problem_is_printed_as_file_line_column_reason() -> None:
    assert str(Problem("data/customers.csv", 7, "country", "bad code")) == (
        "data/customers.csv:7: country: bad code"
    )


# Which files are ingested.


@pytest.mark.parametrize(
    "name",
    [
        "customer.csv",
        "events.jsonl",
        "subscriptions.csv.gz",
        "customers.txt",
        "customers.xlsx",
        "customers",
    ],
)
def test_an_unrecognised_file_given_explicitly_is_refused(
    base: Engine, tmp_path: Path, name: str
) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    odd = folder / name
    odd.write_text("customer_id\nn5\n")
    error = refused(base, [folder / "customers.csv", odd])
    assert where(error) == [(str(odd), None, None)]


@pytest.mark.parametrize("name", ["customer.csv", "subscription-events.jsonl", "fx_rate.csv.gz"])
def test_a_misnamed_data_file_in_a_folder_is_refused(
    base: Engine, tmp_path: Path, name: str
) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    write_bytes(folder / name, b"customer_id\nn5\n")
    error = refused(base, [folder])
    assert where(error) == [(str(folder / name), None, None)]


def test_a_path_that_does_not_exist_is_refused(base: Engine, tmp_path: Path) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    error = refused(base, [folder, tmp_path / "nowhere"])
    assert where(error) == [(str(tmp_path / "nowhere"), None, None)]


def test_a_folder_without_data_files_is_refused(base: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("nothing here\n")
    error = refused(base, [folder])
    assert len(error.problems) == 1 and "no input files" in error.problems[0].reason


# CSV structure.


@pytest.mark.parametrize(
    "content",
    [b"customer_id,name\n\n", b"customer_id,name\n\n\n\n", b"customer_id,name\r\n\r\n"],
    ids=["one-blank-line", "several-blank-lines", "crlf-blank-line"],
)
def test_a_header_followed_only_by_blank_lines_is_an_empty_file(
    base: Engine, tmp_path: Path, content: bytes
) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    path = write_bytes(folder / "customers.csv", content)
    error = refused(base, [folder])
    assert [(p.source, p.column) for p in error.problems] == [(str(path), None)]
    assert "empty" in error.problems[0].reason


def test_an_unterminated_quote_is_refused_not_read_to_the_end_of_the_file(
    base: Engine, tmp_path: Path
) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    path = write_bytes(
        folder / "customers.csv", b'customer_id,name\nn1,"New Bands\nn2,Other Ltd\nn3,Third Ltd\n'
    )
    error = refused(base, [folder])
    assert where(error) == [(str(path), 2, "name")] or where(error) == [(str(path), 2, None)]


def test_a_problem_after_a_multi_line_record_has_its_own_line(base: Engine, tmp_path: Path) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    path = write_bytes(
        folder / "customers.csv", b'customer_id,name,country\nn1,"New\nBands",GB\nn2,Other,UK\n'
    )
    error = refused(base, [folder])
    assert where(error) == [(str(path), 4, "country")]


def test_a_problem_in_a_multi_line_record_is_reported_at_its_first_line(
    base: Engine, tmp_path: Path
) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    path = write_bytes(
        folder / "customers.csv", b'customer_id,name,country\nn1,New Bands,GB\nn2,"Other\nLtd",UK\n'
    )
    error = refused(base, [folder])
    assert where(error) == [(str(path), 3, "country")]


def test_a_field_too_large_to_read_is_reported_at_its_line(base: Engine, tmp_path: Path) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    huge = b"x" * 200_000
    path = write_bytes(
        folder / "customers.csv",
        b"customer_id,name\nn1,New Bands\nn2,Fine\nn3," + huge + b"\nn4,Fine\n",
    )
    error = refused(base, [folder])
    assert [(p.source, p.line) for p in error.problems] == [(str(path), 4)]


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column_name(
    base: Engine, tmp_path: Path
) -> None:
    # Spreadsheet programs save "CSV UTF-8" with a byte order mark.
    folder = new_rows_folder(tmp_path / "good")
    path = folder / "customers.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    before = table_counts(base)["customers"]
    ingest_files(base, [folder])
    assert table_counts(base)["customers"] == before + 1


def test_crlf_line_endings_are_read(base: Engine, tmp_path: Path) -> None:
    folder = new_rows_folder(tmp_path / "good")
    for path in folder.iterdir():
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    before = table_counts(base)
    ingest_files(base, [folder])
    after = table_counts(base)
    for table in ("customers", "subscription_events", "fx_rates", "marketing_spend"):
        assert after[table] == before[table] + 1, table


# Values the database cannot hold are problems in the input, never a crash.


def stored_or_reported(engine: Engine, folder: Path, path: Path, line: int, column: str) -> None:
    """Either the input is ingested, or it is refused with one problem at this line and
    column and nothing written; an exception from the database driver is neither."""
    before = snapshot(engine)
    try:
        ingest_files(engine, [folder])
    except IngestError as error:
        assert where(error) == [(str(path), line, column)]
        assert snapshot(engine) == before
    else:
        assert table_counts(engine)["ingestions"] == len(before["ingestions"]) + 1


@pytest.mark.parametrize("amount", [str(2**63), "9" * 30], ids=["2**63", "30-digits"])
def test_an_amount_too_large_for_any_database_is_a_problem(
    base: Engine, tmp_path: Path, amount: str
) -> None:
    path, line = with_bad_event(tmp_path / "bad", bad_event(amount_minor=amount))
    error = refused(base, [tmp_path / "bad"])
    assert where(error) == [(str(path), line, "amount_minor")]


@pytest.mark.parametrize("column", ["quantity", "interval_count"])
def test_a_count_beyond_32_bits_is_stored_or_reported_never_a_crash(
    base: Engine, tmp_path: Path, column: str
) -> None:
    path, line = with_bad_event(tmp_path / "bad", bad_event(**{column: "3000000000"}))
    stored_or_reported(base, tmp_path / "bad", path, line, column)


@pytest.mark.parametrize(
    ("record", "column"),
    [
        pytest.param(
            {"customer_id": "n2", "employees": 3_000_000_000},
            "employees",
            id="employees-beyond-32-bits",
        ),
        pytest.param({"customer_id": "n" * 300}, "customer_id", id="customer-id-300-chars"),
        pytest.param({"customer_id": "n2", "name": "Nul\x00Byte Ltd"}, "name", id="nul-byte"),
    ],
)
def test_a_customer_value_is_stored_or_reported_never_a_crash(
    base: Engine, tmp_path: Path, record: dict[str, object], column: str
) -> None:
    folder = new_rows_folder(tmp_path / "bad")
    path = write_file(folder, "customers", [NEW_CUSTOMER, record])
    stored_or_reported(base, folder, path, 3, column)
