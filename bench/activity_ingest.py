"""Speed of ingesting activity events on SQLite (and, with --database, PostgreSQL).

Writes N synthetic activity events (logins and feature use by 100,000 customers over a
year, in event id order as an export would give them) to a CSV file once, then, per run,
ingests it into a new database holding only the customers, timing `ingest_files` from the
first read to the commit. Run with `.venv/bin/python bench/activity_ingest.py`; stdout
carries the Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from execmetrics.ingest.service import ingest_files  # type: ignore[import-untyped, unused-ignore]
from execmetrics.store.database import open_database  # type: ignore[import-untyped, unused-ignore]
from execmetrics.store.tables import activity_daily  # type: ignore[import-untyped, unused-ignore]

TYPES = ("login", "gallery_upload", "booking_form", "invoice_sent", "client_message")
CHUNK = 1_000_000


def write_inputs(folder: Path, events: int, customers: int, seed: int) -> tuple[Path, Path]:
    customers_file = folder / "customers.csv"
    with customers_file.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "name"])
        writer.writerows([f"cus_{n:06d}", f"Customer {n}"] for n in range(customers))
    activity_dir = folder / "activity"
    activity_dir.mkdir(exist_ok=True)
    activity_file = activity_dir / "activity_events.csv"
    rng = np.random.default_rng(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    days = [(start + timedelta(days=d)).date().isoformat() for d in range(365)]
    with activity_file.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["event_id", "customer_id", "user_id", "occurred_at", "type", "quantity"])
        for first in range(0, events, CHUNK):
            size = min(CHUNK, events - first)
            who = rng.integers(0, customers, size).tolist()
            day = rng.integers(0, 365, size).tolist()
            second = rng.integers(0, 86_400, size).tolist()
            kind = rng.choice(len(TYPES), size, p=[0.45, 0.2, 0.15, 0.1, 0.1]).tolist()
            user = rng.integers(1, 4, size).tolist()
            quantity = rng.integers(1, 300, size).tolist()
            writer.writerows(
                [
                    f"act_{first + n:010d}",
                    f"cus_{who[n]:06d}",
                    f"u{who[n]}-{user[n]}",
                    f"{days[day[n]]}T{second[n] // 3600:02d}:{second[n] // 60 % 60:02d}:"
                    f"{second[n] % 60:02d}Z",
                    TYPES[kind[n]],
                    quantity[n] if kind[n] == 1 else "",
                ]
                for n in range(size)
            )
    return customers_file, activity_dir


def run(url: str, customers_file: Path, activity_dir: Path) -> tuple[float, int, int]:
    """Seconds to ingest the activity, events stored, daily rows."""
    engine = open_database(url)
    ingest_files(engine, [customers_file])
    started = time.perf_counter()
    result = ingest_files(engine, [activity_dir])
    seconds = time.perf_counter() - started
    with engine.connect() as connection:
        stored, rows = connection.execute(
            select(func.sum(activity_daily.c.events), func.count())
        ).one()
    engine.dispose()
    assert stored == result.counts["activity_events"].inserted
    return seconds, int(stored), int(rows)


def fresh_postgres(admin_url: str, name: str) -> str:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return str(make_url(admin_url).set(database=name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work-dir", type=Path, default=Path("var/bench-activity"))
    parser.add_argument(
        "--postgres", metavar="ADMIN_URL", help="also measure PostgreSQL, in a database "
        "created (and dropped) through this URL, e.g. postgresql+psycopg://postgres@127.0.0.1/postgres",
    )  # fmt: skip
    arguments = parser.parse_args(argv)
    folder = arguments.work_dir
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f"inputs-{arguments.events}-{arguments.customers}-{arguments.seed}"
    if not marker.exists():
        print(f"writing {arguments.events:,} activity events", file=sys.stderr)
        write_inputs(folder, arguments.events, arguments.customers, arguments.seed)
        marker.touch()
    customers_file, activity_dir = folder / "customers.csv", folder / "activity"
    size = (activity_dir / "activity_events.csv").stat().st_size
    targets = [("SQLite", lambda: f"sqlite:///{folder / 'activity.db'}")]
    if arguments.postgres:
        targets.append(("PostgreSQL", lambda: fresh_postgres(arguments.postgres, "bench_activity")))
    print(f"{arguments.events:,} activity events ({size / 1e6:,.0f} MB of CSV), "
          f"{arguments.customers:,} customers, {arguments.runs} runs")  # fmt: skip
    print()
    print("| database | median time | events per second | daily rows | runs |")
    print("|---|---|---|---|---|")
    for label, url_of in targets:
        timings: list[float] = []
        rows = 0
        for _ in range(arguments.runs):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{folder / 'activity.db'}{suffix}").unlink(missing_ok=True)
            seconds, stored, rows = run(url_of(), customers_file, activity_dir)
            assert stored == arguments.events
            timings.append(seconds)
            print(f"{label}: {seconds:.1f} s", file=sys.stderr)
        median = statistics.median(timings)
        print(f"| {label} | {median:.1f} s | {arguments.events / median:,.0f} | {rows:,} "
              f"| {', '.join(f'{t:.1f}' for t in timings)} s |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
