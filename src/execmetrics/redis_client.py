"""The Redis client of the rate limiter and the document cache."""

from __future__ import annotations

import redis
from redis.driver_info import DriverInfo

from execmetrics import __version__

# Short timeouts: a Redis that stops answering must cost a request milliseconds, not seconds
# (the callers then fail open or closed as they document).
TIMEOUT_SECONDS = 0.5
# Naming the client up front spares every new connection a read of redis-py's package
# metadata from disk, which made the first requests of a new server process queue.
DRIVER = DriverInfo(name="execmetrics", lib_version=__version__)


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=TIMEOUT_SECONDS,
        socket_connect_timeout=TIMEOUT_SECONDS,
        driver_info=DRIVER,
    )
