"""Reporting periods (ISO week, calendar month, quarter, year) in an IANA time zone."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from execmetrics.timeutil import to_micros

INTERVALS = ("week", "month", "quarter", "year")
# How many periods back "the same period one year earlier" is.
PERIODS_PER_YEAR = {"week": 52, "month": 12, "quarter": 4, "year": 1}
# Periods are in these years, which leaves room for a year of history before the first.
FIRST_YEAR, LAST_YEAR = 1900, 2999
# The longest range a request may ask for: ten years of weeks, 43 years of months.
MAX_PERIODS = 520


class PeriodError(ValueError):
    """A period label, interval or time zone that cannot be used."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter


@dataclass(frozen=True, slots=True)
class Period:
    label: str
    start: date  # local calendar date at which the period starts, 00:00 in the time zone
    end: date
    start_us: int
    end_us: int


def time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError("tz", f"unknown IANA time zone {name!r}") from None


def local_midnight_us(day: date, zone: ZoneInfo) -> int:
    return to_micros(datetime(day.year, day.month, day.day, tzinfo=zone))


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's last day (29 Feb -> 28 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def period_start(day: date, interval: str) -> date:
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    if interval == "quarter":
        return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return date(day.year, 1, 1)


def next_start(start: date, interval: str) -> date:
    if interval == "week":
        return start + timedelta(days=7)
    return add_months(start, {"month": 1, "quarter": 3, "year": 12}[interval])


def label(start: date, interval: str) -> str:
    if interval == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if interval == "month":
        return f"{start.year}-{start.month:02d}"
    if interval == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return str(start.year)


_LABELS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], date]]] = [
    (re.compile(r"(\d{4})-W(\d{2})"), lambda m: date.fromisocalendar(int(m[1]), int(m[2]), 1)),
    (re.compile(r"(\d{4})-Q([1-4])"), lambda m: date(int(m[1]), 3 * int(m[2]) - 2, 1)),
    (re.compile(r"(\d{4})-(\d{2})-(\d{2})"), lambda m: date(int(m[1]), int(m[2]), int(m[3]))),
    (re.compile(r"(\d{4})-(\d{2})"), lambda m: date(int(m[1]), int(m[2]), 1)),
    (re.compile(r"(\d{4})"), lambda m: date(int(m[1]), 1, 1)),
]


def parse_label(text: str, parameter: str) -> date:
    """A day from `2024-01`, `2024-01-15`, `2024-W05`, `2024-Q1` or `2024`."""
    for pattern, to_date in _LABELS:
        match = pattern.fullmatch(text.strip())
        if match:
            try:
                day = to_date(match)
            except ValueError:
                break
            if not FIRST_YEAR <= day.year <= LAST_YEAR:
                raise PeriodError(
                    parameter, f"years {FIRST_YEAR} to {LAST_YEAR} only, got {text!r}"
                )
            return day
    raise PeriodError(
        parameter, f"expected a period such as 2024-01, 2024-W05, 2024-Q1 or 2024, got {text!r}"
    )


def make_period(start: date, interval: str, zone: ZoneInfo) -> Period:
    end = next_start(start, interval)
    return Period(
        label(start, interval),
        start,
        end,
        local_midnight_us(start, zone),
        local_midnight_us(end, zone),
    )


def periods_between(first: date, last: date, interval: str, zone: ZoneInfo) -> list[Period]:
    """Every period from the one containing `first` to the one containing `last`, inclusive."""
    if interval not in INTERVALS:
        raise PeriodError("interval", f"expected one of {', '.join(INTERVALS)}, got {interval!r}")
    start = period_start(first, interval)
    stop = period_start(last, interval)
    if start > stop:
        raise PeriodError("to", "must not be before --from")
    periods: list[Period] = []
    while start <= stop:
        if len(periods) == MAX_PERIODS + PERIODS_PER_YEAR["week"]:
            # Room for the year of history that year-on-year figures read before --from.
            raise PeriodError("from", f"the range is longer than {MAX_PERIODS} periods")
        periods.append(make_period(start, interval, zone))
        start = periods[-1].end
    return periods


def default_range(
    first: str | None, last: str | None, interval: str, tz: str, periods: int = 12
) -> tuple[date, date]:
    """`from` and `to` as dates; by default the last `periods` complete periods in the zone."""
    today = datetime.now(time_zone(tz)).date()
    end = (
        parse_label(last, "to")
        if last
        else shift_periods(period_start(today, interval), interval, 1)
    )
    start = parse_label(first, "from") if first else shift_periods(end, interval, periods - 1)
    return start, end


def shift_periods(start: date, interval: str, count: int) -> date:
    """The start of the period `count` periods before the one starting at `start`."""
    if interval == "week":
        return start - timedelta(days=7 * count)
    return add_months(start, -count * {"month": 1, "quarter": 3, "year": 12}[interval])
