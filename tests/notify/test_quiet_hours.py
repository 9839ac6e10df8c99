"""Quiet hours: deferral to the end of the quiet stretch, across midnight and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from execmetrics.notify.message import Severity
from execmetrics.notify.quiet_hours import (
    WEEKDAYS,
    QuietHours,
    QuietWindow,
    covers_whole_week,
    deferred_until,
)

LONDON = "Europe/London"
NEW_YORK = "America/New_York"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def quiet(zone: str, *windows: tuple[str, str], days: list[str] | None = None) -> QuietHours:
    return QuietHours.model_validate(
        {
            "time_zone": zone,
            "windows": [{"start": start, "end": end, "days": days} for start, end in windows],
        }
    )


def error_locations(error: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return {".".join(str(part) for part in detail["loc"]) for detail in error.value.errors()}


# --- Overnight windows on the change nights -------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "at", "expected"),
    [
        # London spring: 01:00 GMT -> 02:00 BST. 07:00 BST = 06:00 UTC.
        (LONDON, "2026-03-28T22:30:00", "2026-03-29T06:00:00"),
        (LONDON, "2026-03-29T05:59:00", "2026-03-29T06:00:00"),
        # London autumn: 02:00 BST -> 01:00 GMT. The window starts 22:00 BST = 21:00 UTC and
        # ends 07:00 GMT = 07:00 UTC.
        (LONDON, "2026-10-24T21:00:00", "2026-10-25T07:00:00"),
        (LONDON, "2026-10-25T06:30:00", "2026-10-25T07:00:00"),
        # New York spring: 02:00 EST -> 03:00 EDT. 22:00 EST = 03:00 UTC, 07:00 EDT = 11:00 UTC.
        (NEW_YORK, "2026-03-08T03:00:00", "2026-03-08T11:00:00"),
        (NEW_YORK, "2026-03-08T10:59:00", "2026-03-08T11:00:00"),
        # New York autumn: 02:00 EDT -> 01:00 EST. 22:00 EDT = 02:00 UTC, 07:00 EST = 12:00 UTC.
        (NEW_YORK, "2026-11-01T02:00:00", "2026-11-01T12:00:00"),
        (NEW_YORK, "2026-11-01T11:00:00", "2026-11-01T12:00:00"),
    ],
)
def test_overnight_window_ends_at_local_morning_on_change_nights(
    zone: str, at: str, expected: str
) -> None:
    overnight = quiet(zone, ("22:00", "07:00"))
    assert deferred_until(overnight, utc(at), "warning") == utc(expected)


@pytest.mark.parametrize(
    ("zone", "outside"),
    [
        (LONDON, ["2026-03-28T21:59:00", "2026-03-29T06:00:00"]),
        (LONDON, ["2026-10-24T20:59:00", "2026-10-25T07:00:00"]),
        (NEW_YORK, ["2026-03-08T02:59:00", "2026-03-08T11:00:00"]),
        (NEW_YORK, ["2026-11-01T01:59:00", "2026-11-01T12:00:00"]),
    ],
)
def test_overnight_window_edges_on_change_nights(zone: str, outside: list[str]) -> None:
    overnight = quiet(zone, ("22:00", "07:00"))
    for at in outside:
        assert deferred_until(overnight, utc(at), "info") is None


def test_window_is_an_hour_shorter_or_longer_on_change_nights() -> None:
    # 07:00-06:00 the next day: 23 hours on the clock, 22 and 24 hours on the change nights.
    long_day = quiet(LONDON, ("07:00", "06:00"))
    spring = utc("2026-03-28T07:00:00")
    autumn = utc("2026-10-24T06:00:00")  # 07:00 BST
    assert deferred_until(long_day, spring, "info") == utc("2026-03-29T05:00:00")
    assert deferred_until(long_day, autumn, "info") == utc("2026-10-25T06:00:00")


# --- Wall times the clocks skip ----------------------------------------------------------------


def test_window_starting_in_the_spring_gap_starts_when_the_gap_ends() -> None:
    # 01:30 does not exist in London on 2026-03-29; the window starts at 02:00 BST = 01:00 UTC.
    early = quiet(LONDON, ("01:30", "06:00"))
    assert deferred_until(early, utc("2026-03-29T00:59:00"), "info") is None
    assert deferred_until(early, utc("2026-03-29T01:00:00"), "info") == utc("2026-03-29T05:00:00")


def test_window_ending_in_the_spring_gap_ends_when_the_gap_ends() -> None:
    late = quiet(LONDON, ("23:00", "01:30"))
    assert deferred_until(late, utc("2026-03-28T23:30:00"), "info") == utc("2026-03-29T01:00:00")
    assert deferred_until(late, utc("2026-03-29T01:00:00"), "info") is None


def test_new_york_gap_maps_to_three_o_clock_daylight_time() -> None:
    # 02:30 does not exist in New York on 2026-03-08; 03:00 EDT = 07:00 UTC.
    starting = quiet(NEW_YORK, ("02:30", "06:00"))
    ending = quiet(NEW_YORK, ("23:00", "02:30"))
    assert deferred_until(starting, utc("2026-03-08T06:59:00"), "info") is None
    assert deferred_until(starting, utc("2026-03-08T07:00:00"), "info") == utc(
        "2026-03-08T10:00:00"
    )
    assert deferred_until(ending, utc("2026-03-08T06:30:00"), "info") == utc("2026-03-08T07:00:00")


def test_window_wholly_inside_the_gap_does_not_happen_that_day() -> None:
    skipped = quiet(LONDON, ("01:10", "01:50"))
    assert deferred_until(skipped, utc("2026-03-29T01:00:00"), "info") is None
    assert deferred_until(skipped, utc("2026-03-29T00:30:00"), "info") is None
    # The day before and after it happens as usual (GMT, then BST).
    assert deferred_until(skipped, utc("2026-03-28T01:20:00"), "info") == utc("2026-03-28T01:50:00")
    assert deferred_until(skipped, utc("2026-03-30T00:20:00"), "info") == utc("2026-03-30T00:50:00")


def test_chained_windows_meeting_in_the_gap_stay_one_stretch() -> None:
    # Both 01:30s become 01:00 UTC on the spring day, so the stretch is unbroken.
    chained = quiet(LONDON, ("22:00", "01:30"), ("01:30", "07:00"))
    assert deferred_until(chained, utc("2026-03-28T23:00:00"), "info") == utc("2026-03-29T06:00:00")


# --- Wall times the clocks repeat --------------------------------------------------------------


@pytest.mark.parametrize(
    "at",
    [
        "2026-10-25T00:30:00",  # 01:30 BST, the first 01:30
        "2026-10-25T01:30:00",  # 01:30 GMT, the second 01:30
    ],
)
def test_notification_at_an_ambiguous_time_waits_for_the_second_end(at: str) -> None:
    # 01:00-01:45 on the London autumn day starts at the first 01:00 (00:00 UTC) and ends at
    # the second 01:45 (01:45 UTC).
    repeated = quiet(LONDON, ("01:00", "01:45"))
    assert deferred_until(repeated, utc(at), "info") == utc("2026-10-25T01:45:00")


def test_ambiguous_start_uses_the_first_occurrence() -> None:
    repeated = quiet(NEW_YORK, ("01:30", "04:00"))
    # 01:30 EDT = 05:30 UTC, the first 01:30; the window ends 04:00 EST = 09:00 UTC.
    assert deferred_until(repeated, utc("2026-11-01T05:29:00"), "info") is None
    assert deferred_until(repeated, utc("2026-11-01T05:30:00"), "info") == utc(
        "2026-11-01T09:00:00"
    )


def test_ambiguous_end_uses_the_second_occurrence() -> None:
    overnight = quiet(LONDON, ("22:00", "01:30"))
    # 01:40 BST (00:40 UTC) comes before the second 01:30 (01:30 UTC): still quiet.
    assert deferred_until(overnight, utc("2026-10-25T00:40:00"), "info") == utc(
        "2026-10-25T01:30:00"
    )
    assert deferred_until(overnight, utc("2026-10-25T01:40:00"), "info") is None


def test_window_inside_the_repeated_hour_is_never_negative() -> None:
    # Start at the first 01:10, end at the second 01:50: 100 minutes, not -20.
    same_day = quiet(NEW_YORK, ("01:10", "01:50"))
    start = utc("2026-11-01T05:10:00")  # the first 01:10 (EDT)
    assert deferred_until(same_day, start, "info") == utc("2026-11-01T06:50:00")


# --- Days, chaining, midnight ------------------------------------------------------------------


def test_days_filter_applies_to_the_day_a_window_starts() -> None:
    friday_night = quiet(LONDON, ("22:00", "07:00"), days=["fri"])
    # Friday 2026-06-05 22:00 BST = 21:00 UTC; it ends Saturday 07:00 BST = 06:00 UTC.
    assert deferred_until(friday_night, utc("2026-06-06T01:00:00"), "info") == utc(
        "2026-06-06T06:00:00"
    )
    # Saturday night is not quiet: the window does not start on Saturdays.
    assert deferred_until(friday_night, utc("2026-06-07T01:00:00"), "info") is None
    assert deferred_until(friday_night, utc("2026-06-04T23:00:00"), "info") is None


def test_weekend_chained_across_midnights_defers_to_monday() -> None:
    weekend = QuietHours.model_validate(
        {
            "time_zone": NEW_YORK,
            "windows": [
                {"start": "18:00", "end": "00:00", "days": ["fri"]},
                {"start": "00:00", "end": "12:00", "days": ["sat", "sun"]},
                {"start": "12:00", "end": "00:00", "days": ["sat", "sun"]},
                {"start": "00:00", "end": "08:00", "days": ["mon"]},
            ],
        }
    )
    # Friday 2026-10-30 18:00 EDT to Monday 2026-11-02 08:00 EST = 13:00 UTC, over the
    # autumn change.
    for at in ("2026-10-30T22:00:00", "2026-10-31T12:00:00", "2026-11-01T06:00:00"):
        assert deferred_until(weekend, utc(at), "info") == utc("2026-11-02T13:00:00")
    assert deferred_until(weekend, utc("2026-10-30T21:59:00"), "info") is None
    assert deferred_until(weekend, utc("2026-11-02T13:00:00"), "info") is None


def test_a_minute_between_windows_is_a_real_gap() -> None:
    weekend = quiet(LONDON, ("00:00", "23:59"), days=["sat", "sun"])
    # Saturday 2026-06-06 12:00 BST: quiet until 23:59 BST = 22:59 UTC, free for a minute.
    assert deferred_until(weekend, utc("2026-06-06T11:00:00"), "info") == utc("2026-06-06T22:59:00")
    assert deferred_until(weekend, utc("2026-06-06T22:59:30"), "info") is None
    assert deferred_until(weekend, utc("2026-06-06T23:00:00"), "info") == utc("2026-06-07T22:59:00")


def test_overlapping_and_touching_windows_defer_to_the_end_of_the_stretch() -> None:
    windows = quiet(LONDON, ("22:00", "02:00"), ("02:00", "05:00"), ("04:00", "07:00"))
    assert deferred_until(windows, utc("2026-01-14T23:00:00"), "info") == utc("2026-01-15T07:00:00")
    assert deferred_until(windows, utc("2026-01-15T03:00:00"), "info") == utc("2026-01-15T07:00:00")


def test_window_start_is_quiet_and_end_is_not() -> None:
    evening = quiet(LONDON, ("18:00", "20:00"))
    assert deferred_until(evening, utc("2026-01-15T18:00:00"), "info") == utc("2026-01-15T20:00:00")
    assert deferred_until(evening, utc("2026-01-15T20:00:00"), "info") is None


def test_result_is_utc_for_any_zone_of_the_input() -> None:
    evening = quiet(LONDON, ("18:00", "20:00"))
    paris = datetime.fromisoformat("2026-01-15T19:30:00+01:00")
    result = deferred_until(evening, paris, "info")
    assert result == utc("2026-01-15T20:00:00")
    assert result is not None and result.utcoffset() == timedelta(0)


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        deferred_until(quiet(LONDON, ("18:00", "20:00")), datetime(2026, 1, 15, 19), "info")


# --- Severity ----------------------------------------------------------------------------------


def test_without_quiet_hours_everything_is_sent() -> None:
    assert deferred_until(None, utc("2026-01-15T03:00:00"), "info") is None


def test_critical_bypasses_quiet_hours_by_default() -> None:
    night = quiet(LONDON, ("22:00", "07:00"))
    at = utc("2026-01-15T03:00:00")
    assert deferred_until(night, at, "critical") is None
    assert deferred_until(night, at, Severity.CRITICAL) is None
    assert deferred_until(night, at, Severity.WARNING) == utc("2026-01-15T07:00:00")


def test_critical_waits_when_the_user_opts_out() -> None:
    night = QuietHours(
        time_zone=LONDON,
        windows=[QuietWindow(start="22:00", end="07:00")],
        critical_bypass=False,
    )
    assert deferred_until(night, utc("2026-01-15T03:00:00"), "critical") == utc(
        "2026-01-15T07:00:00"
    )


# --- Validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "location"),
    [
        ({"start": "25:00", "end": "07:00"}, "windows.0.start"),
        ({"start": "22:00", "end": "7:00"}, "windows.0.end"),
        ({"start": "22:00", "end": "24:00"}, "windows.0.end"),
        ({"start": "22:00", "end": "22:00"}, "windows.0.end"),
        ({"start": "22:00", "end": "07:00", "days": ["fri", "funday"]}, "windows.0.days.1"),
        ({"start": "22:00", "end": "07:00", "days": ["fri", "fri"]}, "windows.0.days"),
        ({"start": "22:00", "end": "07:00", "days": []}, "windows.0.days"),
        ({"start": "22:00", "end": "07:00", "until": "later"}, "windows.0.until"),
    ],
)
def test_bad_window_is_refused_naming_the_field(window: dict[str, object], location: str) -> None:
    with pytest.raises(ValidationError) as error:
        QuietHours.model_validate({"time_zone": LONDON, "windows": [window]})
    assert error_locations(error) == {location}


def test_unknown_time_zone_is_refused_naming_field_and_value() -> None:
    with pytest.raises(ValidationError) as error:
        QuietHours(time_zone="Mars/Olympus", windows=[])
    assert error_locations(error) == {"time_zone"}
    assert "unknown IANA time zone 'Mars/Olympus'" in str(error.value)


def test_more_than_fourteen_windows_are_refused() -> None:
    windows = [{"start": f"{hour:02d}:00", "end": f"{hour:02d}:30"} for hour in range(15)]
    with pytest.raises(ValidationError) as error:
        QuietHours.model_validate({"time_zone": LONDON, "windows": windows})
    assert error_locations(error) == {"windows"}


def test_windows_covering_the_whole_week_are_refused() -> None:
    with pytest.raises(ValidationError, match="whole week") as error:
        quiet(LONDON, ("00:00", "12:00"), ("12:00", "00:00"))
    assert error_locations(error) == {"windows"}


def test_models_are_frozen() -> None:
    window = QuietWindow(start="22:00", end="07:00")
    with pytest.raises(ValidationError):
        window.start = "23:00"


# --- Properties --------------------------------------------------------------------------------

YEAR_START = utc("2026-01-01T00:00:00")
CHANGES = [
    utc(text)
    for text in (
        "2026-03-08T07:00:00",
        "2026-03-29T01:00:00",
        "2026-10-25T01:00:00",
        "2026-11-01T06:00:00",
    )
]


def clock(minute: int) -> str:
    return f"{minute // 60 % 24:02d}:{minute % 60:02d}"


# Wall times near the changes turn up often; any minute can.
wall_minutes = st.one_of(st.sampled_from([0, 30, 60, 90, 120, 150, 180, 420]), st.integers(0, 1439))


def window_spec(start: int, length: int, days: list[str] | None) -> dict[str, object]:
    return {"start": clock(start), "end": clock(start + length), "days": days}


window_specs = st.builds(
    window_spec,
    wall_minutes,
    st.one_of(st.sampled_from([30, 60, 90, 150, 540]), st.integers(1, 1439)),
    st.none() | st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True),
)
schedules = st.builds(
    lambda zone, ws: {"time_zone": zone, "windows": ws},
    st.sampled_from([LONDON, NEW_YORK]),
    st.lists(window_specs, max_size=5),
)
instants = st.one_of(
    st.integers(0, 365 * 24 * 60 * 60).map(lambda s: YEAR_START + timedelta(seconds=s)),
    st.builds(
        lambda change, s: change + timedelta(seconds=s),
        st.sampled_from(CHANGES),
        st.integers(-2 * 86400, 2 * 86400),
    ),
)


def build(schedule: dict[str, object]) -> QuietHours:
    try:
        return QuietHours.model_validate(schedule)
    except ValidationError:
        assume(False)
        raise


@given(schedules, instants, st.sampled_from(["info", "warning"]))
def test_deferral_is_later_and_lands_outside_quiet_hours(
    schedule: dict[str, object], at: datetime, severity: str
) -> None:
    hours = build(schedule)
    until = deferred_until(hours, at, severity)
    if until is not None:
        assert until > at
        assert deferred_until(hours, until, severity) is None


@given(schedules, instants, st.integers(0, 999_999))
def test_every_instant_of_a_stretch_waits_for_the_same_end(
    schedule: dict[str, object], at: datetime, millionths: int
) -> None:
    hours = build(schedule)
    until = deferred_until(hours, at, "info")
    assume(until is not None)
    assert until is not None
    later = at + (until - at) * millionths // 1_000_000
    assert deferred_until(hours, later, "info") == until


@given(schedules, instants)
def test_critical_is_never_deferred_with_bypass(schedule: dict[str, object], at: datetime) -> None:
    assert deferred_until(build(schedule), at, "critical") is None


@given(st.lists(window_specs, max_size=6))
def test_whole_week_check_agrees_with_minutes(window_data: list[dict[str, object]]) -> None:
    parsed = [QuietWindow.model_validate(w) for w in window_data]
    covered: set[int] = set()
    for window in parsed:
        for index, name in enumerate(WEEKDAYS):
            if window.days is None or name in window.days:
                first = index * 1440 + window.start_minute()
                covered.update(m % 10080 for m in range(first, first + window.length_minutes()))
    assert covers_whole_week(parsed) == (len(covered) == 10080)
