"""Quiet hours: the wall-clock windows in a user's time zone when notifications wait.

A notification that falls in quiet hours is deferred, never dropped: `deferred_until` gives
the instant the quiet stretch ends, and the notification is sent then. Windows that overlap
or meet (22:00-02:00 and 02:00-07:00) form one stretch, and the deferral runs to its end.

Windows are wall-clock times, so they move with daylight saving time:

- A window whose end is earlier than its start crosses midnight: 22:00-07:00 starts on the
  evening of one of its `days` and ends the next morning. A window is shorter than 24 hours
  on the clock, though it may last 23 or 25 hours on a night the clocks change.
- A wall time the clocks skip (01:30 in London on the spring change day) means the first
  instant after the gap, 02:00 BST = 01:00 UTC, whether it starts or ends a window. A window
  lying wholly inside the gap does not happen that day.
- A wall time the clocks repeat (01:30 in London on the autumn change day) starts a window at
  its first occurrence and ends a window at its second. A window is then never shorter than
  its wall-clock length suggests and never negative, and "quiet until 01:30" holds until the
  clock last shows 01:30.

Critical notifications are sent inside quiet hours unless the user turns `critical_bypass`
off. A set of windows that covers every minute of the week is refused, since nothing would
ever be sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from itertools import chain
from typing import Annotated, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)  # in date.weekday() order
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
MAX_WINDOWS = 14
CRITICAL = "critical"
# The days after a notification's own that are searched for the end of a quiet stretch. A
# schedule with a free minute in its week frees that minute within 15 days, even if the
# first occurrence falls into a skipped hour.
SEARCH_DAYS = 16
_WALL_TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_MICROSECOND = timedelta(microseconds=1)
Span = tuple[datetime, datetime]


def _wall_time(text: str) -> str:
    if not _WALL_TIME.fullmatch(text):
        raise ValueError(f"expected a 24-hour time HH:MM (00:00 to 23:59), got {text!r}")
    return text


WallTime = Annotated[str, AfterValidator(_wall_time)]


def minute_of_day(wall_time: str) -> int:
    """Minutes since midnight of an "HH:MM" time."""
    hours, minutes = wall_time.split(":")
    return int(hours) * 60 + int(minutes)


class QuietWindow(BaseModel):
    """One quiet window, from `start` to `end` on the clock, starting on each of `days`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: WallTime
    end: WallTime
    days: Annotated[list[Weekday] | None, Field(min_length=1, max_length=7)] = None

    @field_validator("end")
    @classmethod
    def _not_empty(cls, end: str, info: ValidationInfo) -> str:
        if info.data.get("start") == end:
            raise ValueError(f"end must differ from start ({end}); a window needs a length")
        return end

    @field_validator("days")
    @classmethod
    def _distinct_days(cls, days: list[Weekday] | None) -> list[Weekday] | None:
        if days is not None and len(set(days)) != len(days):
            raise ValueError("each weekday may be given once")
        return days

    def start_minute(self) -> int:
        return minute_of_day(self.start)

    def end_minute(self) -> int:
        return minute_of_day(self.end)

    def length_minutes(self) -> int:
        """Length on the clock; the window crosses midnight when end is before start."""
        return (self.end_minute() - self.start_minute()) % MINUTES_PER_DAY

    def starts_on(self, day: date) -> bool:
        return self.days is None or WEEKDAYS[day.weekday()] in self.days


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None
    return name


class QuietHours(BaseModel):
    """A user's quiet hours: windows on the clock of `time_zone`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_zone: Annotated[str, AfterValidator(_time_zone)]
    windows: Annotated[list[QuietWindow], Field(max_length=MAX_WINDOWS)]
    critical_bypass: bool = True

    @field_validator("windows")
    @classmethod
    def _leaves_time_free(cls, windows: list[QuietWindow]) -> list[QuietWindow]:
        if covers_whole_week(windows):
            raise ValueError("the windows cover the whole week, so nothing could ever be sent")
        return windows

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def weekly_minutes(window: QuietWindow) -> list[tuple[int, int]]:
    """The minutes of the week (Monday 00:00 = 0) a window covers, as [start, end) ranges
    that do not wrap past the end of the week."""
    ranges: list[tuple[int, int]] = []
    for index, name in enumerate(WEEKDAYS):
        if window.days is not None and name not in window.days:
            continue
        start = index * MINUTES_PER_DAY + window.start_minute()
        end = start + window.length_minutes()
        ranges.append((start, min(end, MINUTES_PER_WEEK)))
        if end > MINUTES_PER_WEEK:
            ranges.append((0, end - MINUTES_PER_WEEK))
    return ranges


def covers_whole_week(windows: Iterable[QuietWindow]) -> bool:
    """Whether every minute of the week on the clock is inside some window."""
    reach = 0
    for start, end in sorted(chain.from_iterable(weekly_minutes(w) for w in windows)):
        if start > reach:
            return False
        reach = max(reach, end)
    return reach >= MINUTES_PER_WEEK


def _end_of_gap(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after the gap a skipped wall time falls into, found between the
    wall time read with the offset after the change and with the offset before it."""
    readings = wall.replace(fold=0).astimezone(UTC), wall.replace(fold=1).astimezone(UTC)
    low, high = min(readings), max(readings)
    after = high.astimezone(zone).utcoffset()
    while high - low > _MICROSECOND:
        middle = low + (high - low) // 2
        if middle.astimezone(zone).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high


def wall_instant(day: date, minute: int, zone: ZoneInfo, *, fold: int) -> datetime:
    """The UTC instant of a wall time in `zone`: `fold` picks the occurrence of a repeated
    time (0 the first, 1 the second); a skipped time means the end of the gap."""
    clock = time(minute // 60, minute % 60, fold=fold)
    wall = datetime.combine(day, clock, tzinfo=zone)
    instant = wall.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return instant
    return _end_of_gap(wall, zone)


def window_span(window: QuietWindow, day: date, zone: ZoneInfo) -> Span | None:
    """The UTC span of a window starting on local `day`; None when it does not start that
    day or lies wholly in a skipped hour."""
    if not window.starts_on(day):
        return None
    start = wall_instant(day, window.start_minute(), zone, fold=0)
    end_day = day if window.end_minute() > window.start_minute() else day + timedelta(days=1)
    end = wall_instant(end_day, window.end_minute(), zone, fold=1)
    return (start, end) if end > start else None


def quiet_spans(quiet: QuietHours, first_day: date) -> Iterator[Span]:
    """Every quiet span starting on `first_day` or later, in order of start (a later day's
    spans never start before an earlier day's)."""
    zone = quiet.zone()
    for offset in range(SEARCH_DAYS + 2):
        day = first_day + timedelta(days=offset)
        spans = (window_span(window, day, zone) for window in quiet.windows)
        yield from sorted(span for span in spans if span is not None)


def stretch_end(spans: Iterable[Span], at: datetime) -> datetime | None:
    """The end of the run of overlapping or touching spans that contains `at`; None when no
    span contains it. Spans must come in order of start."""
    reach: datetime | None = None
    for start, end in spans:
        edge = at if reach is None else reach
        if start > edge:
            break
        if end > edge:
            reach = end
    return reach


def _require_aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"instant {at.isoformat()} has no time zone")
    return at.astimezone(UTC)


def deferred_until(quiet: QuietHours | None, at: datetime, severity: str) -> datetime | None:
    """None when a notification of `severity` may be sent at `at`; otherwise the UTC instant
    the quiet stretch containing `at` ends, when it is to be sent instead."""
    moment = _require_aware(at)
    if quiet is None or (severity == CRITICAL and quiet.critical_bypass):
        return None
    local_day = moment.astimezone(quiet.zone()).date()
    return stretch_end(quiet_spans(quiet, local_day - timedelta(days=1)), moment)
