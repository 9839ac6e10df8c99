"""Forecasts of a series some periods ahead, with 80% and 95% prediction intervals.

Each candidate model (statsmodels) is fitted to the series as it stood at a few past origins
and judged on how well it forecast the periods after each (a rolling-origin backtest), by
MASE: the mean absolute error over the horizon, divided by the mean absolute error that the
seasonal naive forecast (the value one season earlier; the previous value when there is no
season) makes within the training data. The candidate with the lowest mean MASE is fitted to
the whole series and forecasts it; the forecast reports its backtest MASE beside that of the
baseline, the seasonal naive forecast, which is itself a candidate, so a model that does no
better than it is never chosen over it.

Candidates, each where the series is long enough for it (docs/forecasting.md):

- seasonal_naive: the value one season earlier (a seasonal random walk, SARIMAX(0,0,0)(0,1,0));
  naive, the last value, for a series without a season or too short for one;
- linear_trend: least squares on time, with a dummy per season position when seasonal;
- stl_ets: STL decomposition, the seasonally adjusted part forecast by damped-trend ETS;
- ets_additive: ETS with additive errors, damped additive trend and additive season;
- ets_multiplicative: ETS with multiplicative errors and season (positive series only).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import statsmodels.api as sm
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.forecasting.stl import STLForecast
from statsmodels.tsa.statespace.sarimax import SARIMAX

from execmetrics.analytics.series import TimeSeries

Values = npt.NDArray[np.float64]
LEVELS = (80, 95)  # prediction interval coverage, percent
BACKTEST_ORIGINS = 3
# Without a season, the backtest forecasts this many periods ahead at most.
NONSEASONAL_BACKTEST_HORIZON = 6
MIN_VALUES = 3
MAX_HORIZON = 120
# Multiplicative ETS intervals are simulated: with a fixed seed, so a rerun gives the same.
SIMULATIONS = 500
SEED = 0


class ForecastError(ValueError):
    """A forecast that cannot be made; the message names the parameter."""


@dataclass(frozen=True)
class Prediction:
    mean: Values
    bounds: dict[int, tuple[Values, Values]] = field(default_factory=dict)  # level: low, high


Predict = Callable[[Values, int, int, bool], Prediction]  # history, season, horizon, bounds


@dataclass(frozen=True)
class Candidate:
    name: str
    predict: Predict
    min_values: Callable[[int], int]  # the fewest values it is fitted to, by season length
    seasonal: bool = False  # needs a season of two periods or more
    positive: bool = False  # needs every value above zero


@dataclass(frozen=True)
class ForecastPoint:
    period: str
    mean: float
    bounds: dict[int, tuple[float, float]]  # level: low, high


@dataclass(frozen=True)
class Forecast:
    model: str
    baseline: str
    backtest_mase: float | None  # the chosen model's; None when no origin had an error scale
    baseline_mase: float | None
    candidates: dict[str, float | None]  # each backtested candidate's MASE; None: it failed
    notes: list[str]  # why candidates were left out, or why there was no backtest
    backtest_origins: int
    backtest_horizon: int
    points: list[ForecastPoint]


def _bounds_of(frame: pd.DataFrame, low: str, high: str) -> tuple[Values, Values]:
    return frame[low].to_numpy(float), frame[high].to_numpy(float)


def _sarimax(order: tuple[int, int, int], seasonal: bool) -> Predict:
    def predict(history: Values, season: int, horizon: int, bounds: bool) -> Prediction:
        seasonal_order = (0, 1, 0, season) if seasonal else (0, 0, 0, 0)
        fitted = SARIMAX(history, order=order, seasonal_order=seasonal_order).fit(disp=False)
        forecast = fitted.get_forecast(horizon)
        found = {}
        if bounds:
            for level in LEVELS:
                interval = np.asarray(forecast.conf_int(alpha=1 - level / 100), float)
                found[level] = (interval[:, 0], interval[:, 1])
        return Prediction(np.asarray(forecast.predicted_mean, float), found)

    return predict


def _linear_design(count: int, start: int, season: int) -> Values:
    time = np.arange(start, start + count, dtype=float)
    columns = [np.ones(count), time]
    if season > 1:
        position = time.astype(int) % season
        columns += [(position == k).astype(float) for k in range(1, season)]
    return np.column_stack(columns)


def _linear_trend(history: Values, season: int, horizon: int, bounds: bool) -> Prediction:
    # Season dummies only with two seasons of data: fewer leave each position one value.
    season = season if season > 1 and len(history) >= 2 * season else 1
    fitted = sm.OLS(history, _linear_design(len(history), 0, season)).fit()
    prediction = fitted.get_prediction(_linear_design(horizon, len(history), season))
    found = {}
    if bounds:
        for level in LEVELS:
            frame = prediction.summary_frame(alpha=1 - level / 100)
            found[level] = _bounds_of(frame, "obs_ci_lower", "obs_ci_upper")
    return Prediction(np.asarray(prediction.predicted_mean, float), found)


def _ets_model(history: Values, season: int, multiplicative: bool) -> Any:
    seasonal = season > 1
    kind = "mul" if multiplicative else "add"
    return ETSModel(
        pd.Series(history),
        error=kind,
        trend="add",
        damped_trend=True,
        seasonal=kind if seasonal else None,
        seasonal_periods=season if seasonal else None,
    )


def _ets(multiplicative: bool) -> Predict:
    def predict(history: Values, season: int, horizon: int, bounds: bool) -> Prediction:
        fitted = _ets_model(history, season, multiplicative).fit(disp=False)
        if not bounds:
            return Prediction(np.asarray(fitted.forecast(horizon), float))
        prediction = fitted.get_prediction(
            start=len(history),
            end=len(history) + horizon - 1,
            simulate_repetitions=SIMULATIONS,
            rng=np.random.default_rng(SEED),
        )
        found = {
            level: _bounds_of(
                prediction.summary_frame(alpha=1 - level / 100), "pi_lower", "pi_upper"
            )
            for level in LEVELS
        }
        return Prediction(np.asarray(prediction.predicted_mean, float), found)

    return predict


def _stl_ets(history: Values, season: int, horizon: int, bounds: bool) -> Prediction:
    """On the log scale when every value is positive: STL is additive, and a season that grows
    with the level (the usual way) is additive in the logarithm. Bounds map back exactly; the
    mean maps back to the median."""
    if np.all(history > 0):
        logged = _stl_ets_additive(np.log(history), season, horizon, bounds)
        return Prediction(
            np.exp(logged.mean),
            {level: (np.exp(low), np.exp(high)) for level, (low, high) in logged.bounds.items()},
        )
    return _stl_ets_additive(history, season, horizon, bounds)


def _stl_ets_additive(history: Values, season: int, horizon: int, bounds: bool) -> Prediction:
    model = STLForecast(
        pd.Series(history),
        ETSModel,
        model_kwargs={"error": "add", "trend": "add", "damped_trend": True},
        period=season,
        robust=True,
    )
    fitted = model.fit(fit_kwargs={"disp": False})
    if not bounds:
        return Prediction(np.asarray(fitted.forecast(horizon), float))
    prediction = fitted.get_prediction(start=len(history), end=len(history) + horizon - 1)
    found = {
        level: _bounds_of(
            prediction.summary_frame(alpha=1 - level / 100), "mean_ci_lower", "mean_ci_upper"
        )
        for level in LEVELS
    }
    return Prediction(np.asarray(prediction.predicted_mean, float), found)


SEASONAL_NAIVE = Candidate(
    "seasonal_naive", _sarimax((0, 0, 0), seasonal=True), lambda m: m + 2, seasonal=True
)
NAIVE = Candidate("naive", _sarimax((0, 1, 0), seasonal=False), lambda m: 2)
CANDIDATES: tuple[Candidate, ...] = (
    SEASONAL_NAIVE,
    NAIVE,
    Candidate("linear_trend", _linear_trend, lambda m: 3),
    Candidate("stl_ets", _stl_ets, lambda m: 2 * m + 1, seasonal=True),
    # ETS with a season starts from estimates of every season position: two seasons at least.
    Candidate("ets_additive", _ets(multiplicative=False), lambda m: max(2 * m + 2, 6)),
    Candidate(
        "ets_multiplicative",
        _ets(multiplicative=True),
        lambda m: 2 * m + 2,
        seasonal=True,
        positive=True,
    ),
)


def forecast_series(series: TimeSeries, horizon: int) -> Forecast:
    """The series forecast `horizon` periods ahead by the candidate that backtested best."""
    if not 1 <= horizon <= MAX_HORIZON:
        raise ForecastError(f"horizon: expected 1 to {MAX_HORIZON} periods, got {horizon}")
    values = np.asarray(series.values, dtype=float)
    if len(values) < MIN_VALUES:
        raise ForecastError(
            f"series: at least {MIN_VALUES} values are needed to forecast, got {len(values)}"
        )
    labels = series.following(horizon)
    if np.all(values == values[0]):
        return _constant(values[0], labels)
    season = series.season_length
    notes: list[str] = []
    # A season needs the seasonal naive baseline fitted at one backtest origin at least.
    if season > 1 and len(values) <= SEASONAL_NAIVE.min_values(season):
        notes.append(
            f"with {len(values)} values the series is too short for a season of {season} "
            f"periods (seasonal models need {SEASONAL_NAIVE.min_values(season) + 1} or more)"
        )
        season = 1
    baseline = SEASONAL_NAIVE if season > 1 else NAIVE
    eligible = [c for c in CANDIDATES if _suits(c, values, season) and c is not _other(baseline)]
    origins, step, tried = _origins(len(values), horizon, season, eligible, baseline)
    notes += _left_out(eligible, tried, season, origins)
    scores = {c.name: _backtest(c, values, season, step, origins) for c in tried}
    chosen = _choose(tried, scores, baseline)
    prediction = _fit(chosen, values, season, horizon)
    if prediction is None:
        notes.append(
            f"{chosen.name} could not be fitted to the whole series; the baseline forecasts"
        )
        chosen = baseline
        prediction = _fit(baseline, values, season, horizon)
        assert prediction is not None, "the baseline fits any series it backtested on"
    return Forecast(
        model=chosen.name,
        baseline=baseline.name,
        backtest_mase=scores.get(chosen.name),
        baseline_mase=scores.get(baseline.name),
        candidates=scores,
        notes=notes,
        backtest_origins=len(origins),
        backtest_horizon=step,
        points=_points(prediction, labels),
    )


def _other(baseline: Candidate) -> Candidate:
    """The baseline not in use: naive with a season, seasonal naive without."""
    return NAIVE if baseline is SEASONAL_NAIVE else SEASONAL_NAIVE


def _suits(candidate: Candidate, values: Values, season: int) -> bool:
    if candidate.seasonal and season <= 1:
        return False
    return not (candidate.positive and bool(np.any(values <= 0)))


def _origins(
    count: int, horizon: int, season: int, eligible: list[Candidate], baseline: Candidate
) -> tuple[list[int], int, list[Candidate]]:
    """The backtest's origins (training lengths, latest first), how many periods it forecasts
    from each, and the candidates long enough at every origin. The horizon is at most a
    season (or NONSEASONAL_BACKTEST_HORIZON) and as long as the series allows down to a
    quarter of that; the layout keeps the most candidates in, then covers the most periods.
    There is always one: a series has at least MIN_VALUES values, and a season only when the
    seasonal naive forecast can be fitted a period before the end."""
    longest = min(horizon, season if season > 1 else NONSEASONAL_BACKTEST_HORIZON)
    best: tuple[tuple[int, int], list[int], int, list[Candidate]] = ((0, 0), [], 0, [baseline])
    for step in range(longest, max(1, longest // 4) - 1, -1):
        for number in range(BACKTEST_ORIGINS, 0, -1):
            origins = [count - step * (k + 1) for k in range(number)]
            if origins[-1] < baseline.min_values(season):
                continue
            fitting = [c for c in eligible if c.min_values(season) <= origins[-1]]
            rank = (len(fitting), number * step)
            if rank > best[0]:
                best = (rank, origins, step, fitting)
    assert best[1], "no backtest origin"
    return best[1], best[2], best[3]


def _left_out(
    eligible: list[Candidate], tried: list[Candidate], season: int, origins: list[int]
) -> list[str]:
    return [
        f"{c.name} left out: the earliest backtest origin has {origins[-1]} values, "
        f"it needs {c.min_values(season)}"
        for c in eligible
        if c not in tried
    ]


def _backtest(
    candidate: Candidate, values: Values, season: int, step: int, origins: Sequence[int]
) -> float | None:
    """Mean MASE over the origins; None when the candidate fails to fit at one of them."""
    scores = []
    for origin in origins:
        history, actual = values[:origin], values[origin : origin + step]
        scale = _naive_error(history, season)
        try:
            predicted = _quietly(candidate.predict, history, season, step, False).mean
        except (ValueError, np.linalg.LinAlgError):
            return None
        if not np.all(np.isfinite(predicted)):
            return None
        if scale > 0:
            scores.append(float(np.mean(np.abs(actual - predicted))) / scale)
    return float(np.mean(scores)) if scores else None


def _naive_error(history: Values, season: int) -> float:
    """The in-sample mean absolute error of the seasonal naive forecast (MASE's scale)."""
    lag = season if season > 1 and len(history) > season else 1
    return float(np.mean(np.abs(history[lag:] - history[:-lag])))


def _choose(
    tried: list[Candidate], scores: dict[str, float | None], baseline: Candidate
) -> Candidate:
    scored = [c for c in tried if scores[c.name] is not None]
    if not scored:
        return baseline
    # The lowest MASE; on a tie, the earlier (simpler) candidate.
    return min(scored, key=lambda c: (scores[c.name], CANDIDATES.index(c)))


def _fit(candidate: Candidate, values: Values, season: int, horizon: int) -> Prediction | None:
    """The candidate's forecast with its bounds; None when it cannot be fitted."""
    try:
        prediction = _quietly(candidate.predict, values, season, horizon, True)
    except (ValueError, np.linalg.LinAlgError):
        return None
    finite = [prediction.mean, *(b for pair in prediction.bounds.values() for b in pair)]
    return prediction if all(np.all(np.isfinite(part)) for part in finite) else None


def _quietly(
    predict: Predict, history: Values, season: int, horizon: int, bounds: bool
) -> Prediction:
    # statsmodels warns of convergence on short series; the backtest judges the result.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return predict(history, season, horizon, bounds)


def _points(prediction: Prediction, labels: list[str]) -> list[ForecastPoint]:
    return [
        ForecastPoint(
            period,
            float(prediction.mean[i]),
            {
                level: (float(low[i]), float(high[i]))
                for level, (low, high) in prediction.bounds.items()
            },
        )
        for i, period in enumerate(labels)
    ]


def _constant(value: float, labels: list[str]) -> Forecast:
    return Forecast(
        model="constant",
        baseline="naive",
        backtest_mase=None,
        baseline_mase=None,
        candidates={},
        notes=["every value is the same: the forecast repeats it, with no spread"],
        backtest_origins=0,
        backtest_horizon=0,
        points=[
            ForecastPoint(period, value, {level: (value, value) for level in LEVELS})
            for period in labels
        ],
    )


def forecast_document(forecast: Forecast, unit: str | None = None) -> dict[str, Any]:
    """The forecast as JSON-ready data. Money (minor units) is rounded to whole units, as
    money always is; other values keep six decimal places."""

    def shown(value: float) -> float | int:
        return round(value) if unit == "money" else round(value, 6)

    def figure(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    return {
        "model": forecast.model,
        "backtest": {
            "mase": figure(forecast.backtest_mase),
            "baseline": forecast.baseline,
            "baseline_mase": figure(forecast.baseline_mase),
            "origins": forecast.backtest_origins,
            "horizon": forecast.backtest_horizon,
            "candidates": {name: figure(mase) for name, mase in forecast.candidates.items()},
        },
        "notes": forecast.notes,
        "forecast": [
            {"period": point.period, "forecast": shown(point.mean)}
            | {
                f"{side}_{level}": shown(bound)
                for level, bounds in point.bounds.items()
                for side, bound in zip(("lower", "upper"), bounds, strict=True)
            }
            for point in forecast.points
        ],
    }
