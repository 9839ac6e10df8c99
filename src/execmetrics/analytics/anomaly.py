"""Anomalies in a series, every point judged from the points before it only (streaming: no
look-ahead), by one of two detectors (docs/anomalies.md). Anomaly alert rules judge a KPI's
latest value with them too (execmetrics.alerts.conditions).

`robust_seasonal`, the default. For the windows and the long history's seasonal offset, a
season of `NONSEASONAL_SPAN` points stands in for the season of a series without one. From
`MIN_HISTORY` points on, each point is judged in one of two ways: from its short history for
the first `SHORT_HISTORY_POINTS` points (and after them until the long history's windows are
ready), from its long history after that.

Short history (monthly and weekly business series of up to five years fall here whole):

- Expected value: the median, over the last `SEASONS` seasons the history holds, of the value
  at the same position of the season plus the drift for each season since. The drift is the
  median change over a season across the last `SEASONS` seasons (a season counted as at least
  `NONSEASONAL_SPAN` points). Without a season, and until `MIN_HISTORY` changes over a whole
  season are known, the season is one point.
- Scale: the tau scale (statsmodels) of the errors of the same forecast (same drift) for the
  values of that stretch: an estimate of their standard deviation that ignores outliers, like
  the median absolute error, but is nearly as precise as the standard deviation, which
  matters with a dozen errors. The mean absolute error (x 1.2533) when more than half are
  equal, and a hundredth of the stretch's range when all are zero.
- Usual deviation: `SHORT_USUAL`, 2.576 / sqrt 2 = 1.82: normal errors' 99th percentile
  (2.576), which a short history has too few errors to measure, over sqrt 2, since a forecast
  from a season back carries the noise of two values, sqrt 2 times that of one. Fixed, it is
  not widened by one past outlier; at the default sensitivity the band reaches 3.15 scales
  either side of the expected value.

Long history. The windows are measured in seasons, so that they mean the same for five-minute,
daily and monthly values:

- Expected value: the median of the previous `LEVEL_POINTS` values (the level), plus the
  seasonal offset: the median, over the last `SEASONS` seasons, of how far the value at the
  same position of the season stood from its own level (which carries a steady trend
  forward too).
- Scale: 1.4826 x the median absolute residual (value less expected) over the previous
  `SCALE_SEASONS` seasons, which estimates the standard deviation of normal residuals and
  ignores outliers; the mean absolute residual (x 1.2533) when more than half are zero, and
  a hundredth of the recent range when all are. It waits for a quarter of its window.
- Usual deviation: the 99th percentile of the absolute residuals, in scales, over the
  previous `USUAL_SEASONS` seasons (at least 1), so that a series that is often far from its
  expectation (spiky traffic) needs a larger move to be unusual than a smooth one. It waits
  for `USUAL_LEAST_POINTS` residuals, or its whole window when that is shorter.
- The windows hold only residuals of this expected value, which needs a full level a season
  back.

Both:

- A scale is never below a billionth of the expected value's size (or of 1), so a flat series
  flags a real change but not floating-point noise.
- Score: the residual in usual deviations; band: expected +- sensitivity x usual deviation x
  scale, so a value is outside the band when its score is beyond the sensitivity.
- Flag: outside the band, and a higher score than any in the previous half season: a
  deviation that persists is flagged once, at its start, not at every point.

`rolling_zscore`, the baseline: the mean and standard deviation of the previous
`ZSCORE_POINTS` values (all of them at the start); score: (value - mean) / deviation; band:
mean +- sensitivity x deviation; flag: outside the band.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from statsmodels.robust.scale import scale_tau

Floats = npt.NDArray[np.float64]
LEVEL_POINTS = 12
SEASONS = 3
NONSEASONAL_SPAN = 12
SCALE_SEASONS = 2
USUAL_SEASONS = 7
USUAL_PERCENTILE = 99.0
MIN_HISTORY = 6  # points before the first judged one
# Five years of weeks, the longest history an alert rule reads, are judged as a short history:
# its band suits smooth business series, while a long history's suits spiky monitoring data.
SHORT_HISTORY_POINTS = 300
USUAL_LEAST_POINTS = 100  # the fewest residuals a 99th percentile is read from
# A short history's usual deviation: normal errors' 99th percentile (2.576), which so few errors
# cannot measure, over sqrt 2, as a forecast from a season back carries two values' noise.
SHORT_USUAL = 2.576 / math.sqrt(2.0)
ZSCORE_POINTS = 6400
MAD_TO_SIGMA = 1.4826
MEAN_ABSOLUTE_TO_SIGMA = 1.2533
RANGE_SHARE = 0.01
RELATIVE_FLOOR = 1e-9
# The robust detector's default is the threshold with which it scored best on the Numenta
# Anomaly Benchmark, tuned once for the whole corpus as NAB's rules have it (to two decimal
# places; docs/benchmarks.md); the z-score's is the customary two standard deviations.
DEFAULT_SENSITIVITY = {"robust_seasonal": 1.73, "rolling_zscore": 2.0}
# scale_tau's factor to a normal standard deviation depends on its constants alone, yet costs
# it four times the estimate: it is taken from the library once, on any sample with a spread.
SPREAD_SAMPLE = np.array([-1.0, 0.0, 1.0])
TAU_TO_SIGMA = float(scale_tau(SPREAD_SAMPLE)[1] / scale_tau(SPREAD_SAMPLE, normalize=False)[1])
# Rows per block of a trailing statistic: bounds the memory of the windowed copy.
BLOCK_ROWS = 512


class AnomalyError(ValueError):
    """A request that cannot be judged; the message names the parameter."""


@dataclass(frozen=True)
class Latest:
    """The newest point's expected value, band and score (NaN when it cannot be judged)."""

    expected: float
    lower: float
    upper: float
    score: float


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

    def latest(self) -> Latest:
        """The newest point's expected value, band and score."""
        return Latest(
            float(self.expected[-1]), float(self.lower[-1]), float(self.upper[-1]),
            float(self.score[-1]),
        )  # fmt: skip


@dataclass(frozen=True)
class Judgement:
    """Per point, what the robust detector judges it by (NaN where it cannot)."""

    expected: Floats
    scale: Floats
    usual: Floats


def detect(
    values: Sequence[float] | Floats, season_length: int, method: str = "robust_seasonal",
    sensitivity: float | None = None,
) -> Detection:  # fmt: skip
    """Judge every point of `values` (evenly spaced, oldest first) against the points before
    it. `season_length` is the number of points in a season (1 or less: none)."""
    series, chosen = _checked(values, method, sensitivity)
    return DETECTORS[method](series, season_length, chosen)


def judge_latest(
    values: Sequence[float] | Floats, season_length: int, method: str = "robust_seasonal",
    sensitivity: float | None = None,
) -> Latest:  # fmt: skip
    """The newest point of `values` judged as `detect` judges it, without judging the points
    before it (which a short history would judge one at a time): what an alert rule needs."""
    series, chosen = _checked(values, method, sensitivity)
    if method == "robust_seasonal":
        return robust_seasonal(series, season_length, chosen, first=len(series) - 1).latest()
    return DETECTORS[method](series, season_length, chosen).latest()


def _checked(
    values: Sequence[float] | Floats, method: str, sensitivity: float | None
) -> tuple[Floats, float]:
    if method not in DETECTORS:
        raise AnomalyError(f"method: expected one of {', '.join(DETECTORS)}, got {method!r}")
    chosen = DEFAULT_SENSITIVITY[method] if sensitivity is None else sensitivity
    if not (np.isfinite(chosen) and chosen > 0):
        raise AnomalyError(f"sensitivity: expected a positive number, got {chosen!r}")
    series = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(series)):
        raise AnomalyError("values: every value must be a finite number")
    return series, chosen


def robust_seasonal(
    values: Floats, season_length: int, sensitivity: float, first: int = 0
) -> Detection:
    """Points before `first` are left unjudged (NaN), as the first points always are."""
    expected, reach = _expected_and_reach(values, season_length, first)
    score = (values - expected) / reach
    onset = max(2, _span(season_length) // 2)
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


def _span(season_length: int) -> int:
    return season_length if season_length >= 2 else NONSEASONAL_SPAN


def _expected_and_reach(
    values: Floats, season_length: int, first: int = 0
) -> tuple[Floats, Floats]:
    """Per point from `first` on, the expected value and the band's reach at sensitivity 1
    (usual deviation x scale): from the short history until the long history is ready and
    long enough. A short history judges its points one at a time, those before `first` not."""
    long = _long_history(values, season_length)
    ready = np.flatnonzero(np.isfinite(long.usual))
    switch = max(int(ready[0]) if ready.size else len(values), SHORT_HISTORY_POINTS)
    short = _short_history(values, season_length, first, switch)
    judged_long = np.arange(len(values)) >= switch
    return (
        np.where(judged_long, long.expected, short.expected),
        np.where(judged_long, long.usual * long.scale, short.usual * short.scale),
    )


# Long history


def _long_history(values: Floats, season_length: int) -> Judgement:
    if len(values) <= SHORT_HISTORY_POINTS:  # judged from its short history throughout
        unjudged = np.full(len(values), np.nan)
        return Judgement(unjudged, unjudged, unjudged)
    span = _span(season_length)
    expected = _level(values) + _seasonal_offset(values, span)
    absolute = np.abs(values - expected)
    scale = _scale(absolute, values, expected, SCALE_SEASONS * span)
    window = USUAL_SEASONS * span
    least = min(window, USUAL_LEAST_POINTS)
    usual = _trailing_known(absolute / scale, window, _percentile99, least)
    return Judgement(expected, scale, np.maximum(usual, 1.0))


def _level(values: Floats) -> Floats:
    return _trailing(values, LEVEL_POINTS, _median, min_points=LEVEL_POINTS)


def _seasonal_offset(values: Floats, span: int) -> Floats:
    """The median over the last SEASONS seasons of the deviation from the level at the same
    position; NaN until one is known."""
    offset = np.full(len(values), np.nan)
    deviation = values - _level(values)
    earlier = np.full((SEASONS, len(values)), np.nan)
    for k in range(1, SEASONS + 1):
        if k * span < len(values):
            earlier[k - 1, k * span :] = deviation[: -k * span]
    known = np.any(np.isfinite(earlier), axis=0)
    offset[known] = np.nanmedian(earlier[:, known], axis=0)
    return offset


def _scale(absolute: Floats, values: Floats, expected: Floats, window: int) -> Floats:
    # A scale from a handful of residuals is too rough to judge by (and the usual deviation
    # would remember it for its whole window): it waits for a quarter of its window.
    least = max(MIN_HISTORY, window // 4)
    return _pick_scale(
        MAD_TO_SIGMA * _trailing_known(absolute, window, _median, least),
        MEAN_ABSOLUTE_TO_SIGMA * _trailing_known(absolute, window, _mean, least),
        RANGE_SHARE * _trailing(values, window, _range, least),
        expected,
    )


def _pick_scale(by_median: Floats, by_mean: Floats, by_range: Floats, expected: Floats) -> Floats:
    """The median-based scale, else the mean-based one, else the range-based one, never
    below a billionth of the expected value's size (NaN where there is no median)."""
    scale = np.where(by_median > 0, by_median, np.where(by_mean > 0, by_mean, by_range))
    floor = RELATIVE_FLOOR * np.maximum(1.0, np.abs(np.nan_to_num(expected)))
    return np.where(np.isfinite(by_median), np.maximum(scale, floor), np.nan)


# Short history


def _short_history(values: Floats, season_length: int, first: int, until: int) -> Judgement:
    """The short-history judgement of each point from `first` (and MIN_HISTORY) up to
    `until`, each from the values before it only."""
    figures = np.full((4, len(values)), np.nan)
    for t in range(max(first, MIN_HISTORY), min(until, len(values))):
        figures[:, t] = _short_history_figures(values[:t], season_length)
    expected, by_median, by_mean, by_range = figures
    scale = _pick_scale(by_median, by_mean, by_range, expected)
    return Judgement(expected, scale, np.where(np.isfinite(scale), SHORT_USUAL, np.nan))


def _short_history_figures(
    history: Floats, season_length: int
) -> tuple[float, float, float, float]:
    """From `history` alone: the expected next value and the median-, mean- and range-based
    scales of the errors."""
    known = len(history)
    whole = season_length >= 2 and known >= season_length + MIN_HISTORY
    step = season_length if whole else 1
    window = SEASONS * max(_span(season_length), NONSEASONAL_SPAN)
    first = max(step, known - window)
    drift = float(np.median(history[first:] - history[first - step : known - step]))
    forecasts = _drift_forecasts(history, np.arange(first, known + 1), step, drift)
    errors = history[first:] - forecasts[:-1]
    return (
        float(forecasts[-1]),
        _tau_scale(errors),
        MEAN_ABSOLUTE_TO_SIGMA * float(np.mean(np.abs(errors))),
        RANGE_SHARE * float(np.ptp(history[max(0, known - window) :])),
    )


def _tau_scale(errors: Floats) -> float:
    """The errors' tau scale (0 when more than half of them are equal)."""
    # No spread about the median (or a spread beyond floating point) gives NaN, then 0.
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        _, scale = scale_tau(errors, normalize=False)
    return TAU_TO_SIGMA * float(np.nan_to_num(scale))


def _drift_forecasts(
    history: Floats, positions: npt.NDArray[np.int_], step: int, drift: float
) -> Floats:
    """For each position (at least `step`): the median, over the last SEASONS steps back that
    the history holds, of the value then plus the drift for each step since."""
    held = np.minimum(positions // step, SEASONS)
    forecasts = np.empty(len(positions))
    for count in range(1, SEASONS + 1):
        chosen = positions[held == count]
        if chosen.size:
            projected = [history[chosen - k * step] + k * drift for k in range(1, count + 1)]
            forecasts[held == count] = np.median(projected, axis=0)
    return forecasts


# Trailing statistics


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


def _trailing_known(values: Floats, window: int, statistic: Statistic, min_points: int) -> Floats:
    """`_trailing` over the known values only: those after the leading NaNs (after them,
    every value is known)."""
    found = np.full(len(values), np.nan)
    known = np.flatnonzero(np.isfinite(values))
    if known.size:
        first = int(known[0])
        found[first:] = _trailing(values[first:], window, statistic, min_points)
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
