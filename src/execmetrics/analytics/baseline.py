"""What value a series should take next, and how far from it is unusual.

Anomaly alert rules judge a KPI's latest value against a baseline learnt from its own past.
Every detector has the `Detector` signature, so detectors can be swapped and compared on the
same series; `DETECTORS` names the ones a rule may choose.

The robust seasonal baseline, `robust_seasonal`:

- Expected value. With at least two full seasons of history (and a season of two periods or
  more) the history is split by STL (statsmodels, robust fitting) into trend, seasonal and
  residual parts; the next value is expected at the last trend value plus the median of the
  trend's last `RECENT_TREND_STEPS` one-step differences, plus the seasonal part at the same
  position one season earlier (method "stl-..."). With less history, or no season, it is
  expected at the median of the last `FALLBACK_WINDOW` values (method "median-...").
- Scale: 1.4826 x the median absolute one-step error (which estimates the standard deviation
  of normal errors, ignoring outliers), the errors measured out of sample: each past value
  against a forecast made from values before it. The seasonal method measures the errors of
  forecasting each value as the value one season earlier plus the median change over a
  season (one figure for the whole history); the non-seasonal one those of its own median
  forecast. STL's own
  residuals are not used: STL fits every point with that point in the data, so on two to five
  years of monthly values its residuals understate a new value's error two- to many-fold, and
  most ordinary values would be flagged.
- When more than half of the errors are zero (a series that rarely moves) the mean absolute
  error stands in, and the scale never goes below `scale_floor`, so a flat series flags a
  real change but not floating-point noise.
- Band: expected +- sensitivity x scale; score: (value - expected) / scale.
- Fewer than `MIN_HISTORY` values: no judgement (None).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from statsmodels.tsa.seasonal import STL

# The fewest values of history any judgement is made from.
MIN_HISTORY = 6
# How many recent values the non-seasonal median reads: three odd values in a row do not
# move it, and it follows a new level after four periods.
FALLBACK_WINDOW = 7
# The fewest earlier values a non-seasonal forecast is made from when measuring its errors.
FALLBACK_MIN_POINTS = 3
# STL's seasonal smoother spans this many seasons, fitting a local level (degree 0): on the
# two to five seasons an alert sees, the seasonal pattern is taken as nearly fixed from one
# season to the next, which is all so few seasons support. STL's default (7 seasons, a local
# line) lets each position follow its own few values, so one odd value moves the forecast.
SEASONAL_SMOOTHER = 13
# How many of the trend's latest one-step differences give the slope of the next step.
RECENT_TREND_STEPS = 6
# 1.4826 x the median absolute error estimates the standard deviation of normal errors.
MAD_TO_SIGMA = 1.4826
# sqrt(pi / 2) x the mean absolute error estimates the same standard deviation.
MEAN_ABSOLUTE_TO_SIGMA = math.sqrt(math.pi / 2)
# The smallest scale, relative to the expected value's size (see scale_floor).
RELATIVE_SCALE_FLOOR = 1e-6

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Expectation:
    """A detector's verdict on one value: the expected value, the band of usual values
    around it, the value's robust z-score, and the method used."""

    expected: float
    lower: float
    upper: float
    score: float  # (value - expected) / scale
    method: str


class Detector(Protocol):
    """Judges `value` against `history`, the evenly spaced values before it, oldest first.

    A detector is given only the past, so it cannot look ahead. It returns None when the
    history is too short to judge. `season_length` is the number of periods in a season (12
    for monthly values with a yearly pattern; 1 or less for none). `sensitivity` is how many
    scales either side of the expected value the band reaches.
    """

    def __call__(
        self, history: Sequence[float], value: float, season_length: int, sensitivity: float
    ) -> Expectation | None: ...


def robust_seasonal(
    history: Sequence[float], value: float, season_length: int, sensitivity: float = 3.0
) -> Expectation | None:
    """The robust seasonal baseline (module docstring); None below `MIN_HISTORY` values."""
    if not (math.isfinite(sensitivity) and sensitivity > 0):
        raise ValueError(f"sensitivity must be a positive number, got {sensitivity!r}")
    series = np.asarray(history, dtype=np.float64)
    if not (np.all(np.isfinite(series)) and math.isfinite(value)):
        raise ValueError("history and value must be finite numbers")
    if len(series) < MIN_HISTORY:
        return None
    if season_length >= 2 and len(series) >= 2 * season_length:
        expected = seasonal_forecast(series, season_length)
        errors = seasonal_errors(series, season_length)
        method = "stl-mad"
    else:
        expected = median_forecast(series)
        errors = median_errors(series)
        method = "median-mad"
    scale = robust_scale(errors, expected)
    return Expectation(
        expected=expected,
        lower=expected - sensitivity * scale,
        upper=expected + sensitivity * scale,
        score=float((value - expected) / scale),
        method=method,
    )


def seasonal_forecast(series: FloatArray, season_length: int) -> float:
    """The next value by STL: the trend stepped on by its recent median step, plus the
    seasonal part one season before the next position."""
    parts = STL(
        series,
        period=season_length,
        seasonal=SEASONAL_SMOOTHER,
        seasonal_deg=0,
        robust=True,
    ).fit()
    trend = np.asarray(parts.trend, dtype=np.float64)
    seasonal = np.asarray(parts.seasonal, dtype=np.float64)
    step = float(np.median(np.diff(trend[-(RECENT_TREND_STEPS + 1) :])))
    return float(trend[-1]) + step + float(seasonal[-season_length])


def seasonal_errors(series: FloatArray, season_length: int) -> FloatArray:
    """Out-of-sample errors of forecasting each value as the value one season earlier plus
    the median change over a season."""
    changes = series[season_length:] - series[:-season_length]
    return changes - np.median(changes)


def median_forecast(series: FloatArray) -> float:
    """The next value as the median of the latest `FALLBACK_WINDOW` values."""
    return float(np.median(series[-FALLBACK_WINDOW:]))


def median_errors(series: FloatArray) -> FloatArray:
    """Out-of-sample errors of `median_forecast`: each value against the forecast from the
    values before it (from `FALLBACK_MIN_POINTS` of them on)."""
    return np.array(
        [series[t] - median_forecast(series[:t]) for t in range(FALLBACK_MIN_POINTS, len(series))],
        dtype=np.float64,
    )


def robust_scale(errors: FloatArray, expected: float) -> float:
    """How far values usually are from their forecast: 1.4826 x the median absolute error;
    if more than half the errors are about zero, the mean absolute error (rescaled) instead,
    since the series does move now and then; never below `scale_floor`."""
    floor = scale_floor(expected)
    absolute = np.abs(errors)
    by_median = MAD_TO_SIGMA * float(np.median(absolute))
    if by_median > floor:
        return by_median
    return max(MEAN_ABSOLUTE_TO_SIGMA * float(np.mean(absolute)), floor)


def scale_floor(expected: float) -> float:
    """The smallest scale: a millionth of the expected value's size, or of 1 near zero.

    A series that never moved has no scale of its own. With this floor and sensitivity 3 a
    change of more than three parts per million is flagged, while rounding error (about a
    part in 10^15) is not; near zero, a change of more than 3e-6 in the KPI's units
    is.
    """
    return RELATIVE_SCALE_FLOOR * max(1.0, abs(expected))


DETECTORS: dict[str, Detector] = {"robust_seasonal": robust_seasonal}
