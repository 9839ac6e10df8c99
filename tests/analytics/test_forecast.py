"""Forecasts: the model chosen by its backtest, intervals that nest, and graceful short,
flat and odd series."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from execmetrics.analytics.forecast import LEVELS, ForecastError, forecast_series
from execmetrics.analytics.series import TimeSeries
from execmetrics.metrics.periods import add_months


def monthly(values: list[float], first: date = date(2020, 1, 1)) -> TimeSeries:
    starts = tuple(add_months(first, i) for i in range(len(values)))
    return TimeSeries("month", starts, tuple(float(v) for v in values))


def seasonal_values(months: int, seed: int = 3) -> list[float]:
    """A growing level with a wedding-season swell in the summer, and noise."""
    noise = np.random.default_rng(seed).normal(0, 4, months)
    return [
        1000 + 8 * t + 120 * np.sin(2 * np.pi * (t % 12) / 12) + noise[t] for t in range(months)
    ]


def test_a_seasonal_series_is_forecast_by_a_model_that_beats_its_baseline() -> None:
    forecast = forecast_series(monthly(seasonal_values(72)), 12)
    assert forecast.baseline == "seasonal_naive"
    assert forecast.model != "seasonal_naive"
    assert forecast.backtest_mase is not None and forecast.baseline_mase is not None
    assert forecast.backtest_mase < forecast.baseline_mase
    assert forecast.candidates[forecast.model] == forecast.backtest_mase
    assert set(forecast.candidates) == {
        "seasonal_naive", "linear_trend", "stl_ets", "ets_additive", "ets_multiplicative"
    }  # fmt: skip
    assert (forecast.backtest_origins, forecast.backtest_horizon) == (3, 12)
    assert [p.period for p in forecast.points] == [f"2026-{m:02d}" for m in range(1, 13)]
    # The next 12 months follow the pattern: the summer above the winter.
    by_month = {p.period[-2:]: p.mean for p in forecast.points}
    assert by_month["04"] > by_month["10"]
    for point in forecast.points:
        low80, high80 = point.bounds[80]
        low95, high95 = point.bounds[95]
        assert low95 <= low80 <= point.mean <= high80 <= high95


def test_the_same_series_gives_the_same_forecast() -> None:
    series = monthly([v * 1.5 for v in seasonal_values(48, seed=9)])
    assert forecast_series(series, 6) == forecast_series(series, 6)


def test_the_seasonal_naive_baseline_repeats_the_last_season() -> None:
    # A pure repeating pattern: nothing beats repeating it, and its forecast is exact.
    pattern = [5, 7, 9, 11, 13, 30, 40, 35, 20, 9, 6, 5]
    forecast = forecast_series(monthly(pattern * 4), 12)
    assert forecast.model == "seasonal_naive"
    assert [round(p.mean, 6) for p in forecast.points] == pattern


def test_a_series_shorter_than_two_seasons_is_forecast_without_one_and_says_why() -> None:
    forecast = forecast_series(monthly([10, 12, 13, 15, 16, 18, 19, 21, 22, 24]), 3)
    assert forecast.baseline == "naive"
    assert not {"seasonal_naive", "stl_ets", "ets_multiplicative"} & set(forecast.candidates)
    assert any("too short for a season of 12 periods" in note for note in forecast.notes)
    assert forecast.model == "linear_trend"  # a straight line, forecast as one
    assert [round(p.mean, 2) for p in forecast.points] == [25.33, 26.85, 28.36]  # least squares


def test_a_series_of_three_values_is_backtested_one_period_ahead() -> None:
    forecast = forecast_series(monthly([10, 12, 11]), 2)
    assert (forecast.backtest_origins, forecast.backtest_horizon) == (1, 1)
    assert forecast.model == "naive"  # the only candidate three values can fit
    assert forecast.candidates == {"naive": 0.5}  # |11 - 12| / |12 - 10|
    assert [p.mean for p in forecast.points] == pytest.approx([11, 11])


def test_a_season_needs_one_backtest_origin_for_its_baseline() -> None:
    fourteen = forecast_series(monthly(seasonal_values(14)), 3)
    assert fourteen.baseline == "naive"
    assert "seasonal models need 15 or more" in fourteen.notes[0]
    fifteen = forecast_series(monthly(seasonal_values(15)), 3)
    assert fifteen.baseline == "seasonal_naive"
    assert (fifteen.backtest_origins, fifteen.backtest_horizon) == (1, 1)
    assert any(note.startswith("stl_ets left out:") for note in fifteen.notes)


def test_a_flat_series_repeats_its_value_with_no_spread() -> None:
    forecast = forecast_series(monthly([250.0] * 30), 4)
    assert forecast.model == "constant"
    assert forecast.notes == ["every value is the same: the forecast repeats it, with no spread"]
    assert all(
        p.mean == 250 and p.bounds == {80: (250, 250), 95: (250, 250)} for p in forecast.points
    )
    assert set(forecast.points[0].bounds) == set(LEVELS)


def test_a_series_with_values_at_or_below_zero_leaves_out_multiplicative_models() -> None:
    values = [v - 1000 for v in seasonal_values(60)]  # crosses zero
    forecast = forecast_series(monthly(values), 6)
    assert "ets_multiplicative" not in forecast.candidates
    assert "stl_ets" in forecast.candidates


def test_a_quarterly_series_has_a_season_of_four() -> None:
    starts = tuple(add_months(date(2015, 1, 1), 3 * i) for i in range(40))
    values = tuple(100 + 2 * i + (15 if i % 4 == 2 else 0) for i in range(40))
    forecast = forecast_series(TimeSeries("quarter", starts, tuple(map(float, values))), 4)
    assert forecast.baseline == "seasonal_naive" and forecast.backtest_horizon == 4
    assert [p.period for p in forecast.points] == ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]
    q3 = forecast.points[2].mean
    assert q3 > forecast.points[1].mean and q3 > forecast.points[3].mean


@pytest.mark.parametrize(
    ("values", "horizon", "message"),
    [
        ([1.0, 2.0], 3, "series: at least 3 values are needed to forecast, got 2"),
        ([1.0, 2.0, 3.0], 0, "horizon: expected 1 to 120 periods, got 0"),
        ([1.0, 2.0, 3.0], 121, "horizon: expected 1 to 120 periods, got 121"),
    ],
)
def test_impossible_requests_are_refused_naming_the_parameter(
    values: list[float], horizon: int, message: str
) -> None:
    with pytest.raises(ForecastError, match=message):
        forecast_series(monthly(values), horizon)


def test_a_chosen_model_that_cannot_fit_the_whole_series_gives_way_to_the_baseline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from execmetrics.analytics import forecast as module

    line = [10.0 + 2 * i for i in range(10)]
    original = next(c for c in module.CANDIDATES if c.name == "linear_trend")

    def fails_on_everything(
        history: np.ndarray, season: int, horizon: int, bounds: bool
    ) -> module.Prediction:
        if len(history) == len(line):
            raise ValueError("singular")
        return original.predict(history, season, horizon, bounds)

    failing = module.Candidate("linear_trend", fails_on_everything, original.min_values)
    swapped = tuple(failing if c is original else c for c in module.CANDIDATES)
    monkeypatch.setattr(module, "CANDIDATES", swapped)
    forecast = forecast_series(monthly(line), 2)
    assert forecast.model == "naive"
    assert forecast.candidates["linear_trend"] == pytest.approx(0.0, abs=1e-9)
    assert "linear_trend could not be fitted to the whole series" in forecast.notes[-1]
    assert [p.mean for p in forecast.points] == pytest.approx([28.0, 28.0])
