"""Killing `execmetrics ingest` part-way leaves the database exactly as it was before."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from tests.ingest.support import snapshot, table_counts, write_company

from execmetrics.ingest.service import ingest_files
from execmetrics.store.database import open_database

POSTGRES_ADMIN_URL = os.environ.get(
    "EXECMETRICS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
CUSTOMERS = 20_000
EVENTS_PER_CUSTOMER = 10
TIMEOUT = 60.0


def write_large_input(folder: Path) -> int:
    """20,000 customers with 200,000 valid subscription events; returns the event count.

    Some events belong to customers of the small company ingested before, so that the
    kill can also interrupt the rebuild of ledger rows that existed before."""
    folder.mkdir(parents=True)
    with (folder / "customers.csv").open("w") as out:
        out.write("customer_id,name,country,employees\n")
        out.writelines(f"k{i},Customer {i},GB,{i % 2000}\n" for i in range(CUSTOMERS))
    lines = [
        "event_id,customer_id,subscription_id,occurred_at,type,plan_id,amount_minor,"
        "currency,interval\n"
    ]
    for i in range(CUSTOMERS):
        customer = f"k{i}" if i % 100 else "c-mid-999"
        sub, month = f"k-s{i}", i % 12 + 1
        lines.append(
            f"k{i}-0,{customer},{sub},2023-{month:02d}-01T00:00:00Z,start,pro,"
            f"{1000 + i % 50},GBP,month\n"
        )
        lines.extend(
            f"k{i}-{j},{customer},{sub},2023-{month:02d}-{j + 1:02d}T00:00:00Z,change,pro,"
            f"{1000 + 10 * j},GBP,month\n"
            for j in range(1, EVENTS_PER_CUSTOMER - 1)
        )
        lines.append(f"k{i}-9,{customer},{sub},2023-{month:02d}-20T12:00:00Z,cancel,,,,\n")
    (folder / "subscription_events.csv").write_text("".join(lines))
    return len(lines) - 1


def start_ingest(folder: Path, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "execmetrics.cli",
            "ingest",
            str(folder),
            "--db",
            url,
            "--format",
            "json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            pytest.fail(f"ingest ended (exit {process.returncode}) before {what}:\n{stderr}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def kill_mid_ingest(process: subprocess.Popen[bytes], writing: Callable[[], bool]) -> None:
    """Wait until the ingest is writing in its transaction, let it write for a second, and
    SIGKILL it, checking that it was still running and still inside its transaction."""
    try:
        wait_for(writing, process, "the ingest transaction started writing")
        time.sleep(1.0)
        assert writing(), "the ingest transaction ended before the kill"
        assert process.poll() is None, "the ingest finished before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=TIMEOUT) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


def sqlite_write_locked(path: Path) -> bool:
    """Whether another connection holds the database's write lock (a write transaction)."""
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            return True
        raise
    else:
        connection.execute("ROLLBACK")
        return False
    finally:
        connection.close()


def test_killing_ingest_leaves_a_sqlite_database_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "kill.db"
    url = f"sqlite:///{path}"
    engine = open_database(url)
    try:
        ingest_files(engine, [write_company(tmp_path / "before")])
        before = snapshot(engine)
        assert table_counts(engine)["subscription_events"] > 0
        engine.dispose()
        assert write_large_input(tmp_path / "large") == CUSTOMERS * EVENTS_PER_CUSTOMER
        assert not sqlite_write_locked(path)

        kill_mid_ingest(start_ingest(tmp_path / "large", url), lambda: sqlite_write_locked(path))

        with sqlite3.connect(path) as check:
            assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert snapshot(engine) == before
        # The database is not left locked: a later ingest works.
        ingest_files(engine, [write_company(tmp_path / "before")])
        assert snapshot(engine)["customers"] == before["customers"]
    finally:
        engine.dispose()


@pytest.fixture
def own_postgres_database() -> Iterator[str]:
    """A PostgreSQL database for this test alone, dropped afterwards."""
    name = f"execmetrics_kill_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def other_writers(engine: Engine) -> int:
    """Sessions on this database, other than ours, whose transaction has written something."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
                )
            ).scalar_one()
        )


def other_sessions(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )


def test_killing_ingest_leaves_a_postgresql_database_as_it_was(
    tmp_path: Path, own_postgres_database: str
) -> None:
    engine = open_database(own_postgres_database)
    try:
        ingest_files(engine, [write_company(tmp_path / "before")])
        before = snapshot(engine)
        assert table_counts(engine)["subscription_events"] > 0
        write_large_input(tmp_path / "large")
        # Only the engine's idle pooled connection may be left from here on.
        engine.dispose()
        assert other_writers(engine) == 0

        kill_mid_ingest(
            start_ingest(tmp_path / "large", own_postgres_database),
            lambda: other_writers(engine) > 0,
        )

        # The server rolls back the killed client's transaction when it notices the
        # connection is gone; wait for that session to end.
        deadline = time.monotonic() + TIMEOUT
        while other_sessions(engine) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert other_sessions(engine) == 0, "the killed ingest's session never ended"
        assert snapshot(engine) == before
        ingest_files(engine, [write_company(tmp_path / "before")])
        assert snapshot(engine)["customers"] == before["customers"]
    finally:
        engine.dispose()
