"""Writing real input files for ingest tests, and looking at everything a database holds."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from execmetrics.ingest.problems import IngestError
from execmetrics.store.tables import customers, metadata

Record = Mapping[str, object]

# Columns that record where and when a row came from; they legitimately differ between two
# ingestions of the same data in different formats.
PROVENANCE = {"id", "ingestion_id", "source", "source_ref"}


def _csv_text(records: Sequence[Record], columns: Sequence[str] | None) -> str:
    if columns is None:
        columns = []
        for record in records:
            columns.extend(key for key in record if key not in columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for record in records:
        writer.writerow(["" if record.get(c) is None else str(record.get(c)) for c in columns])
    return out.getvalue()


def _jsonl_text(records: Sequence[Record]) -> str:
    # Absent and empty values are left out, as a JSON producer would; numbers stay numbers.
    return "".join(
        json.dumps({k: v for k, v in record.items() if v is not None and v != ""}) + "\n"
        for record in records
    )


def write_records(
    path: Path, records: Sequence[Record], columns: Sequence[str] | None = None
) -> Path:
    """Write records as CSV or JSON Lines according to the file name (gzip when it ends .gz)."""
    name = path.name.removesuffix(".gz")
    if name.endswith(".csv"):
        text = _csv_text(records, columns)
    elif name.endswith((".jsonl", ".ndjson")):
        text = _jsonl_text(records)
    else:
        raise ValueError(f"cannot write {path.name}")
    write_bytes(path, text.encode())
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def first_line(path: Path, index: int) -> int:
    """The line number of the record at `index` (0-based) in a file written by write_records."""
    name = path.name.removesuffix(".gz")
    return index + (2 if name.endswith(".csv") else 1)


def _plain(value: object) -> object:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def is_database_id(table: str, row: Sequence[object]) -> bool:
    """The row of the database's random id, which tells databases apart rather than being
    part of their content."""
    return table == "settings" and row[0] == "database_id"


def snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a stable order (not the database's id)."""
    with engine.connect() as connection:
        return {
            table.name: sorted(
                (
                    tuple(_plain(v) for v in row)
                    for row in connection.execute(select(table))
                    if not is_database_id(table.name, row)
                ),
                key=repr,
            )
            for table in metadata.sorted_tables
        }


def table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: int(
                connection.execute(select(func.count()).select_from(table)).scalar_one()
            )
            for table in metadata.sorted_tables
        }


def stored_data(engine: Engine) -> dict[str, list[tuple[tuple[str, object], ...]]]:
    """The stored data without provenance (ids, ingestion, source file and line), with each
    customer_key replaced by the customer's own id; the ingestion history and the KPIs are left
    out."""
    with engine.connect() as connection:
        customer_ids = dict(
            connection.execute(select(customers.c.id, customers.c.customer_id)).all()
        )
        result: dict[str, list[tuple[tuple[str, object], ...]]] = {}
        for table in metadata.sorted_tables:
            if table.name in ("ingestions", "kpi_versions"):
                continue
            rows = []
            for row in connection.execute(select(table)).mappings():
                if is_database_id(table.name, tuple(row.values())):
                    continue
                items = []
                for key, value in row.items():
                    if key in PROVENANCE:
                        continue
                    if key == "customer_key":
                        value = customer_ids[value]
                    items.append((key, _plain(value)))
                rows.append(tuple(items))
            result[table.name] = sorted(rows, key=repr)
        return result


def where(error: IngestError) -> list[tuple[str, int | None, str | None]]:
    """(file, line, column) of each reported problem."""
    return [(p.source, p.line, p.column) for p in error.problems]


def as_text(records: Iterable[Record]) -> list[dict[str, str | None]]:
    return [{k: None if v is None else str(v) for k, v in r.items()} for r in records]


def row_dicts(engine: Engine, table_name: str, key: str) -> dict[str, dict[str, Any]]:
    table = metadata.tables[table_name]
    with engine.connect() as connection:
        return {str(row[key]): dict(row) for row in connection.execute(select(table)).mappings()}


# A small valid company, used by the happy-path tests and as the "before" of the bad-input tests.

CUSTOMER_FIELDS = [
    "customer_id",
    "name",
    "created_at",
    "country",
    "segment",
    "employees",
    "acquisition_source",
    "acquisition_campaign",
    "industry",
    "region",
]
CUSTOMERS: list[dict[str, object]] = [
    {
        "customer_id": "c-smb",
        "name": "Smith Photography",
        "created_at": "2024-01-05",
        "country": "GB",
        "employees": 49,
        "acquisition_source": "instagram",
        "acquisition_campaign": "spring-fair",
        "industry": "photography",
    },
    {
        "customer_id": "c-mid-50",
        "name": "Café Crème Catering",
        "created_at": "2024-01-06T10:00:00+01:00",
        "country": "FR",
        "employees": 50,
        "industry": "catering",
        "region": "Île-de-France",
    },
    {"customer_id": "c-mid-999", "name": "Big Venues", "country": "IE", "employees": 999},
    {"customer_id": "c-ent", "name": "Wedding Group Inc", "country": "US", "employees": 1000},
    {"customer_id": "c-none", "name": "No Size Ltd"},
    {"customer_id": "c-explicit", "segment": "Enterprise", "employees": 10},
    {"customer_id": "c-explicit-smb", "segment": "SMB", "employees": 5000},
]
EVENT_FIELDS = [
    "event_id",
    "customer_id",
    "subscription_id",
    "occurred_at",
    "type",
    "plan_id",
    "tier",
    "amount_minor",
    "quantity",
    "currency",
    "interval",
    "interval_count",
    "trial_ends_at",
]


def event(
    event_id: str,
    customer_id: str,
    subscription_id: str,
    at: str,
    kind: str = "start",
    amount: int | str | None = 4900,
    **fields: object,
) -> dict[str, object]:
    record: dict[str, object] = {
        "event_id": event_id,
        "customer_id": customer_id,
        "subscription_id": subscription_id,
        "occurred_at": at,
        "type": kind,
    }
    if kind != "cancel":
        record.update(plan_id="pro-monthly", amount_minor=amount, currency="GBP", interval="month")
    record.update(fields)
    return record


EVENTS: list[dict[str, object]] = [
    event("e1", "c-smb", "s1", "2024-01-10", tier="Professional"),
    event(
        "e2",
        "c-mid-50",
        "s2",
        "2024-01-10T09:30:00+02:00",
        amount=200000,
        plan_id="pro-annual",
        interval="year",
    ),
    event(
        "e3",
        "c-ent",
        "s3",
        "2024-01-31T23:30:00-01:00",
        amount=10000,
        currency="EUR",
        quantity=3,
        plan_id="scale-monthly",
        tier="Scale",
    ),
    event("e4", "c-smb", "s1", "2024-03-01T00:00:00Z", "change", amount=5900),
    event("e5", "c-smb", "s1", "2024-04-15T12:00:00Z", "cancel"),
    event(
        "e6",
        "c-explicit",
        "s6",
        "2024-02-01T00:00:00Z",
        amount=2500,
        currency="USD",
        interval="week",
        interval_count=2,
        trial_ends_at="2024-02-15",
    ),
    event("e7", "c-none", "s7", "2024-02-01T12:00:00.250+05:30", amount=1000, interval="day"),
    event("e8", "c-smb", "s1", "2024-06-01T00:00:00Z", amount=4900),
]
FX_FIELDS = ["date", "currency", "rate"]
FX_RATES: list[dict[str, object]] = [
    {"date": "2024-02-01", "currency": "EUR", "rate": "0.85"},
    {"date": "2024-01-01", "currency": "USD", "rate": "0.79"},
]
SPEND_FIELDS = ["month", "source", "campaign", "amount_minor", "currency"]
SPEND: list[dict[str, object]] = [
    {
        "month": "2024-01",
        "source": "instagram",
        "campaign": "spring-fair",
        "amount_minor": 150000,
        "currency": "GBP",
    },
    {"month": "2024-02", "source": "google_ads", "amount_minor": 90000, "currency": "EUR"},
]
TICKET_FIELDS = ["ticket_id", "customer_id", "opened_at", "closed_at", "priority", "category"]
TICKETS: list[dict[str, object]] = [
    {"ticket_id": "t1", "customer_id": "c-smb", "opened_at": "2024-02-03T09:00:00Z",
     "closed_at": "2024-02-03T11:30:00Z", "priority": "normal", "category": "billing"},
    {"ticket_id": "t2", "customer_id": "c-smb", "opened_at": "2024-04-10T16:00:00Z",
     "priority": "Urgent"},
    {"ticket_id": "t3", "customer_id": "c-ent", "opened_at": "2024-03-01T08:00:00Z",
     "priority": "low", "category": "how-to"},
]  # fmt: skip
FIELDS = {
    "customers": CUSTOMER_FIELDS,
    "subscription_events": EVENT_FIELDS,
    "fx_rates": FX_FIELDS,
    "marketing_spend": SPEND_FIELDS,
    "support_tickets": TICKET_FIELDS,
}
COMPANY = {
    "customers": CUSTOMERS,
    "subscription_events": EVENTS,
    "fx_rates": FX_RATES,
    "marketing_spend": SPEND,
    "support_tickets": TICKETS,
}


def write_file(folder: Path, kind: str, records: Sequence[Record], suffix: str = "csv") -> Path:
    """`folder/kind.suffix` holding records, with all of the data set's columns in a CSV."""
    return write_records(folder / f"{kind}.{suffix}", records, FIELDS[kind])


def write_company(folder: Path, suffix: str = "csv") -> Path:
    for kind, records in COMPANY.items():
        write_file(folder, kind, records, suffix)
    return folder
