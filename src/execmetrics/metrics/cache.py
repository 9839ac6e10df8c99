"""Computed metric documents, cached until the data they were computed from changes.

A document's key holds the request's parameters and the data version: the database's id,
the newest ingestion and the settings. An ingestion or a settings change makes a new
version, so a cached document is never stale; old versions simply age out. With Redis the
cache is shared by every server process; without, each process keeps its own. Concurrent
requests for the same missing document in one process wait for a single computation.

Each process also keeps the movement ledger of the current data version in memory
(metrics/ledger_arrays.py), so a document not yet cached is computed without reading the
ledger again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING

import redis
from sqlalchemy import Connection, func, select

from execmetrics import redis_client, render
from execmetrics.metrics.cohorts import compute_cohorts
from execmetrics.metrics.periods import default_range, period_start, time_zone
from execmetrics.metrics.service import compute_metrics
from execmetrics.metrics.summary import compute_summary
from execmetrics.store.tables import ingestions, settings

if TYPE_CHECKING:
    from execmetrics.metrics.ledger_arrays import LedgerArrays

log = logging.getLogger("execmetrics.cache")

MEMORY_ENTRIES = 256
REDIS_SECONDS = 24 * 3600
DOCUMENT_PREFIX = "execmetrics:doc:"
CLAIM_PREFIX = "execmetrics:computing:"
# How long another process may take to compute a document before a waiting one computes it.
CLAIM_MILLISECONDS = 60_000
CLAIM_POLL_SECONDS = 0.005


def data_version(connection: Connection) -> str:
    """Changes whenever an ingestion commits or a setting changes."""
    # One round trip: every request for a cached document asks this first.
    newest_ingestion = select(func.max(ingestions.c.id))
    rows = connection.execute(
        select(settings.c.key, settings.c.value, newest_ingestion.scalar_subquery())
    ).all()
    newest = rows[0][2] if rows else connection.execute(newest_ingestion).scalar()
    stored = sorted((key, value) for key, value, _ in rows)
    digest = hashlib.sha256(json.dumps(stored).encode()).hexdigest()[:16]
    return f"{newest or 0}.{digest}"


# Raised whenever a document gains or loses a field, so that a server of the new code never
# serves a document cached by the old one for the same data.
DOCUMENT_FORMAT = 3


def cache_key(kind: str, version: str, **parameters: object) -> str:
    return f"{kind}:f{DOCUMENT_FORMAT}:{version}:" + json.dumps(
        parameters, sort_keys=True, default=str
    )


class DocumentCache:
    def __init__(self, redis_url: str | None = None) -> None:
        self._memory: OrderedDict[str, str] = OrderedDict()
        self._mutex = threading.Lock()
        self._computing: dict[str, threading.Lock] = {}
        self._ledger: tuple[str, LedgerArrays] | None = None
        self._ledger_lock = threading.Lock()
        self._redis = redis_client.connect(redis_url) if redis_url else None

    def document(self, key: str, compute: Callable[[], str]) -> str:
        """The cached document, or `compute()`'s, which is then cached."""
        found = self._get(key)
        if found is not None:
            return found
        with self._mutex:
            lock = self._computing.setdefault(key, threading.Lock())
        with lock:
            found = self._get(key) or self._computed_elsewhere(key)
            if found is None:
                try:
                    found = compute()
                    self._put(key, found)
                finally:
                    self._release_claim(key)
        with self._mutex:
            self._computing.pop(key, None)
        return found

    def _computed_elsewhere(self, key: str) -> str | None:
        """With Redis, one process computes a missing document while the others wait for it:
        the document when another process claimed it and stored it in time, None when this
        process should compute it (its claim taken, or the other's claim gone unfulfilled)."""
        if self._redis is None:
            return None
        claim = CLAIM_PREFIX + key
        waited = 0.0
        try:
            while not self._redis.set(claim, "1", nx=True, px=CLAIM_MILLISECONDS):
                if waited >= CLAIM_MILLISECONDS / 1000:
                    return None
                time.sleep(CLAIM_POLL_SECONDS)
                waited += CLAIM_POLL_SECONDS
                found = self._get(key)
                if found is not None:
                    return found
            # The claim is ours; its last holder may have stored the document just before
            # letting go of it, between our last look and our taking it.
            found = self._get(key)
            if found is not None:
                self._release_claim(key)
                return found
        except redis.RedisError as error:
            log.warning("document cache unavailable: %s", error)
        return None

    def _release_claim(self, key: str) -> None:
        if self._redis is not None:
            try:
                self._redis.delete(CLAIM_PREFIX + key)
            except redis.RedisError as error:
                log.warning("document cache unavailable: %s", error)

    def ledger(self, connection: Connection, version: str) -> LedgerArrays:
        """The movement ledger at `version`, read once per version (concurrent callers wait
        for one read). The connection must be allowed to read the ledger."""
        from execmetrics.metrics.ledger_arrays import load_ledger

        with self._ledger_lock:
            if self._ledger is None or self._ledger[0] != version:
                self._ledger = None  # the old version's memory goes before the new is read
                self._ledger = (version, load_ledger(connection))
            return self._ledger[1]

    def current_ledger(self, connection: Connection) -> LedgerArrays:
        """`ledger` at the connection's current data version."""
        return self.ledger(connection, data_version(connection))

    def _get(self, key: str) -> str | None:
        with self._mutex:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        if self._redis is None:
            return None
        try:
            value = self._redis.get(DOCUMENT_PREFIX + key)
        except redis.RedisError as error:
            log.warning("document cache unavailable: %s", error)
            return None
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        self._remember(key, text)
        return text

    def _put(self, key: str, text: str) -> None:
        self._remember(key, text)
        if self._redis is not None:
            try:
                self._redis.set(DOCUMENT_PREFIX + key, text, ex=REDIS_SECONDS)
            except redis.RedisError as error:
                log.warning("document not cached in Redis: %s", error)

    def _remember(self, key: str, text: str) -> None:
        with self._mutex:
            self._memory[key] = text
            self._memory.move_to_end(key)
            while len(self._memory) > MEMORY_ENTRIES:
                self._memory.popitem(last=False)


def metrics_document(
    cache: DocumentCache,
    connection: Connection,
    first: date,
    last: date,
    interval: str = "month",
    tz: str = "UTC",
    by: str | None = None,
) -> str:
    """The JSON text of `execmetrics metrics --format json`, from the cache when it holds it."""
    version = data_version(connection)
    key = cache_key("metrics", version, first=first, last=last, interval=interval, tz=tz, by=by)

    def compute() -> str:
        ledger = cache.ledger(connection, version)
        return render.to_json(compute_metrics(connection, first, last, interval, tz, by, ledger))

    return cache.document(key, compute)


def cohorts_document(
    cache: DocumentCache, connection: Connection, first: date, last: date, interval: str, tz: str
) -> str:
    key = cache_key("cohorts", data_version(connection), first=first, last=last,
                    interval=interval, tz=tz)  # fmt: skip
    return cache.document(
        key, lambda: render.to_json(compute_cohorts(connection, first, last, interval, tz))
    )


def summary_document(cache: DocumentCache, connection: Connection, tz: str = "UTC") -> str:
    today = datetime.now(time_zone(tz)).date()
    version = data_version(connection)
    key = cache_key("summary", version, tz=tz, month=period_start(today, "month"))

    def compute() -> str:
        summary = compute_summary(connection, tz, today, cache.ledger(connection, version))
        return render.json_text(summary, indent=None)

    return cache.document(key, compute)


# The documents the dashboard and the default API requests ask for first.
WARM_METRICS_PERIODS = (12, 24)


def warm_documents(cache: DocumentCache, connection: Connection) -> None:
    """Compute the default documents for the current data, so the first requests after an
    ingestion are served from the cache. The connection must be allowed to read the ledger."""
    summary_document(cache, connection)
    for periods in WARM_METRICS_PERIODS:
        first, last = default_range(None, None, "month", "UTC", periods)
        metrics_document(cache, connection, first, last)
