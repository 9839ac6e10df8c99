"""Reading a series a user brings: periods of one kind, consecutive, and clear errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from execmetrics.analytics.series import SeriesError, read_series_csv, series_from_rows


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "series.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_months_quarters_weeks_years_and_dates_are_read_with_their_season() -> None:
    months = series_from_rows(
        [(2, "2024-11", "1.5"), (3, "2024-12", "2"), (4, "2025-01", "3")], "x"
    )
    assert (months.interval, months.season_length, months.values) == ("month", 12, (1.5, 2, 3))
    assert months.following(2) == ["2025-02", "2025-03"]
    quarters = series_from_rows([(2, "2024-Q4", "1"), (3, "2025-Q1", "2")], "x")
    assert (quarters.interval, quarters.season_length) == ("quarter", 4)
    assert quarters.following(1) == ["2025-Q2"]
    weeks = series_from_rows([(2, "2024-W52", "1"), (3, "2025-W01", "2")], "x")
    assert (weeks.interval, weeks.following(1)) == ("week", ["2025-W02"])
    years = series_from_rows([(2, "2023", "1"), (3, "2024", "2")], "x")
    assert (years.interval, years.season_length, years.following(1)) == ("year", 1, ["2025"])
    days = series_from_rows([(2, "2024-02-28", "1"), (3, "2024-02-29", "2")], "x")
    assert (days.interval, days.season_length, days.following(1)) == ("day", 7, ["2024-03-01"])
    weekly = series_from_rows([(2, "2024-01-03", "1"), (3, "2024-01-10", "2")], "x")
    assert (weekly.interval, weekly.following(1)) == ("week", ["2024-01-17"])
    assert weekly.starts[0] == date(2024, 1, 3)


def test_a_csv_file_is_read_by_its_header(tmp_path: Path) -> None:
    path = write(tmp_path, "value,period\n10,2024-01\n12.25,2024-02\n")
    series = read_series_csv(path)
    assert series.labels() == ["2024-01", "2024-02"] and series.values == (10, 12.25)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("month,amount\n2024-01,1\n", ":1: the header must name the columns period and value"),
        ("period,value\n", ": the series has no values"),
        ("period,value\n2024-01,1\n2024-13,2\n", ":3: period: expected a period such as 2024-01"),
        ("period,value\n2024-01,1\n2024-02,ten\n", ":3: value: expected a number, got 'ten'"),
        ("period,value\n2024-01,1\n2024-02,\n", ":3: value: expected a number, got ''"),
        ("period,value\n2024-01,NaN\n", ":2: value: expected a finite number, got 'NaN'"),
        ("period,value\n2024-01,1e999\n", ":2: value: expected a finite number, got '1e999'"),
        (
            "period,value\n2024-01,1\n2024-03,2\n",
            ":3: period: expected the period after the one before it (2024-02), got '2024-03'",
        ),
        (
            "period,value\n2024-01,1\n2024-01,2\n",
            ":3: period: expected the period after the one before it (2024-02), got '2024-01'",
        ),
        (
            "period,value\n2024-02,1\n2024-01,2\n",
            ":3: period: expected the period after the one before it (2024-03), got '2024-01'",
        ),
        ("period,value\n2024-01,1\n2024-Q2,2\n", ": period: every period must be of one kind"),
        (
            "period,value\n2024-01-01,1\n2024-01-04,2\n",
            ":3: period: dates must be one day (daily) or seven days (weekly) apart, got 3 days",
        ),
    ],
)
def test_a_bad_file_is_refused_naming_the_line_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SeriesError) as raised:
        read_series_csv(path)
    assert str(raised.value).startswith(str(path))
    assert message in str(raised.value)


def test_a_missing_or_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SeriesError, match="cannot read the series"):
        read_series_csv(tmp_path / "absent.csv")
    path = tmp_path / "binary.csv"
    path.write_bytes(b"period,value\n\xff\xfe\x00")
    with pytest.raises(SeriesError, match="cannot read the series"):
        read_series_csv(path)
