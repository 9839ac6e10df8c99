"""Anomalies in a series, every point judged from the points before it only (streaming: no
look-ahead), by one of two detectors (docs/anomalies.md).

`robust_seasonal`, the default. Its windows are measured in seasons (a season of
`NONSEASONAL_SPAN` points stands in when there is none), so that they mean the same for
five-minute, daily and monthly values:

- Expected value: the median of the previous `LEVEL_POINTS` values (the level), plus the
  seasonal offset: the median, over the last `SEASONS` seasons, of how far the value at the
  same position of the season stood from its own level.
- Scale: 1.4826 x the median absolute residual (value less expected) over the previous
  `SCALE_SEASONS` seasons, which estimates the standard deviation of normal residuals and
  ignores outliers; the mean absolute residual (x 1.2533) when more than half are zero, and
  a hundredth of the recent range when all are. It waits for a quarter of its window.
- Usual deviation: the 99th percentile of the absolute residuals, in scales, over the
  previous `USUAL_SEASONS` seasons (at least 1), so that a series that is often far from its
  expectation (spiky traffic) needs a larger move to be unusual than a smooth one.
- Score: the residual in usual deviations; band: expected +- sensitivity x usual deviation x
  scale, so a value is outside the band when its score is beyond the sensitivity.
- Flag: outside the band, and a higher score than any in the previous half season: a
  deviation that persists is flagged once, at its start, not at every point.

`rolling_zscore`, the baseline: the mean and standard deviation of the previous
`ZSCORE_POINTS` values (all of them at the start); score: (value - mean) / deviation; band:
mean +- sensitivity x deviation; flag: outside the band.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

Floats = npt.NDArray[np.float64]
LEVEL_POINTS = 12
SEASONS = 3
NONSEASONAL_SPAN = 12
SCALE_SEASONS = 2
USUAL_SEASONS = 7
USUAL_PERCENTILE = 99.0
MIN_HISTORY = 6  # points before the first judged one
ZSCORE_POINTS = 6400
MAD_TO_SIGMA = 1.4826
MEAN_ABSOLUTE_TO_SIGMA = 1.2533
RANGE_SHARE = 0.01
RELATIVE_FLOOR = 1e-9
# The robust detector's default is the threshold with which it scored best on the Numenta
# Anomaly Benchmark, tuned once for the whole corpus as NAB's rules have it (to two decimal
# places; docs/benchmarks.md); the z-score's is the customary two standard deviations.
DEFAULT_SENSITIVITY = {"robust_seasonal": 1.73, "rolling_zscore": 2.0}
# Rows per block of a trailing statistic: bounds the memory of the windowed copy.
BLOCK_ROWS = 512


class AnomalyError(ValueError):
    """A request that cannot be judged; the message names the parameter."""


@dataclass(frozen=True)
class Detection:
    """Per point: the expected value, the band, the score and the flag (NaN and False for
    the first points, which have too little history to be judged)."""

    method: str
    sensitivity: float
    expected: Floats
    lower: Floats
    upper: Floats
    score: Floats
    flag: npt.NDArray[np.bool_]


def detect(
    values: Sequence[float] | Floats, season_length: int, method: str = "robust_seasonal",
    sensitivity: float | None = None,
) -> Detection:  # fmt: skip
    """Judge every point of `values` (evenly spaced, oldest first) against the points before
    it. `season_length` is the number of points in a season (1 or less: none)."""
    if method not in DETECTORS:
        raise AnomalyError(f"method: expected one of {', '.join(DETECTORS)}, got {method!r}")
    chosen = DEFAULT_SENSITIVITY[method] if sensitivity is None else sensitivity
    if not (np.isfinite(chosen) and chosen > 0):
        raise AnomalyError(f"sensitivity: expected a positive number, got {chosen!r}")
    series = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(series)):
        raise AnomalyError("values: every value must be a finite number")
    return DETECTORS[method](series, season_length, chosen)


def robust_seasonal(values: Floats, season_length: int, sensitivity: float) -> Detection:
    span = season_length if season_length >= 2 else NONSEASONAL_SPAN
    expected = _level(values) + _seasonal_offset(values, season_length)
    residual = values - expected
    scale = _scale(residual, values, expected, SCALE_SEASONS * span)
    usual = np.maximum(
        _trailing(np.nan_to_num(np.abs(residual) / scale), USUAL_SEASONS * span, _percentile99),
        1.0,
    )
    reach = usual * scale
    score = residual / reach
    onset = max(2, span // 2)
    strength = np.nan_to_num(np.abs(score), nan=-np.inf)
    new_high = strength > _trailing(strength, onset, _maximum, min_points=1)
    return Detection(
        "robust_seasonal",
        sensitivity,
        expected,
        expected - sensitivity * reach,
        expected + sensitivity * reach,
        score,
        (strength >= sensitivity) & new_high,
    )


def rolling_zscore(values: Floats, season_length: int, sensitivity: float) -> Detection:
    """The plain rolling z-score; `season_length` is not used."""
    del season_length
    mean, deviation = _trailing_mean_deviation(values, ZSCORE_POINTS)
    deviation = np.where(deviation > 0, deviation, np.nan)
    score = (values - mean) / deviation
    return Detection(
        "rolling_zscore",
        sensitivity,
        mean,
        mean - sensitivity * deviation,
        mean + sensitivity * deviation,
        score,
        np.nan_to_num(np.abs(score)) >= sensitivity,
    )


DETECTORS: dict[str, Callable[[Floats, int, float], Detection]] = {
    "robust_seasonal": robust_seasonal,
    "rolling_zscore": rolling_zscore,
}


def _level(values: Floats) -> Floats:
    return _trailing(values, LEVEL_POINTS, _median, min_points=MIN_HISTORY)


def _seasonal_offset(values: Floats, season_length: int) -> Floats:
    """The median over the last SEASONS seasons of the deviation from the level at the same
    position; 0 without a season, or before the first full season."""
    offset = np.zeros(len(values))
    if season_length < 2 or len(values) <= season_length:
        return offset
    deviation = values - _level(values)
    earlier = np.full((SEASONS, len(values)), np.nan)
    for k in range(1, SEASONS + 1):
        if k * season_length < len(values):
            earlier[k - 1, k * season_length :] = deviation[: -k * season_length]
    known = np.any(np.isfinite(earlier), axis=0)
    offset[known] = np.nanmedian(earlier[:, known], axis=0)
    return offset


def _scale(residual: Floats, values: Floats, expected: Floats, window: int) -> Floats:
    # A scale from a handful of residuals is too rough to judge by (and the usual deviation
    # would remember it for its whole window): it waits for a quarter of its window.
    absolute = np.nan_to_num(np.abs(residual))
    least = max(MIN_HISTORY, window // 4)
    by_median = MAD_TO_SIGMA * _trailing(absolute, window, _median, least)
    by_mean = MEAN_ABSOLUTE_TO_SIGMA * _trailing(absolute, window, _mean, least)
    by_range = RANGE_SHARE * _trailing(values, window, _range, least)
    scale = np.where(by_median > 0, by_median, np.where(by_mean > 0, by_mean, by_range))
    floor = RELATIVE_FLOOR * np.maximum(1.0, np.abs(np.nan_to_num(expected)))
    return np.where(np.isfinite(scale), np.maximum(scale, floor), np.nan)


Statistic = Callable[[Floats], Floats]  # rows of windows -> one figure per row


def _median(rows: Floats) -> Floats:
    return np.median(rows, axis=-1)


def _mean(rows: Floats) -> Floats:
    return np.asarray(np.mean(rows, axis=-1), dtype=np.float64)


def _maximum(rows: Floats) -> Floats:
    return np.asarray(np.max(rows, axis=-1), dtype=np.float64)


def _range(rows: Floats) -> Floats:
    return np.asarray(np.ptp(rows, axis=-1), dtype=np.float64)


def _percentile99(rows: Floats) -> Floats:
    return np.percentile(rows, USUAL_PERCENTILE, axis=-1)


def _trailing(
    values: Floats, window: int, statistic: Statistic, min_points: int = MIN_HISTORY
) -> Floats:
    """The statistic of the `window` points before each point (all of them while there are
    fewer, from `min_points` on; NaN before)."""
    count = len(values)
    found = np.full(count, np.nan)
    for t in range(min_points, min(window, count)):
        found[t] = statistic(values[:t][np.newaxis, :])[0]
    if count > window:
        windows = sliding_window_view(values[:-1], window)  # row i: the points before i + window
        for start in range(0, len(windows), BLOCK_ROWS):
            block = windows[start : start + BLOCK_ROWS]
            found[window + start : window + start + len(block)] = statistic(block)
    return found


def _trailing_mean_deviation(values: Floats, window: int) -> tuple[Floats, Floats]:
    """Mean and standard deviation of up to `window` points before each point, by running
    sums (NaN with fewer than two)."""
    sums = np.concatenate([[0.0], np.cumsum(values)])
    squares = np.concatenate([[0.0], np.cumsum(values * values)])
    t = np.arange(len(values))
    first = np.maximum(0, t - window)
    points = (t - first).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (sums[t] - sums[first]) / points
        variance = (squares[t] - squares[first]) / points - mean**2
    mean[points < 2] = np.nan
    return mean, np.sqrt(np.maximum(variance, 0.0))
