"""A series of values at consecutive periods, as forecasting and anomaly detection read it:
from a CSV file a user brings (columns `period,value`) or from the engine's own metrics.

Periods are labels such as `2024-01` (months), `2024-Q1` (quarters), `2024-W05` (ISO weeks),
`2024` (years), or dates (`2024-01-15`), which are days when one day apart and weeks when
seven days apart. The periods must follow one another without gaps or repeats, oldest first.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from execmetrics.metrics.periods import PeriodError, label, next_start, parse_label

# The length of a season, in periods: the pattern a year (or a week of days) repeats.
SEASON_LENGTH = {"day": 7, "week": 52, "month": 12, "quarter": 4, "year": 1}
DATE_LENGTH = len("2024-01-15")
LABEL_INTERVALS = {"W": "week", "Q": "quarter"}


class SeriesError(ValueError):
    """A series that cannot be read; the message names the file and line, or the field."""


@dataclass(frozen=True)
class TimeSeries:
    interval: str  # day, week, month, quarter or year
    starts: tuple[date, ...]  # the first day of each period, oldest first
    values: tuple[float, ...]
    dated: bool = False  # labelled by dates (2024-01-15) rather than periods (2024-01)

    @property
    def season_length(self) -> int:
        return SEASON_LENGTH[self.interval]

    def labels(self) -> list[str]:
        return [self.label_of(start) for start in self.starts]

    def label_of(self, start: date) -> str:
        if self.dated or self.interval == "day":
            return start.isoformat()
        return label(start, self.interval)

    def following(self, count: int) -> list[str]:
        """The labels of the `count` periods after the last one."""
        found, start = [], self.starts[-1]
        for _ in range(count):
            start = after(start, self.interval)
            found.append(self.label_of(start))
        return found


def after(start: date, interval: str) -> date:
    return start + timedelta(days=1) if interval == "day" else next_start(start, interval)


def read_series_csv(path: Path) -> TimeSeries:
    """The series in a CSV file with a header naming `period` and `value` columns."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = {"period", "value"} - set(reader.fieldnames or ())
            if missing:
                raise SeriesError(
                    f"{path}:1: the header must name the columns period and value; "
                    f"missing {', '.join(sorted(missing))}"
                )
            rows = [
                (reader.line_num, row.get("period") or "", row.get("value") or "") for row in reader
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise SeriesError(f"{path}: cannot read the series: {error}") from error
    return series_from_rows(rows, str(path))


def series_from_rows(rows: Sequence[tuple[int, str, str]], source: str) -> TimeSeries:
    """A series from (line, period, value) rows; errors name `source` and the line."""
    if not rows:
        raise SeriesError(f"{source}: the series has no values")
    starts: list[date] = []
    values: list[float] = []
    for line, period, value in rows:
        starts.append(_start(period, f"{source}:{line}"))
        values.append(_value(value, f"{source}:{line}"))
    dated = len(rows[0][1].strip()) == DATE_LENGTH
    interval = _interval(rows, starts, dated, source)
    for (line, period, _), previous, start in zip(rows[1:], starts[:-1], starts[1:], strict=True):
        expected = after(previous, interval)
        if start != expected:
            raise SeriesError(
                f"{source}:{line}: period: expected the period after the one before it "
                f"({_shown(expected, interval, dated)}), got {period.strip()!r}: periods must "
                "follow one another, oldest first, without gaps or repeats"
            )
    return TimeSeries(interval, tuple(starts), tuple(values), dated)


def _start(period: str, where: str) -> date:
    try:
        return parse_label(period, "period")
    except PeriodError as error:
        raise SeriesError(f"{where}: {error}") from error


def _value(text: str, where: str) -> float:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise SeriesError(f"{where}: value: expected a number, got {text.strip()!r}") from None
    value = float(number)
    if not number.is_finite() or not math.isfinite(value):
        raise SeriesError(f"{where}: value: expected a finite number, got {text.strip()!r}")
    return value


def _interval(
    rows: Sequence[tuple[int, str, str]], starts: list[date], dated: bool, source: str
) -> str:
    kinds = {_kind(period) for _, period, _ in rows}
    if len(kinds) > 1:
        raise SeriesError(
            f"{source}: period: every period must be of one kind, got {', '.join(sorted(kinds))}"
        )
    kind = kinds.pop()
    if not dated:
        return kind
    if len(starts) < 2:
        return "day"
    step = (starts[1] - starts[0]).days
    if step not in (1, 7):
        raise SeriesError(
            f"{source}:{rows[1][0]}: period: dates must be one day (daily) or seven days "
            f"(weekly) apart, got {step} days"
        )
    return "day" if step == 1 else "week"


def _kind(period: str) -> str:
    text = period.strip()
    if len(text) == DATE_LENGTH:
        return "date"
    if len(text) == len("2024"):
        return "year"
    return LABEL_INTERVALS.get(text[5:6], "month")


def _shown(start: date, interval: str, dated: bool) -> str:
    return start.isoformat() if dated else label(start, interval)
