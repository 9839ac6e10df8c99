"""Reporting periods: labels, ISO weeks, quarters, years, IANA time zones and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from tests.builders import ingest, metrics, start

from execmetrics.metrics.periods import (
    PeriodError,
    make_period,
    parse_label,
    periods_between,
    time_zone,
)
from execmetrics.timeutil import to_micros

LONDON = ZoneInfo("Europe/London")
HOUR_US = 3_600_000_000


def utc_us(text: str) -> int:
    return to_micros(datetime.fromisoformat(text).replace(tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01", date(2024, 1, 1)),
        ("2024-12", date(2024, 12, 1)),
        ("2024-01-15", date(2024, 1, 15)),
        ("2024-W01", date(2024, 1, 1)),
        ("2024-W05", date(2024, 1, 29)),
        ("2021-W01", date(2021, 1, 4)),
        ("2020-W53", date(2020, 12, 28)),
        ("2024-Q1", date(2024, 1, 1)),
        ("2024-Q3", date(2024, 7, 1)),
        ("2024", date(2024, 1, 1)),
    ],
)
def test_parse_label(text: str, expected: date) -> None:
    assert parse_label(text, "from") == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-13",
        "2024-00",
        "2024-W54",
        "2021-W53",
        "2024-Q5",
        "Jan 2024",
        "2024-1",
        "",
        "2024-02-30",
    ],
)
def test_parse_label_errors_name_the_parameter(text: str) -> None:
    with pytest.raises(PeriodError) as raised:
        parse_label(text, "to")
    assert raised.value.parameter == "to"
    assert str(raised.value).startswith("to: ")
    assert repr(text) in str(raised.value)


def test_unknown_time_zone_is_an_error_naming_tz() -> None:
    with pytest.raises(PeriodError) as raised:
        time_zone("Mars/Olympus_Mons")
    assert raised.value.parameter == "tz"
    assert "Mars/Olympus_Mons" in str(raised.value)


def test_unknown_interval_and_reversed_range_are_errors() -> None:
    with pytest.raises(PeriodError) as raised:
        periods_between(date(2024, 1, 1), date(2024, 2, 1), "fortnight", LONDON)
    assert raised.value.parameter == "interval"
    with pytest.raises(PeriodError) as raised:
        periods_between(date(2024, 3, 1), date(2024, 2, 1), "month", LONDON)
    assert raised.value.parameter == "to"


def test_iso_week_labels_across_year_ends() -> None:
    zone = ZoneInfo("UTC")
    weeks = periods_between(date(2020, 12, 31), date(2021, 1, 11), "week", zone)
    assert [(w.label, w.start) for w in weeks] == [
        ("2020-W53", date(2020, 12, 28)),
        ("2021-W01", date(2021, 1, 4)),
        ("2021-W02", date(2021, 1, 11)),
    ]
    weeks = periods_between(date(2023, 12, 31), date(2024, 1, 1), "week", zone)
    assert [(w.label, w.start) for w in weeks] == [
        ("2023-W52", date(2023, 12, 25)),
        ("2024-W01", date(2024, 1, 1)),
    ]
    # 2024-12-30 is a Monday in ISO week 1 of 2025.
    [week] = periods_between(date(2024, 12, 31), date(2024, 12, 31), "week", zone)
    assert (week.label, week.start, week.end) == ("2025-W01", date(2024, 12, 30), date(2025, 1, 6))


def test_quarter_and_year_labels() -> None:
    zone = ZoneInfo("UTC")
    quarters = periods_between(date(2023, 11, 15), date(2024, 8, 1), "quarter", zone)
    assert [(q.label, q.start, q.end) for q in quarters] == [
        ("2023-Q4", date(2023, 10, 1), date(2024, 1, 1)),
        ("2024-Q1", date(2024, 1, 1), date(2024, 4, 1)),
        ("2024-Q2", date(2024, 4, 1), date(2024, 7, 1)),
        ("2024-Q3", date(2024, 7, 1), date(2024, 10, 1)),
    ]
    years = periods_between(date(2023, 6, 1), date(2024, 2, 1), "year", zone)
    assert [(y.label, y.start, y.end) for y in years] == [
        ("2023", date(2023, 1, 1), date(2024, 1, 1)),
        ("2024", date(2024, 1, 1), date(2025, 1, 1)),
    ]
    months = periods_between(date(2024, 11, 20), date(2025, 1, 3), "month", zone)
    assert [m.label for m in months] == ["2024-11", "2024-12", "2025-01"]


def test_london_month_boundaries_follow_summer_time() -> None:
    march, april = periods_between(date(2024, 3, 1), date(2024, 4, 1), "month", LONDON)
    assert march.start_us == utc_us("2024-03-01T00:00:00")  # GMT
    assert march.end_us == utc_us("2024-03-31T23:00:00")  # midnight BST
    assert april.start_us == march.end_us
    october = make_period(date(2024, 10, 1), "month", LONDON)
    assert october.start_us == utc_us("2024-09-30T23:00:00")
    assert october.end_us == utc_us("2024-11-01T00:00:00")


def test_dst_weeks_in_london_are_167_and_169_hours() -> None:
    spring = make_period(date(2024, 3, 25), "week", LONDON)
    assert spring.label == "2024-W13"
    assert spring.start_us == utc_us("2024-03-25T00:00:00")
    assert spring.end_us == utc_us("2024-03-31T23:00:00")
    assert spring.end_us - spring.start_us == 167 * HOUR_US
    autumn = make_period(date(2024, 10, 21), "week", LONDON)
    assert autumn.label == "2024-W43"
    assert autumn.start_us == utc_us("2024-10-20T23:00:00")
    assert autumn.end_us - autumn.start_us == 169 * HOUR_US


def test_far_zones_shift_the_boundaries() -> None:
    [tokyo] = periods_between(date(2024, 1, 1), date(2024, 1, 1), "month", time_zone("Asia/Tokyo"))
    assert tokyo.start_us == utc_us("2023-12-31T15:00:00")
    [la] = periods_between(
        date(2024, 7, 1), date(2024, 7, 1), "month", time_zone("America/Los_Angeles")
    )
    assert la.start_us == utc_us("2024-07-01T07:00:00")  # PDT


def test_an_event_late_on_31_march_utc_is_april_in_london(engine: Engine) -> None:
    ingest(
        engine,
        events=[
            start("a", "a", "a-s", "2024-03-31T23:30:00Z", 10000),
            start("b", "b", "b-s", "2024-03-31T23:00:00Z", 2000),  # exactly midnight BST
            start("c", "c", "c-s", "2024-03-31T22:59:59Z", 300),  # the last second of March
        ],
    )
    london = {r["period"]: r for r in metrics(engine, "2024-03", "2024-04", tz="Europe/London")}
    assert london["2024-03"]["new_mrr"] == 300
    assert london["2024-03"]["mrr_end"] == 300
    assert london["2024-04"]["mrr_start"] == 300
    assert london["2024-04"]["new_mrr"] == 12000
    assert london["2024-04"]["new_customers"] == 2
    utc = {r["period"]: r for r in metrics(engine, "2024-03", "2024-04")}
    assert utc["2024-03"]["new_mrr"] == 12300
    assert utc["2024-04"]["new_mrr"] == 0
    assert utc["2024-04"]["mrr_start"] == 12300


def test_weekly_metrics_in_london_across_the_spring_change(engine: Engine) -> None:
    ingest(
        engine,
        events=[
            start("a", "a", "a-s", "2024-03-31T23:30:00Z", 10000),  # Monday 1 April 00:30 BST
            start("b", "b", "b-s", "2024-03-25T00:00:00Z", 500),  # Monday 25 March 00:00 GMT
        ],
    )
    rows = metrics(engine, "2024-W13", "2024-W14", interval="week", tz="Europe/London")
    assert [(r["period"], r["new_mrr"], r["mrr_end"]) for r in rows] == [
        ("2024-W13", 500, 500),
        ("2024-W14", 10000, 10500),
    ]
    utc = metrics(engine, "2024-W13", "2024-W14", interval="week")
    assert [(r["period"], r["new_mrr"]) for r in utc] == [("2024-W13", 10500), ("2024-W14", 0)]


def test_interval_labels_in_metrics_rows(engine: Engine) -> None:
    ingest(engine, events=[start("a", "a", "a-s", "2024-01-10T00:00:00Z", 1000)])
    assert [r["period"] for r in metrics(engine, "2024-W01", "2024-W03", interval="week")] == [
        "2024-W01",
        "2024-W02",
        "2024-W03",
    ]
    assert [r["period"] for r in metrics(engine, "2024-01", "2024-12", interval="quarter")] == [
        "2024-Q1",
        "2024-Q2",
        "2024-Q3",
        "2024-Q4",
    ]
    assert [r["period"] for r in metrics(engine, "2023", "2024", interval="year")] == [
        "2023",
        "2024",
    ]
    weeks = metrics(engine, "2024-W01", "2024-W03", interval="week")
    assert [r["new_mrr"] for r in weeks] == [0, 1000, 0]


def test_unknown_time_zone_in_compute_metrics(engine: Engine) -> None:
    with pytest.raises(PeriodError) as raised:
        metrics(engine, "2024-01", "2024-02", tz="Europe/Atlantis")
    assert raised.value.parameter == "tz"
