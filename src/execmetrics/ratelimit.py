"""Sliding-window rate limits, in Redis (shared by every server process) or in memory.

A window is a log of request instants per key: a request is allowed while fewer than `limit`
instants lie in the last `window` seconds. Redis runs each check as one Lua script, so
concurrent processes never both take the last slot.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import redis

from execmetrics import redis_client
from execmetrics.errors import RateLimited, Unavailable

log = logging.getLogger("execmetrics.ratelimit")

HOUR = 3600
MAX_LOCKOUT_SECONDS = 24 * HOUR
FIRST_LOCKOUT_SECONDS = 60


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the oldest counted request leaves the window


class Backend(Protocol):
    def take(self, key: str, limit: int, window: int) -> Decision: ...

    def add(self, key: str, window: int) -> int: ...

    def count(self, key: str, window: int) -> int: ...

    def clear(self, key: str) -> None: ...

    def lock(self, key: str, seconds: int) -> None: ...

    def locked_for(self, key: str) -> int: ...

    def bump(self, key: str, ttl: int) -> int: ...


class MemoryBackend:
    """One process's limits; right for a single server process."""

    def __init__(self) -> None:
        self._logs: dict[str, deque[float]] = {}
        self._locks: dict[str, float] = {}
        self._levels: dict[str, tuple[int, float]] = {}
        self._mutex = threading.Lock()

    def _window(self, key: str, window: int, now: float) -> deque[float]:
        entries = self._logs.setdefault(key, deque())
        while entries and entries[0] <= now - window:
            entries.popleft()
        return entries

    def take(self, key: str, limit: int, window: int) -> Decision:
        now = time.time()
        with self._mutex:
            entries = self._window(key, window, now)
            allowed = len(entries) < limit
            if allowed:
                entries.append(now)
            reset = math.ceil(entries[0] + window - now) if entries else window
            return Decision(allowed, limit, max(limit - len(entries), 0), max(reset, 1))

    def add(self, key: str, window: int) -> int:
        now = time.time()
        with self._mutex:
            entries = self._window(key, window, now)
            entries.append(now)
            return len(entries)

    def count(self, key: str, window: int) -> int:
        with self._mutex:
            return len(self._window(key, window, time.time()))

    def clear(self, key: str) -> None:
        with self._mutex:
            self._logs.pop(key, None)

    def lock(self, key: str, seconds: int) -> None:
        with self._mutex:
            self._locks[key] = time.time() + seconds

    def locked_for(self, key: str) -> int:
        with self._mutex:
            until = self._locks.get(key, 0.0)
        return max(math.ceil(until - time.time()), 0)

    def bump(self, key: str, ttl: int) -> int:
        now = time.time()
        with self._mutex:
            level, expires = self._levels.get(key, (0, 0.0))
            level = level + 1 if expires > now else 1
            self._levels[key] = (level, now + ttl)
            return level


# KEYS[1]: the log; ARGV: now (ms), window (ms), limit, a unique member.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reset = tonumber(ARGV[2])
if oldest[2] then reset = tonumber(oldest[2]) + tonumber(ARGV[2]) - tonumber(ARGV[1]) end
return {allowed, count, reset}
"""
_ADD = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])
"""


class RedisBackend:
    """Limits shared by every server process through one Redis."""

    def __init__(self, url: str, prefix: str = "execmetrics:rl:") -> None:
        self.client = redis_client.connect(url)
        self.prefix = prefix
        self._take = self.client.register_script(_TAKE)
        self._add = self.client.register_script(_ADD)

    @staticmethod
    def _now_ms() -> int:
        return time.time_ns() // 1_000_000

    def take(self, key: str, limit: int, window: int) -> Decision:
        args: list[str | int] = [self._now_ms(), window * 1000, limit, uuid.uuid4().hex]
        allowed, count, reset_ms = self._take(keys=[self.prefix + key], args=args)
        return Decision(
            bool(allowed), limit, max(limit - int(count), 0), max(math.ceil(reset_ms / 1000), 1)
        )

    def add(self, key: str, window: int) -> int:
        args: list[str | int] = [self._now_ms(), window * 1000, uuid.uuid4().hex]
        return int(self._add(keys=[self.prefix + key], args=args))

    def count(self, key: str, window: int) -> int:
        name = self.prefix + key
        now = self._now_ms()
        return int(self.client.zcount(name, now - window * 1000 + 1, "+inf"))

    def clear(self, key: str) -> None:
        self.client.delete(self.prefix + key)

    def lock(self, key: str, seconds: int) -> None:
        self.client.set(self.prefix + "lock:" + key, 1, ex=seconds)

    def locked_for(self, key: str) -> int:
        return max(int(self.client.ttl(self.prefix + "lock:" + key)), 0)

    def bump(self, key: str, ttl: int) -> int:
        name = self.prefix + "level:" + key
        pipeline = self.client.pipeline()
        pipeline.incr(name)
        pipeline.expire(name, ttl)
        level, _ = pipeline.execute()
        return int(level)


@dataclass
class Limiter:
    backend: Backend

    def check_request(self, identity: str, limit: int) -> Decision:
        """Count one request of an identity against its hourly limit; `allowed` says whether
        it may proceed.

        Fails open when Redis is unreachable: reads stay available, and the failure is
        logged.
        """
        try:
            return self.backend.take("req:" + identity, limit, HOUR)
        except redis.RedisError as error:
            log.warning("rate limit not applied, Redis unreachable: %s", error)
            return Decision(True, limit, limit, HOUR)

    def check_signin(self, account: str, client: str, per_account: int, per_client: int,
                     window: int) -> None:  # fmt: skip
        """Before checking a password: refuse while the account or address is locked out.

        Fails closed: when Redis is unreachable, nobody signs in.
        """
        try:
            wait = max(
                self.backend.locked_for("signin-account:" + account),
                self.backend.locked_for("signin-client:" + client),
            )
            if not wait and self.backend.count("signin-client:" + client, window) >= per_client:
                wait = window
        except redis.RedisError as error:
            log.error("sign-in refused, Redis unreachable: %s", error)
            raise Unavailable(
                "sign-in is unavailable: the rate limiter cannot be reached"
            ) from None
        if wait:
            raise RateLimited("too many failed sign-ins; try again later", retry_after=wait)

    def signin_failed(self, account: str, client: str, per_account: int, window: int) -> None:
        """Count a failure; at the limit, lock the account out for a period that doubles with
        each lockout within a day (1 minute, 2, 4, ... up to 24 hours)."""
        try:
            self.backend.add("signin-client:" + client, window)
            failures = self.backend.add("signin-account:" + account, window)
            if failures >= per_account:
                level = self.backend.bump("signin-account:" + account, MAX_LOCKOUT_SECONDS)
                seconds = min(FIRST_LOCKOUT_SECONDS * 2 ** (level - 1), MAX_LOCKOUT_SECONDS)
                self.backend.lock("signin-account:" + account, seconds)
                self.backend.clear("signin-account:" + account)
        except redis.RedisError as error:
            log.error("sign-in failure not counted, Redis unreachable: %s", error)

    def signin_succeeded(self, account: str) -> None:
        try:
            self.backend.clear("signin-account:" + account)
        except redis.RedisError as error:
            log.error("sign-in success not recorded, Redis unreachable: %s", error)


def make_limiter(redis_url: str | None) -> Limiter:
    return Limiter(RedisBackend(redis_url) if redis_url else MemoryBackend())
