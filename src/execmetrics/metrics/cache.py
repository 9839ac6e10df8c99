"""Computed metric documents, cached until the data they were computed from changes.

A document's key holds the request's parameters and the data version: the newest ingestion
and the settings. An ingestion or a settings change makes a new version, so a cached
document is never stale; old versions simply age out. With Redis the cache is shared by
every server process; without, each process keeps its own. Concurrent requests for the same
missing document in one process wait for a single computation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

import redis
from sqlalchemy import Connection, func, select

from execmetrics.store.tables import ingestions, settings

log = logging.getLogger("execmetrics.cache")

MEMORY_ENTRIES = 256
REDIS_SECONDS = 24 * 3600


def data_version(connection: Connection) -> str:
    """Changes whenever an ingestion commits or a setting changes."""
    newest = connection.execute(select(func.max(ingestions.c.id))).scalar()
    stored = sorted(
        tuple(row) for row in connection.execute(select(settings.c.key, settings.c.value))
    )
    digest = hashlib.sha256(json.dumps(stored).encode()).hexdigest()[:16]
    return f"{newest or 0}.{digest}"


def cache_key(kind: str, version: str, **parameters: object) -> str:
    return f"{kind}:{version}:" + json.dumps(parameters, sort_keys=True, default=str)


class DocumentCache:
    def __init__(self, redis_url: str | None = None) -> None:
        self._memory: OrderedDict[str, str] = OrderedDict()
        self._mutex = threading.Lock()
        self._computing: dict[str, threading.Lock] = {}
        self._redis = (
            redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
            if redis_url
            else None
        )

    def document(self, key: str, compute: Callable[[], str]) -> str:
        """The cached document, or `compute()`'s, which is then cached."""
        found = self._get(key)
        if found is not None:
            return found
        with self._mutex:
            lock = self._computing.setdefault(key, threading.Lock())
        with lock:
            found = self._get(key)
            if found is None:
                found = compute()
                self._put(key, found)
        with self._mutex:
            self._computing.pop(key, None)
        return found

    def _get(self, key: str) -> str | None:
        with self._mutex:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        if self._redis is None:
            return None
        try:
            value = self._redis.get("execmetrics:doc:" + key)
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
                self._redis.set("execmetrics:doc:" + key, text, ex=REDIS_SECONDS)
            except redis.RedisError as error:
                log.warning("document not cached in Redis: %s", error)

    def _remember(self, key: str, text: str) -> None:
        with self._mutex:
            self._memory[key] = text
            self._memory.move_to_end(key)
            while len(self._memory) > MEMORY_ENTRIES:
                self._memory.popitem(last=False)
