"""Anomaly detection over a series: each point judged from its past only; a spike or a
shift flagged once, at its start; a season and a trend are expected, not flagged, in long
monitoring series and in short business series alike."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execmetrics.analytics.anomaly import (
    DEFAULT_SENSITIVITY,
    AnomalyError,
    Detection,
    detect,
    judge_latest,
)

Floats = npt.NDArray[np.float64]
NOISE = 10.0  # the standard deviation of the business series' noise
SEEDS = range(5)


def daily_pattern(days: int, per_day: int = 24, seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hours = np.arange(days * per_day)
    return 100 + 30 * np.sin(2 * np.pi * (hours % per_day) / per_day) + rng.normal(0, 2, len(hours))


def test_a_seasonal_series_without_anomalies_raises_no_flag() -> None:
    values = daily_pattern(60)
    found = detect(values, 24)
    assert found.method == "robust_seasonal"
    assert found.sensitivity == DEFAULT_SENSITIVITY["robust_seasonal"]
    assert found.flag[24 * 5 :].sum() <= 2  # noise alone: at most a stray point in 55 days
    # The expectation follows the daily swing: within a few noise widths of each value.
    late = slice(24 * 10, None)
    assert np.median(np.abs(values[late] - found.expected[late])) < 4


def test_a_spike_is_flagged_at_its_point_and_its_band_excludes_it() -> None:
    values = daily_pattern(40)
    at = 24 * 30 + 7
    values[at] += 60
    found = detect(values, 24)
    assert found.flag[at]
    assert not (found.lower[at] <= values[at] <= found.upper[at])
    assert found.score[at] >= found.sensitivity
    assert found.flag[24 * 5 :].sum() <= 3


def test_a_shift_that_persists_is_flagged_once_at_its_start() -> None:
    values = daily_pattern(40)
    start = 24 * 30
    values[start:] += 80
    found = detect(values, 24)
    flagged = np.flatnonzero(found.flag[start:])
    assert flagged.size >= 1 and flagged[0] <= 2  # found within two hours
    assert flagged.size <= 3  # not at every point of the new level


@pytest.mark.parametrize("season", [24, 1])
def test_no_point_is_judged_with_knowledge_of_later_points(season: int) -> None:
    values = daily_pattern(30)
    values[500] += 50
    whole = detect(values, season)
    # Short histories (up to 300 points), the switch to a long one, and long histories.
    for end in (30, 299, 301, 501, 650):
        prefix = detect(values[:end], season)
        for field in ("expected", "lower", "upper", "score"):
            np.testing.assert_array_equal(getattr(prefix, field), getattr(whole, field)[:end])
        np.testing.assert_array_equal(prefix.flag, whole.flag[:end])


def test_the_first_points_are_not_judged() -> None:
    found = detect(np.arange(20, dtype=float), 1)
    assert np.all(np.isnan(found.score[:6])) and not found.flag[:6].any()


def test_the_rolling_zscore_baseline_flags_beyond_two_deviations() -> None:
    values = np.r_[np.tile([10.0, 12.0], 50), 30.0]
    found = detect(values, 1, "rolling_zscore")
    assert found.sensitivity == 2.0
    assert found.expected[-1] == pytest.approx(11.0) and found.upper[-1] == pytest.approx(13.0)
    assert found.flag[-1] and not found.flag[10:-1].any()
    assert found.score[-1] == pytest.approx(19.0)


def test_a_flat_series_flags_a_change_but_not_its_own_level() -> None:
    values = np.r_[np.full(300, 5.0), 5.5]
    found = detect(values, 1)
    assert not found.flag[:300].any() and found.flag[300]


@pytest.mark.parametrize("length", [12, 36, 400])
def test_a_flat_series_flags_a_real_change_but_not_floating_point_noise(length: int) -> None:
    noisy = np.r_[np.full(length - 1, 0.1 + 0.2), 0.3]  # 0.1 + 0.2 is 0.30000000000000004
    found = detect(noisy, 12)
    assert not found.flag.any() and abs(found.score[-1]) < 1e-3
    changed = np.r_[np.full(length - 1, 200_000_000.0), 200_010_000.0]  # 0.005% up
    found = detect(changed, 12)
    assert found.flag[-1] and found.upper[-1] < 200_010_000.0


# Short business series: monthly and weekly KPIs with a trend and a season


def business_series(length: int, season: int, growth: float, seed: int) -> Floats:
    """A KPI growing by `growth` a period, with a seasonal swing ten noise levels high (none
    when `season` is 1), and normal noise."""
    t = np.arange(length)
    swing = 10 * NOISE * np.sin(2 * np.pi * t / season) if season > 1 else 0.0
    noise = np.random.default_rng(seed).normal(0.0, NOISE, length)
    return np.asarray(1_000.0 + growth * t + swing + noise, dtype=np.float64)


def last_point_within_band(found: Detection, values: Floats) -> bool:
    return bool(found.lower[-1] <= values[-1] <= found.upper[-1]) and not found.flag[-1]


SHORT_SERIES = [
    *((length, 12, NOISE) for length in (24, 36, 60)),  # monthly, two to five years
    *((length, 52, NOISE / 5) for length in (104, 156, 260)),  # weekly, two to five years
    *((length, 1, NOISE) for length in (24, 36, 60)),  # no season
]


@pytest.mark.parametrize(("length", "season", "growth"), SHORT_SERIES)
def test_a_short_trending_series_is_expected_where_it_goes(
    length: int, season: int, growth: float
) -> None:
    for seed in SEEDS:
        values = business_series(length, season, growth, seed)
        assert last_point_within_band(detect(values, season), values), seed


@pytest.mark.parametrize(("length", "season", "growth"), SHORT_SERIES)
@pytest.mark.parametrize("bump", [8 * NOISE, -8 * NOISE])
def test_a_short_trending_series_flags_a_bump_of_eight_noise_levels(
    length: int, season: int, growth: float, bump: float
) -> None:
    for seed in SEEDS:
        values = business_series(length, season, growth, seed)
        values[-1] += bump
        found = detect(values, season)
        assert found.flag[-1], seed
        assert abs(found.score[-1]) > DEFAULT_SENSITIVITY["robust_seasonal"], seed


@pytest.mark.parametrize(("length", "season", "growth"), [(60, 12, NOISE), (260, 52, NOISE / 5)])
def test_a_short_trending_series_is_seldom_flagged_anywhere(
    length: int, season: int, growth: float
) -> None:
    flagged = judged = 0
    for seed in SEEDS:
        flags = detect(business_series(length, season, growth, seed), season).flag
        flagged += int(flags[2 * season :].sum())  # from the third season on
        judged += length - 2 * season
    assert flagged <= 0.01 * judged


def test_a_monthly_kpi_of_three_years_judges_a_jump_by_its_size() -> None:
    values = business_series(37, 12, NOISE, seed=1)
    values[-1] += 30 * NOISE
    found = detect(values, 12)
    # Far beyond the band, which is a few noise levels wide around the trend and the season.
    assert found.score[-1] > 5 * DEFAULT_SENSITIVITY["robust_seasonal"]
    assert found.upper[-1] - found.lower[-1] < 12 * NOISE
    on_course = values[-1] - 30 * NOISE
    assert found.lower[-1] < on_course < found.upper[-1]


def renewals(length: int, seed: int = 2025) -> Floats:
    """A monthly KPI with growth and a yearly peak: annual renewals every twelfth month."""
    t = np.arange(length)
    peak = np.where(t % 12 == 11, 3_000.0, 0.0)
    noise = np.random.default_rng(seed).normal(0.0, 4 * NOISE, length)
    return np.asarray(10_000.0 + 50.0 * t + peak + noise, dtype=np.float64)


def test_the_seasonal_peak_is_expected_though_far_from_the_usual_level() -> None:
    values = renewals(60)  # the last month is a renewal month
    seasonal = detect(values, 12)
    assert last_point_within_band(seasonal, values)
    # Judged without its season, the peak is far out of the band.
    assert detect(values, 1).score[-1] > 10 * DEFAULT_SENSITIVITY["robust_seasonal"]


def test_one_large_outlier_in_history_barely_moves_the_band() -> None:
    clean = renewals(49)
    spoiled = clean.copy()
    spoiled[30] += 30_000.0
    before, after = detect(clean, 12), detect(spoiled, 12)
    width_before = before.upper[-1] - before.lower[-1]
    assert after.upper[-1] - after.lower[-1] < 1.3 * width_before
    assert abs(after.expected[-1] - before.expected[-1]) < 0.1 * width_before
    assert last_point_within_band(after, spoiled)


def test_a_series_that_rarely_moves_takes_its_scale_from_the_moves() -> None:
    customers = np.array([10.0] * 4 + [11.0] * 7 + [12.0] * 2)  # most changes are zero
    assert last_point_within_band(detect(customers, 1), customers)
    customers[-1] = 20.0
    assert detect(customers, 1).flag[-1]


def test_a_higher_sensitivity_widens_the_band_in_proportion() -> None:
    values = business_series(48, 12, NOISE, seed=3)
    narrow, wide = detect(values, 12, sensitivity=2.0), detect(values, 12, sensitivity=4.0)
    late = slice(6, None)
    np.testing.assert_allclose(
        (wide.upper - wide.lower)[late], 2 * (narrow.upper - narrow.lower)[late]
    )
    np.testing.assert_array_equal(wide.score, narrow.score)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=7, max_size=40
    ),
    season=st.sampled_from([1, 4, 12]),
)
def test_the_band_is_centred_on_the_expected_value(values: list[float], season: int) -> None:
    found = detect(values, season)
    expected, lower, upper, score = (
        float(found.expected[-1]), float(found.lower[-1]), float(found.upper[-1]),
        float(found.score[-1]),
    )  # fmt: skip
    assert math.isfinite(expected) and math.isfinite(score)
    assert lower < expected < upper
    assert expected - lower == pytest.approx(upper - expected)
    assert (score > 0) == (values[-1] > expected)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"method": "prophet"}, "method: expected one of robust_seasonal, rolling_zscore"),
        ({"sensitivity": 0.0}, "sensitivity: expected a positive number, got 0.0"),
        ({"sensitivity": float("nan")}, "sensitivity: expected a positive number"),
    ],
)
def test_bad_requests_are_refused_naming_the_parameter(
    arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(AnomalyError, match=message):
        detect(np.arange(10.0), 1, **arguments)  # type: ignore[arg-type]


def test_values_must_be_finite() -> None:
    with pytest.raises(AnomalyError, match="values: every value must be a finite number"):
        detect(np.array([1.0, np.inf, 2.0]), 1)


@pytest.mark.parametrize("method", ["robust_seasonal", "rolling_zscore"])
@pytest.mark.parametrize(
    ("length", "season"),
    [(5, 12), (6, 12), (7, 12), (36, 12), (156, 52), (261, 52), (300, 12), (301, 12), (900, 7)],
)
def test_judging_the_latest_point_alone_gives_what_detect_gives_it(
    method: str, length: int, season: int
) -> None:
    """Alert rules judge only a KPI's latest value; it must be judged exactly as a run over
    the whole series judges it, on either side of the switch to a long history."""
    rng = np.random.default_rng(length)
    values = 1000 + np.cumsum(rng.normal(0, NOISE, length))
    values[-1] += 5 * NOISE
    whole = detect(values, season, method, 2.5)
    latest = judge_latest(values, season, method, 2.5)
    np.testing.assert_array_equal(
        [latest.expected, latest.lower, latest.upper, latest.score],
        [whole.expected[-1], whole.lower[-1], whole.upper[-1], whole.score[-1]],
    )
    if method == "robust_seasonal":  # judged from MIN_HISTORY points on
        assert math.isnan(latest.score) == (length <= 6)


def test_judging_the_latest_point_refuses_bad_requests_as_detect_does() -> None:
    with pytest.raises(AnomalyError, match="method: expected one of"):
        judge_latest(np.arange(10.0), 1, "prophet")
    with pytest.raises(AnomalyError, match="values: every value must be a finite number"):
        judge_latest(np.array([1.0, np.nan, 2.0]), 1)
