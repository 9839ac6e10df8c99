"""Instants, stored as integer microseconds since the Unix epoch (UTC).

Integers compare and index the same way on SQLite and PostgreSQL, and period boundaries in
any IANA time zone become plain integer comparisons in the analytics queries.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


class TimestampError(ValueError):
    """A timestamp that is not ISO 8601 with an offset, `Z`, or a plain date."""


def to_micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise TimestampError(f"timestamp {moment.isoformat()} has no time zone")
    return (moment - EPOCH) // MICROSECOND


def now_micros() -> int:
    return time.time_ns() // 1000


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def date_to_micros(day: date) -> int:
    return to_micros(datetime(day.year, day.month, day.day, tzinfo=UTC))


def utc_date(micros: int) -> date:
    return from_micros(micros).date()


def parse_timestamp(text: str) -> int:
    """ISO 8601 with an offset or `Z`; a date alone means 00:00 UTC. Returns microseconds."""
    stripped = text.strip()
    if len(stripped) == 10:
        try:
            return date_to_micros(date.fromisoformat(stripped))
        except ValueError:
            raise TimestampError(f"not a date or ISO 8601 timestamp: {text!r}") from None
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise TimestampError(f"not an ISO 8601 timestamp: {text!r}") from None
    if moment.tzinfo is None:
        raise TimestampError(f"timestamp {text!r} needs an offset or Z (e.g. {stripped}Z)")
    return to_micros(moment)


def format_micros(micros: int) -> str:
    return from_micros(micros).isoformat().replace("+00:00", "Z")


_DURATION_UNITS = {"d": 86_400, "h": 3_600, "m": 60}


def parse_duration(text: str) -> int:
    """`90d`, `12h` or `30m` as microseconds."""
    value, unit = text.strip()[:-1], text.strip()[-1:]
    if unit not in _DURATION_UNITS or not value.isdigit() or not 0 < int(value) <= 100_000:
        raise ValueError(f"expected a duration such as 90d, 12h or 30m, got {text!r}")
    return int(value) * _DURATION_UNITS[unit] * 10**6
