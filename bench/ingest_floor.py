"""The least a full ingest of the demo company must spend writing, on this machine.

A lower bound for the full-ingest figures of bench/revenue_engine.py. The script ingests the
demo company into a SQLite file, reads back every row the ingest stored (customers,
subscription events, the MRR ledger), then, for each database, writes exactly those rows
into a new, empty database with the ingest's own bulk writer (SQLite `executemany`,
PostgreSQL `COPY`) in one transaction, and times that: no reading of files, no validation,
no merge, no ledger replay. The events per second an ingest could reach if everything but
these writes were free is the number of events divided by that time.

    .venv/bin/python bench/ingest_floor.py [--customers 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Connection, Table, select

from execmetrics.accounts.roles import Role
from execmetrics.ingest.service import ingest_files
from execmetrics.store.bulk import bulk_insert
from execmetrics.store.database import open_database
from execmetrics.store.tables import (
    customer_ledger,
    customers,
    ingestions,
    mrr_movements,
    subscription_events,
    subscription_mrr_spans,
)
from revenue_engine import DEFAULT_POSTGRES_URL, cli_path, fresh_database, log

# In the order an ingest writes them; the ingestions row first, which the others name.
TABLES = (
    ingestions,
    customers,
    subscription_events,
    mrr_movements,
    subscription_mrr_spans,
    customer_ledger,
)
TARGETS = {"sqlite": 50_000, "postgresql": 30_000}


def stored_rows(url: str) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    engine = open_database(url)
    with engine.connect() as connection:
        return {table.name: _rows(connection, table) for table in TABLES}


def _rows(connection: Connection, table: Table) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Every row as the bulk writer takes it: JSON columns (custom attributes) as text."""
    columns = [column.name for column in table.columns]
    json_columns = {i for i, column in enumerate(table.columns) if isinstance(column.type, JSON)}
    return columns, [
        tuple(
            json.dumps(value) if i in json_columns and value is not None else value
            for i, value in enumerate(row)
        )
        for row in connection.execute(select(table))
    ]


def write_once(url: str, rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> float:
    """Seconds to write every row into the empty database at `url`, committed."""
    engine = open_database(url, session_role=Role.ADMIN.value)
    try:
        with engine.connect() as connection:
            started = time.perf_counter()
            with connection.begin():
                for table in TABLES:
                    columns, values = rows[table.name]
                    bulk_insert(connection, table, columns, values)
            return time.perf_counter() - started
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="execmetrics-ingest-floor-") as folder:
        work = Path(folder)
        log(f"generating the demo company ({args.customers:,} customers)")
        subprocess.run(
            [cli_path(), "demo", "--customers", str(args.customers), "--months", "36",
             "--seed", "7", "--end", "2025-12", "--out", str(work / "demo")],
            check=True, capture_output=True,
        )  # fmt: skip
        source = f"sqlite:///{work / 'source.sqlite3'}"
        log("ingesting it once, for the rows an ingest stores")
        ingest_files(open_database(source), [work / "demo"])
        rows = stored_rows(source)
        events = len(rows[subscription_events.name][1])
        lines = ["| database | rows written | write time (median) | events per second at most |"]
        lines.append("|---|---|---|---|")
        for kind in args.databases.split(","):
            seconds = []
            for run in range(args.runs):
                with fresh_database(kind, args.postgres_url, work) as (url, _):
                    seconds.append(write_once(url, rows))
                log(f"{kind}: run {run + 1}: {seconds[-1]:.2f} s")
            median = statistics.median(seconds)
            total = sum(len(values) for _, values in rows.values())
            lines.append(
                f"| {kind} | {total:,} | {median:.2f} s | {events / median:,.0f} "
                f"(target {TARGETS.get(kind, 0):,}) |"
            )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
