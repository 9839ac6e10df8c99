"""Cached metric documents: computed once per data version, shared through Redis, never
stale after an ingestion or a settings change."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine
from tests.builders import customer, fx, ingest, start
from typer.testing import CliRunner

from execmetrics.cli import app as cli
from execmetrics.demo import DemoSpec, write_demo
from execmetrics.metrics import cache as cache_module
from execmetrics.metrics.cache import (
    DocumentCache,
    cache_key,
    data_version,
    metrics_document,
    summary_document,
)
from execmetrics.settings_store import set_setting

REDIS_URL = "redis://127.0.0.1:6379/0"


def test_a_document_is_computed_once_per_key() -> None:
    cache = DocumentCache()
    calls: list[str] = []

    def compute(text: str) -> str:
        calls.append(text)
        return text

    assert cache.document("a", lambda: compute("first")) == "first"
    assert cache.document("a", lambda: compute("second")) == "first"
    assert cache.document("b", lambda: compute("other")) == "other"
    assert calls == ["first", "other"]


def test_concurrent_requests_for_a_missing_document_share_one_computation() -> None:
    cache = DocumentCache()
    calls = []
    barrier = threading.Barrier(8)

    def compute() -> str:
        calls.append(1)
        time.sleep(0.2)
        return "document"

    def request() -> None:
        barrier.wait()
        assert cache.document("slow", compute) == "document"

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1


def test_processes_share_documents_through_redis() -> None:
    key = f"test:{uuid.uuid4().hex}"
    DocumentCache(REDIS_URL).document(key, lambda: "computed by one process")
    other_process = DocumentCache(REDIS_URL)
    assert other_process.document(key, lambda: "computed again") == "computed by one process"


def test_an_unreachable_redis_only_costs_the_cache() -> None:
    cache = DocumentCache("redis://127.0.0.1:1/0")
    assert cache.document("k", lambda: "computed") == "computed"


def test_the_data_version_changes_with_each_ingestion_and_setting(engine: Engine) -> None:
    with engine.connect() as connection:
        empty = data_version(connection)
    ingest(engine, customers=[customer("c1")], fx_rates=[fx("2025-01-01", "EUR", "0.85")])
    with engine.connect() as connection:
        first = data_version(connection)
    with engine.begin() as connection:
        set_setting(connection, "gross_margin", "0.8", database_is_empty=False)
    with engine.connect() as connection:
        after_setting = data_version(connection)
    assert len({empty, first, after_setting}) == 3
    assert cache_key("metrics", first, by=None) != cache_key("metrics", after_setting, by=None)


def test_the_command_line_warms_the_shared_cache_after_an_ingestion(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_demo(DemoSpec(customers=40, months=14, seed=3), tmp_path / "demo")
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("EXECMETRICS_REDIS_URL", REDIS_URL)
    result = CliRunner().invoke(cli, ["ingest", str(tmp_path / "demo"), "--db", url])
    assert result.exit_code == 0, result.output

    def no_computing(*_args: object) -> None:
        raise AssertionError("not warmed")

    monkeypatch.setattr(cache_module, "compute_summary", no_computing)
    with engine.connect() as connection:
        document = summary_document(DocumentCache(REDIS_URL), connection)
    assert json.loads(document)["latest_complete"]["metrics"]["customers"]["value"] > 0


def test_processes_wait_for_one_computation_through_redis() -> None:
    key = f"test:{uuid.uuid4().hex}"
    processes = [DocumentCache(REDIS_URL) for _ in range(3)]
    calls = []
    barrier = threading.Barrier(6)

    def compute() -> str:
        calls.append(1)
        time.sleep(0.3)
        return "document"

    def request(cache: DocumentCache) -> None:
        barrier.wait()
        assert cache.document(key, compute) == "document"

    threads = [threading.Thread(target=request, args=(p,)) for p in processes * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1


def test_a_failed_computation_lets_another_process_compute() -> None:
    key = f"test:{uuid.uuid4().hex}"

    def failing() -> str:
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        DocumentCache(REDIS_URL).document(key, failing)
    started = time.perf_counter()
    assert DocumentCache(REDIS_URL).document(key, lambda: "computed") == "computed"
    assert time.perf_counter() - started < cache_module.CLAIM_MILLISECONDS / 1000 / 10


def test_the_ledger_is_read_once_per_data_version(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from execmetrics.metrics import ledger_arrays

    reads: list[int] = []
    real_load = ledger_arrays.load_ledger

    def counted_load(connection: Connection) -> ledger_arrays.LedgerArrays:
        reads.append(1)
        return real_load(connection)

    monkeypatch.setattr(ledger_arrays, "load_ledger", counted_load)
    ingest(engine, events=[start("e1", "c1", "s1", "2025-01-10T00:00:00Z", 1000)])
    cache = DocumentCache()
    with engine.connect() as connection:
        january = metrics_document(cache, connection, date(2025, 1, 1), date(2025, 1, 1))
        metrics_document(cache, connection, date(2025, 1, 1), date(2025, 2, 1))
        summary_document(cache, connection)
    assert len(reads) == 1
    assert json.loads(january)["rows"][0]["mrr_end"] == 1000
    ingest(engine, events=[start("e2", "c2", "s2", "2025-01-20T00:00:00Z", 500)])
    with engine.connect() as connection:
        january = metrics_document(cache, connection, date(2025, 1, 1), date(2025, 1, 1))
    assert len(reads) == 2
    assert json.loads(january)["rows"][0]["mrr_end"] == 1500


def test_a_new_document_format_never_reads_an_old_cached_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from execmetrics.metrics import cache

    before = cache.cache_key("cohorts", "7.abc", interval="month")
    monkeypatch.setattr(cache, "DOCUMENT_FORMAT", cache.DOCUMENT_FORMAT + 1)
    assert cache.cache_key("cohorts", "7.abc", interval="month") != before
