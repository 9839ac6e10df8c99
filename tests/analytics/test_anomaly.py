"""Anomaly detection over a series: each point judged from its past only; a spike or a
shift flagged once, at its start; a season is expected, not flagged."""

from __future__ import annotations

import numpy as np
import pytest

from execmetrics.analytics.anomaly import DEFAULT_SENSITIVITY, AnomalyError, detect


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


def test_no_point_is_judged_with_knowledge_of_later_points() -> None:
    values = daily_pattern(30)
    values[500] += 50
    whole = detect(values, 24)
    for end in (300, 501, 650):
        prefix = detect(values[:end], 24)
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
