"""The robust seasonal baseline behind anomaly alert rules."""

from __future__ import annotations

import inspect
import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execmetrics.analytics.baseline import (
    DETECTORS,
    MIN_HISTORY,
    Detector,
    Expectation,
    robust_seasonal,
)

MONTHS = 12
NOISE = 40.0  # standard deviation of the synthetic series' noise
SEED = 2025


def pattern(t: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """A monthly KPI with growth and a yearly peak: annual renewals every twelfth month."""
    renewals = np.where(t % MONTHS == MONTHS - 1, 3_000.0, 0.0)
    trend = 10_000.0 + 50.0 * t.astype(np.float64)
    return np.asarray(trend + renewals, dtype=np.float64)


def synthetic(length: int) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(SEED)
    t = np.arange(length)
    return pattern(t) + rng.normal(0.0, NOISE, length)


def scale_of(result: Expectation, sensitivity: float = 3.0) -> float:
    return (result.upper - result.lower) / (2 * sensitivity)


def judge(history: npt.NDArray[np.float64], value: float, season: int = MONTHS) -> Expectation:
    result = robust_seasonal(history.tolist(), value, season)
    assert result is not None
    return result


def test_a_value_on_the_pattern_is_inside_the_band() -> None:
    series = synthetic(49)
    result = judge(series[:48], float(series[48]))
    assert result.method == "stl-mad"
    assert result.lower <= series[48] <= result.upper
    assert abs(result.score) <= 3
    # The band is about as wide as the noise: neither collapsed nor blown up.
    assert NOISE / 2 < scale_of(result) < NOISE * 3


def test_a_spike_of_ten_noise_levels_is_flagged() -> None:
    series = synthetic(48)
    on_pattern = float(pattern(np.array([48]))[0])
    spike = judge(series, on_pattern + 10 * NOISE)
    dip = judge(series, on_pattern - 10 * NOISE)
    assert spike.score > 3 and spike.upper < on_pattern + 10 * NOISE
    assert dip.score < -3 and dip.lower > on_pattern - 10 * NOISE


def test_score_is_the_distance_from_the_expected_value_in_scales() -> None:
    series = synthetic(48)
    reference = judge(series, 0.0)
    value = reference.expected + 10 * scale_of(reference)
    result = judge(series, value)
    assert result.score == pytest.approx(10.0)
    assert result.expected == reference.expected


def test_the_seasonal_peak_is_expected_though_far_from_the_median() -> None:
    series = synthetic(60)
    history, peak = series[:59], float(series[59])  # month 59 is a renewal month
    seasonal = judge(history, peak)
    assert abs(seasonal.score) <= 3
    # The peak is dozens of scales from the history's median ...
    assert peak - float(np.median(history)) > 30 * scale_of(seasonal)
    # ... which is what a baseline without seasons says.
    non_seasonal = judge(history, peak, season=1)
    assert non_seasonal.method == "median-mad"
    assert non_seasonal.score > 3


def test_one_large_outlier_in_history_barely_moves_the_band() -> None:
    series = synthetic(49)
    history, value = series[:48], float(series[48])
    clean = judge(history, value)
    spoiled_history = history.copy()
    spoiled_history[30] += 30_000.0
    spoiled = judge(spoiled_history, value)
    assert scale_of(spoiled) < 1.3 * scale_of(clean)
    assert abs(spoiled.expected - clean.expected) < 0.5 * scale_of(clean)
    assert abs(spoiled.score) <= 3


def test_less_than_two_seasons_falls_back_to_the_median() -> None:
    series = synthetic(19)
    result = judge(series[:18], float(series[18]))
    assert result.method == "median-mad"
    assert result.expected == float(np.median(series[11:18]))
    assert judge(series[:18], float(series[18]), season=1).method == "median-mad"


def test_exactly_two_seasons_use_the_seasonal_method() -> None:
    series = synthetic(25)
    assert judge(series[:24], float(series[24])).method == "stl-mad"
    quarterly = synthetic(9)
    assert judge(quarterly[:8], float(quarterly[8]), season=4).method == "stl-mad"


def test_too_short_a_history_gives_no_judgement() -> None:
    assert robust_seasonal([1.0] * (MIN_HISTORY - 1), 1.0, MONTHS) is None
    assert robust_seasonal([], 1.0, MONTHS) is None
    assert robust_seasonal([1.0] * MIN_HISTORY, 1.0, MONTHS) is not None


@pytest.mark.parametrize("length", [12, 24])  # without and with the seasonal method
def test_a_flat_series_flags_a_change_but_not_the_same_value(length: int) -> None:
    history = [200_000_000.0] * length
    same = robust_seasonal(history, 200_000_000.0, MONTHS)
    changed = robust_seasonal(history, 200_000_000.0 + 10_000, MONTHS)  # 0.005%
    assert same is not None and changed is not None
    assert abs(same.score) < 1e-3
    assert changed.score > 3
    assert changed.upper < 200_000_000.0 + 10_000


def test_a_flat_series_ignores_floating_point_noise() -> None:
    noisy = robust_seasonal([0.1 + 0.2] * 24, 0.3, MONTHS)
    assert noisy is not None
    assert abs(noisy.score) < 1e-3


def test_a_series_that_rarely_moves_takes_its_scale_from_the_moves() -> None:
    customers = [10.0] * 4 + [11.0] * 7 + [12.0]  # over half the changes are zero
    usual = robust_seasonal(customers, 12.0, 1)
    unusual = robust_seasonal(customers, 20.0, 1)
    assert usual is not None and unusual is not None
    assert abs(usual.score) <= 3
    assert unusual.score > 3


@pytest.mark.parametrize("sensitivity", [0.0, -1.0, math.nan, math.inf])
def test_sensitivity_must_be_positive(sensitivity: float) -> None:
    with pytest.raises(ValueError, match="sensitivity"):
        robust_seasonal([1.0] * 12, 1.0, MONTHS, sensitivity)


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        robust_seasonal([1.0] * 5 + [math.nan] + [1.0] * 6, 1.0, MONTHS)
    with pytest.raises(ValueError, match="finite"):
        robust_seasonal([1.0] * 12, math.inf, MONTHS)


def test_higher_sensitivity_widens_the_band_in_proportion() -> None:
    series = synthetic(48)
    narrow = robust_seasonal(series.tolist(), 11_000.0, MONTHS, 2.0)
    wide = robust_seasonal(series.tolist(), 11_000.0, MONTHS, 4.0)
    assert narrow is not None and wide is not None
    assert wide.upper - wide.lower == pytest.approx(2 * (narrow.upper - narrow.lower))
    assert wide.score == narrow.score


def test_detectors_see_only_the_past() -> None:
    """Nothing after the judged value can reach a detector: its only inputs are the history
    before the value, the value, and two settings."""
    assert list(inspect.signature(robust_seasonal).parameters) == [
        "history",
        "value",
        "season_length",
        "sensitivity",
    ]
    series = synthetic(60)
    before = judge(series[:40], float(series[40]))
    series[41:] += 50_000.0  # whatever happens later
    assert judge(series[:40], float(series[40])) == before


def test_detectors_are_named() -> None:
    detector: Detector = DETECTORS["robust_seasonal"]
    assert detector is robust_seasonal


@settings(max_examples=40, deadline=None)
@given(
    history=st.lists(
        st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=6, max_size=40
    ),
    value=st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    season=st.sampled_from([1, 4, 12]),
)
def test_the_band_is_centred_on_the_expected_value(
    history: list[float], value: float, season: int
) -> None:
    result = robust_seasonal(history, value, season)
    assert result is not None
    assert math.isfinite(result.expected) and math.isfinite(result.score)
    assert result.lower < result.expected < result.upper
    assert result.expected - result.lower == pytest.approx(result.upper - result.expected)
    assert (result.score > 0) == (value > result.expected)
