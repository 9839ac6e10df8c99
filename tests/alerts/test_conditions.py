"""Alert conditions: validation, and exact judgement of thresholds, trends and targets."""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import yaml
from pydantic import TypeAdapter, ValidationError

from execmetrics.alerts.conditions import (
    MIN_ELAPSED,
    AnomalyCondition,
    Condition,
    TargetCondition,
    ThresholdCondition,
    TrendCondition,
    check_anomaly,
    check_missed,
    check_pacing,
    check_threshold,
    check_trend,
    history_before,
    label_back,
    project_period_end,
)
from execmetrics.analytics.anomaly import DEFAULT_SENSITIVITY, detect
from execmetrics.kpi.definitions import Direction
from execmetrics.metrics.periods import PeriodError, label, shift_periods

F = Fraction
CONDITION: TypeAdapter[Any] = TypeAdapter(Condition)
HIGHER = Direction.HIGHER_IS_BETTER
LOWER = Direction.LOWER_IS_BETTER


def describe(value: Fraction) -> str:
    return f"{float(value):,.2f}"


def condition(data: dict[str, Any]) -> Any:
    return CONDITION.validate_python(data)


def refusal(data: dict[str, Any]) -> str:
    """Every location and message of the validation errors, as one text."""
    with pytest.raises(ValidationError) as caught:
        condition(data)
    return " | ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in caught.value.errors())


# Parsing and validation


def test_each_kind_parses_from_yaml_with_exact_values() -> None:
    document = yaml.safe_load(
        """
        - {kind: threshold, below: "200000000", recover_above: "205000000"}
        - {kind: trend, compare_to: same_period_last_year, falls_by: "12.5"}
        - {kind: anomaly, sensitivity: 3.5, direction: up}
        - {kind: target, margin_percent: "2.5", check: pacing}
        """
    )
    threshold, trend, anomaly, target = (condition(item) for item in document)
    assert isinstance(threshold, ThresholdCondition)
    assert threshold.below == 200_000_000 and threshold.recovery == 205_000_000
    assert isinstance(trend, TrendCondition)
    assert trend.falls_by == F(25, 2) and trend.change == "percent" and trend.periods == 1
    assert isinstance(anomaly, AnomalyCondition)
    assert anomaly.sensitivity == 3.5 and anomaly.detector == "robust_seasonal"
    assert anomaly.min_history == 6
    assert isinstance(target, TargetCondition)
    assert target.margin_percent == F(5, 2)
    assert target.checks_pacing and not target.checks_missed


def test_conditions_survive_a_round_trip_through_json() -> None:
    for data in (
        {"kind": "threshold", "above": "0.05", "recover_below": "0.045"},
        {"kind": "trend", "rises_by": 1000, "change": "absolute", "periods": 3},
        {"kind": "anomaly", "direction": "down", "min_history": 12},
        {"kind": "target", "margin_percent": "0.5"},
    ):
        parsed = condition(data)
        assert CONDITION.validate_json(CONDITION.dump_json(parsed)) == parsed


def test_defaults() -> None:
    target = condition({"kind": "target"})
    assert target.margin_percent == 0 and target.check == "both"
    assert target.checks_pacing and target.checks_missed
    anomaly = condition({"kind": "anomaly"})
    assert (anomaly.sensitivity, anomaly.direction) == (None, "both")
    # Without a sensitivity, the detector's own default (tuned on NAB for the robust one).
    assert anomaly.threshold == DEFAULT_SENSITIVITY["robust_seasonal"] == 1.73
    assert condition({"kind": "anomaly", "detector": "rolling_zscore"}).threshold == 2.0
    assert condition({"kind": "anomaly", "sensitivity": 2.5}).threshold == 2.5


def test_an_unknown_detector_is_refused_naming_those_there_are() -> None:
    message = refusal({"kind": "anomaly", "detector": "prophet"})
    assert message.startswith("anomaly.detector:")
    assert "expected one of robust_seasonal, rolling_zscore" in message


def test_a_floating_point_number_is_refused_with_the_way_to_write_it() -> None:
    message = refusal({"kind": "threshold", "above": 0.1})
    assert message.startswith("threshold.above:")
    assert "as a string, such as '0.1'" in message
    # The reason: the float 0.1 is not one tenth.
    assert F(0.1) != F("0.1")


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"kind": "threshold", "above": 1, "below": 2}, "above or below"),
        ({"kind": "threshold"}, "above or below"),
        ({"kind": "threshold", "above": 100, "recover_below": 101}, "recover_below"),
        ({"kind": "threshold", "below": 100, "recover_above": 99}, "recover_above"),
        ({"kind": "threshold", "above": 100, "recover_above": 90}, "recover_above"),
        ({"kind": "threshold", "below": 100, "recover_below": 90}, "recover_below"),
        ({"kind": "threshold", "above": "ten"}, "threshold.above"),
        ({"kind": "threshold", "above": True}, "threshold.above"),
        ({"kind": "threshold", "above": 1, "limit": 2}, "threshold.limit"),
        ({"kind": "trend", "rises_by": 10, "periods": 0}, "trend.periods"),
        ({"kind": "trend", "rises_by": 10, "periods": 25}, "trend.periods"),
        ({"kind": "trend", "rises_by": 10, "periods": True}, "trend.periods"),
        ({"kind": "trend", "rises_by": 10, "falls_by": 10}, "rises_by or falls_by"),
        ({"kind": "trend"}, "rises_by or falls_by"),
        ({"kind": "trend", "rises_by": 0}, "rises_by"),
        ({"kind": "trend", "falls_by": "-5"}, "falls_by"),
        ({"kind": "trend", "rises_by": 5, "compare_to": "last_week"}, "trend.compare_to"),
        ({"kind": "anomaly", "sensitivity": 0}, "anomaly.sensitivity"),
        ({"kind": "anomaly", "sensitivity": "3"}, "anomaly.sensitivity"),
        ({"kind": "anomaly", "detector": "prophet"}, "anomaly.detector"),
        ({"kind": "anomaly", "min_history": 5}, "anomaly.min_history"),
        ({"kind": "anomaly", "direction": "sideways"}, "anomaly.direction"),
        ({"kind": "target", "margin_percent": "-1"}, "margin_percent"),
        ({"kind": "target", "check": "later"}, "target.check"),
        ({"kind": "forecast"}, "kind"),
    ],
)
def test_invalid_conditions_are_refused_naming_the_field(data: dict[str, Any], names: str) -> None:
    assert names in refusal(data)


# Threshold


def test_hysteresis_fires_above_and_clears_only_below_the_recovery_level() -> None:
    rule = condition({"kind": "threshold", "above": "100", "recover_below": "90"})
    firing = False
    verdicts = []
    for value in (101, 95, 89, 95):
        outcome = check_threshold(rule, F(value), firing, describe)
        verdicts.append(outcome.holds)
        firing = bool(outcome.holds)
    assert verdicts == [True, True, False, False]


def test_hysteresis_below() -> None:
    rule = condition({"kind": "threshold", "below": "50", "recover_above": "60"})
    firing = False
    verdicts = []
    for value in (49, 55, 60, 55):
        outcome = check_threshold(rule, F(value), firing, describe)
        verdicts.append(outcome.holds)
        firing = bool(outcome.holds)
    assert verdicts == [True, True, False, False]


def test_without_a_recovery_level_the_threshold_is_the_recovery_level() -> None:
    rule = condition({"kind": "threshold", "above": "100"})
    assert rule.recovery == 100
    assert check_threshold(rule, F(100), True, describe).holds is False
    assert check_threshold(rule, F(10001, 100), True, describe).holds is True


def test_a_recovery_level_of_zero_is_used() -> None:
    rule = condition({"kind": "threshold", "above": "10", "recover_below": "0"})
    assert check_threshold(rule, F(5), True, describe).holds is True
    assert check_threshold(rule, F(0), True, describe).holds is False


def test_thresholds_are_exact() -> None:
    above = condition({"kind": "threshold", "above": "0.1"})
    assert check_threshold(above, F(1, 10), False, describe).holds is False
    assert check_threshold(above, F(1, 10) + F(1, 10**30), False, describe).holds is True
    third = ThresholdCondition(above=F(1, 3))
    assert check_threshold(third, F(1, 3), False, describe).holds is False
    assert check_threshold(third, F(333_333_333_333, 10**12), False, describe).holds is False
    below = condition({"kind": "threshold", "below": "0.1"})
    assert check_threshold(below, F(1, 10), False, describe).holds is False
    assert check_threshold(below, F(1, 10) - F(1, 10**30), False, describe).holds is True


def test_threshold_outcome_reports_the_value_and_the_line_judged() -> None:
    rule = condition({"kind": "threshold", "above": "100", "recover_below": "90"})
    fired = check_threshold(rule, F(101), False, describe)
    assert (fired.observed, fired.bound) == (101, 100)
    assert fired.summary == "101.00 is above the threshold of 100.00."
    still = check_threshold(rule, F(95), True, describe)
    assert (still.observed, still.bound) == (95, 90)
    assert "still above 90.00" in still.summary
    cleared = check_threshold(rule, F(89), True, describe)
    assert "clears" in cleared.summary and cleared.holds is False


def test_threshold_without_a_value_decides_nothing() -> None:
    rule = condition({"kind": "threshold", "below": "5"})
    outcome = check_threshold(rule, None, False, describe)
    assert outcome.holds is None and outcome.observed is None and outcome.bound == 5


# Trend


def trend(**fields: Any) -> TrendCondition:
    result = condition({"kind": "trend", **fields})
    assert isinstance(result, TrendCondition)
    return result


@pytest.mark.parametrize(
    ("current", "interval", "back", "expected"),
    [
        ("2026-01", "month", 1, "2025-12"),
        ("2026-01", "month", 12, "2025-01"),
        ("2026-03", "month", 24, "2024-03"),
        ("2026-Q1", "quarter", 1, "2025-Q4"),
        ("2026-Q1", "quarter", 4, "2025-Q1"),
        ("2026", "year", 1, "2025"),
        ("2026-W01", "week", 1, "2025-W52"),
        ("2026-W01", "week", 52, "2025-W01"),
    ],
)
def test_labels_back_across_year_boundaries(
    current: str, interval: str, back: int, expected: str
) -> None:
    assert label_back(current, interval, back) == expected


def test_a_label_of_another_interval_is_refused() -> None:
    with pytest.raises(PeriodError, match="not a quarter label"):
        label_back("2026-01", "quarter", 1)
    with pytest.raises(PeriodError, match="interval"):
        label_back("2026-01", "fortnight", 1)
    yearly = trend(compare_to="same_period_last_year", rises_by="1")
    with pytest.raises(PeriodError, match="interval"):
        check_trend(yearly, {}, "2026-01", "fortnight", describe)
    with pytest.raises(PeriodError, match="interval"):
        check_anomaly(anomaly(), {"2026-01": F(1)}, "2026-01", "fortnight", describe)


def test_percent_rise_against_the_previous_period() -> None:
    series = {"2025-12": F(1000), "2026-01": F(1120)}
    outcome = check_trend(trend(rises_by="10"), series, "2026-01", "month", describe)
    assert outcome.holds is True
    assert (outcome.observed, outcome.bound) == (12, 10)
    assert outcome.summary == (
        "Up 12% from 1,000.00 in 2025-12 to 1,120.00; the rule watches for a rise of 10% or more."
    )
    # A rise of exactly the amount counts; a hair more does not.
    assert check_trend(trend(rises_by="12"), series, "2026-01", "month", describe).holds
    assert not check_trend(trend(rises_by="12.01"), series, "2026-01", "month", describe).holds


def test_percent_fall() -> None:
    series = {"2025-12": F(1000), "2026-01": F(900)}
    outcome = check_trend(trend(falls_by="10"), series, "2026-01", "month", describe)
    assert outcome.holds is True
    assert (outcome.observed, outcome.bound) == (-10, -10)
    assert outcome.summary.startswith("Down 10% from 1,000.00 in 2025-12")
    assert not check_trend(trend(falls_by="10.5"), series, "2026-01", "month", describe).holds
    assert not check_trend(trend(rises_by="1"), series, "2026-01", "month", describe).holds


def test_absolute_rise_and_fall() -> None:
    series = {"2025-Q4": F(5000), "2026-Q1": F(5250)}
    rise = check_trend(
        trend(rises_by=250, change="absolute"), series, "2026-Q1", "quarter", describe
    )
    assert rise.holds is True and rise.observed == 250
    assert "Up 250.00" in rise.summary and "rise of 250.00 or more" in rise.summary
    fall = check_trend(trend(falls_by=1, change="absolute"), series, "2026-Q1", "quarter", describe)
    assert fall.holds is False and fall.bound == -1


def test_percent_changes_are_exact() -> None:
    series = {"2025-12": F(300), "2026-01": F(301)}
    outcome = check_trend(trend(rises_by="0.33"), series, "2026-01", "month", describe)
    assert outcome.observed == F(1, 3)
    assert outcome.holds is True
    assert not check_trend(trend(rises_by="0.34"), series, "2026-01", "month", describe).holds


def test_percent_change_is_relative_to_the_size_of_a_negative_base() -> None:
    series = {"2025-12": F(-100), "2026-01": F(-50)}
    outcome = check_trend(trend(rises_by="50"), series, "2026-01", "month", describe)
    assert outcome.observed == 50 and outcome.holds is True


def test_same_period_last_year_monthly_and_quarterly() -> None:
    months = {"2025-01": F(100), "2025-12": F(200), "2026-01": F(130)}
    yearly = trend(compare_to="same_period_last_year", rises_by="25")
    outcome = check_trend(yearly, months, "2026-01", "month", describe)
    assert outcome.holds is True and outcome.observed == 30
    assert "in 2025-01" in outcome.summary
    quarters = {"2024-Q1": F(100), "2025-Q1": F(80), "2026-Q1": F(110)}
    two_years = trend(compare_to="same_period_last_year", periods=2, rises_by="10")
    assert check_trend(two_years, quarters, "2026-Q1", "quarter", describe).observed == 10


def test_several_periods_back() -> None:
    series = {"2025-10": F(100), "2025-12": F(500), "2026-01": F(90)}
    three_back = trend(periods=3, falls_by="10")
    outcome = check_trend(three_back, series, "2026-01", "month", describe)
    assert outcome.holds is True and outcome.observed == -10


def test_percent_change_from_zero_decides_nothing() -> None:
    series = {"2025-12": F(0), "2026-01": F(5)}
    outcome = check_trend(trend(rises_by="10"), series, "2026-01", "month", describe)
    assert outcome.holds is None and outcome.observed is None
    assert "zero" in outcome.summary
    absolute = trend(rises_by="5", change="absolute")
    assert check_trend(absolute, series, "2026-01", "month", describe).holds is True


def test_missing_values_decide_nothing() -> None:
    rule = trend(rises_by="10")
    no_base = check_trend(rule, {"2026-01": F(5)}, "2026-01", "month", describe)
    assert no_base.holds is None and "2025-12" in no_base.summary
    no_value = {"2025-12": F(5), "2026-01": None}
    outcome = check_trend(rule, no_value, "2026-01", "month", describe)
    assert outcome.holds is None and "2026-01" in outcome.summary


# Anomaly


MONTHS = 48


def month_label(back: int) -> str:
    """The label of the month `back` months before December 2024."""
    return label(shift_periods(date(2024, 12, 1), "month", back), "month")


def seasonal_series() -> dict[str, Fraction | None]:
    """Four years of a KPI that grows and peaks every December, in whole minor units."""
    rng = np.random.default_rng(7)
    series: dict[str, Fraction | None] = {}
    for back in range(MONTHS):
        t = MONTHS - 1 - back
        december = t % 12 == 11
        value = 10_000 + 50 * t + (3_000 if december else 0) + rng.normal(0, 40)
        series[month_label(back)] = F(round(value))
    return series


def anomaly(**fields: Any) -> AnomalyCondition:
    result = condition({"kind": "anomaly", **fields})
    assert isinstance(result, AnomalyCondition)
    return result


def test_the_seasonal_peak_is_not_an_anomaly() -> None:
    series = seasonal_series()
    outcome = check_anomaly(anomaly(), series, "2024-12", "month", describe)
    assert outcome.holds is False
    assert isinstance(outcome.observed, float) and abs(outcome.observed) <= 3
    assert "within the usual range" in outcome.summary


def test_a_spike_or_a_dip_is_an_anomaly_in_its_direction() -> None:
    series = seasonal_series()
    peak = series["2024-12"]
    assert peak is not None
    spike = {**series, "2024-12": peak + 1_000}
    dip = {**series, "2024-12": peak - 1_000}
    up, down = anomaly(direction="up"), anomaly(direction="down")
    high = check_anomaly(anomaly(), spike, "2024-12", "month", describe)
    assert high.holds is True and high.bound == 1.73
    assert "unusually high" in high.summary
    low = check_anomaly(anomaly(), dip, "2024-12", "month", describe)
    assert low.holds is True and low.bound == -1.73
    assert "unusually low" in low.summary
    assert check_anomaly(up, spike, "2024-12", "month", describe).holds is True
    assert check_anomaly(up, dip, "2024-12", "month", describe).holds is False
    assert check_anomaly(down, dip, "2024-12", "month", describe).holds is True
    assert check_anomaly(down, spike, "2024-12", "month", describe).holds is False


def test_history_is_the_unbroken_run_before_the_period() -> None:
    series = seasonal_series()
    assert len(history_before(series, "2024-12", "month", 60)) == MONTHS - 1
    assert history_before(series, "2024-12", "month", 3) == [
        series["2024-09"],
        series["2024-10"],
        series["2024-11"],
    ]
    gap = {**series, "2024-08": None}
    assert len(history_before(gap, "2024-12", "month", 60)) == 3
    del gap["2024-08"]
    assert len(history_before(gap, "2024-12", "month", 60)) == 3


def test_too_little_history_decides_nothing() -> None:
    series = {**seasonal_series(), "2024-08": None}
    outcome = check_anomaly(anomaly(), series, "2024-12", "month", describe)
    assert outcome.holds is None
    assert outcome.summary == (
        "Too little history to judge: 3 periods with values in a row before 2024-12, "
        "and at least 6 are needed."
    )
    demanding = anomaly(min_history=60)
    assert check_anomaly(demanding, seasonal_series(), "2024-12", "month", describe).holds is None
    no_value = {**seasonal_series(), "2024-12": None}
    assert check_anomaly(anomaly(), no_value, "2024-12", "month", describe).holds is None


def test_a_short_history_is_judged_without_seasons() -> None:
    series = {month_label(back): F(1000 + back % 2) for back in range(1, 9)}
    series["2024-12"] = F(1000)
    assert check_anomaly(anomaly(), series, "2024-12", "month", describe).holds is False
    series["2024-12"] = F(2000)
    assert check_anomaly(anomaly(), series, "2024-12", "month", describe).holds is True


def monthly_kpi(months: int, seed: int) -> dict[str, Fraction | None]:
    """A KPI ending in December 2024 that grows by 10 a month with a yearly swing of 100, and
    noise of 10: the values are whole numbers, as minor units are."""
    rng = np.random.default_rng(seed)
    series: dict[str, Fraction | None] = {}
    for back in range(months):
        t = months - 1 - back
        value = 1_000 + 10 * t + 100 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 10)
        series[month_label(back)] = F(round(value))
    return series


@pytest.mark.parametrize("months", [24, 37, 60])
def test_a_jump_in_a_short_trending_kpi_is_an_anomaly_and_its_course_is_not(months: int) -> None:
    for seed in range(3):
        series = monthly_kpi(months, seed)
        latest = series["2024-12"]
        assert latest is not None
        on_course = check_anomaly(anomaly(), series, "2024-12", "month", describe)
        assert on_course.holds is False, seed
        jump = {**series, "2024-12": latest + 100}  # ten noise levels
        outcome = check_anomaly(anomaly(), jump, "2024-12", "month", describe)
        assert outcome.holds is True, seed
        assert isinstance(outcome.observed, float) and outcome.observed > 1.73


@pytest.mark.parametrize("detector", ["robust_seasonal", "rolling_zscore"])
def test_the_rule_judges_the_value_as_the_detector_judges_the_last_point(detector: str) -> None:
    series = seasonal_series()
    history = history_before(series, "2024-12", "month", 60)
    latest = series["2024-12"]
    assert latest is not None
    found = detect([float(v) for v in [*history, latest]], 12, detector)
    outcome = check_anomaly(anomaly(detector=detector), series, "2024-12", "month", describe)
    assert outcome.observed == found.score[-1]
    assert outcome.bound == DEFAULT_SENSITIVITY[detector] * np.sign(found.score[-1])
    band = f"{describe(F(found.lower[-1]))} to {describe(F(found.upper[-1]))} is usual"
    assert band in outcome.summary


def test_a_history_the_detector_cannot_judge_decides_nothing() -> None:
    # A z-score needs a history that moves.
    flat = {month_label(back): F(500) for back in range(12)}
    rule = anomaly(detector="rolling_zscore")
    outcome = check_anomaly(rule, flat, "2024-12", "month", describe)
    assert outcome.holds is None
    assert outcome.summary == "The rolling_zscore detector cannot judge 2024-12 from this history."
    # The robust detector judges it: an unchanged value is usual, a changed one is not.
    assert check_anomaly(anomaly(), flat, "2024-12", "month", describe).holds is False
    changed = {**flat, "2024-12": F(501)}
    assert check_anomaly(anomaly(), changed, "2024-12", "month", describe).holds is True


def test_higher_sensitivity_flags_less() -> None:
    series = seasonal_series()
    peak = series["2024-12"]
    assert peak is not None
    moderate = {**series, "2024-12": peak + 300}
    strict = check_anomaly(anomaly(sensitivity=2), moderate, "2024-12", "month", describe)
    lenient = check_anomaly(anomaly(sensitivity=20), moderate, "2024-12", "month", describe)
    assert strict.observed == lenient.observed
    assert strict.holds is True and lenient.holds is False


# Targets


def target(**fields: Any) -> TargetCondition:
    result = condition({"kind": "target", **fields})
    assert isinstance(result, TargetCondition)
    return result


def test_projections_by_pace() -> None:
    assert project_period_end(F(40), None, "flow", F(1, 4)) == 160
    assert project_period_end(F(10), None, "flow", F(1, 3)) == 30
    assert project_period_end(F(110), F(100), "stock", F(1, 4)) == 140
    assert project_period_end(F(95), F(100), "stock", F(1, 2)) == 90
    assert project_period_end(F(3, 100), None, "rate", F(1, 4)) == F(3, 100)
    assert project_period_end(F(40), F(7), "flow", F(1)) == 40


@pytest.mark.parametrize("elapsed", [F(0), F(-1, 2), F(5, 4)])
def test_elapsed_must_be_a_share_of_the_period(elapsed: Fraction) -> None:
    with pytest.raises(ValueError, match="elapsed"):
        project_period_end(F(1), None, "flow", elapsed)
    with pytest.raises(ValueError, match="elapsed"):
        check_pacing(target(), F(1), None, F(1), HIGHER, "flow", elapsed, describe)


def test_a_stock_projection_needs_the_opening_value() -> None:
    with pytest.raises(ValueError, match="start"):
        project_period_end(F(1), None, "stock", F(1, 2))
    outcome = check_pacing(target(), F(1), None, F(1), HIGHER, "stock", F(1, 2), describe)
    assert outcome.holds is None and "start" in outcome.summary


def test_pacing_flow_short_of_the_goal() -> None:
    outcome = check_pacing(target(), F(40), None, F(200), HIGHER, "flow", F(1, 4), describe)
    assert outcome.holds is True
    assert (outcome.observed, outcome.bound) == (160, 200)
    assert outcome.summary == (
        "On course for 160.00 by the period's end, short of the target of 200.00."
    )
    on_course = check_pacing(target(), F(50), None, F(200), HIGHER, "flow", F(1, 4), describe)
    assert on_course.holds is False
    assert on_course.summary.endswith("against a target of 200.00.")


def test_pacing_margin_boundary_is_exact() -> None:
    def pacing(margin: str) -> bool | None:
        rule = target(margin_percent=margin)
        return check_pacing(rule, F(40), None, F(200), HIGHER, "flow", F(1, 4), describe).holds

    assert pacing("20") is False  # the limit is 160, exactly the projection
    assert pacing("19.99") is True
    outcome = check_pacing(
        target(margin_percent="10"), F(40), None, F(200), HIGHER, "flow", F(1, 4), describe
    )
    assert outcome.bound == 180
    assert "by more than the 10% margin" in outcome.summary


def test_pacing_stock() -> None:
    rule = target(margin_percent="5")
    behind = check_pacing(rule, F(104), F(100), F(120), HIGHER, "stock", F(1, 4), describe)
    assert behind.observed == 116 and behind.bound == 114
    assert behind.holds is False  # 116 is within 5% of 120
    worse = check_pacing(rule, F(103), F(100), F(120), HIGHER, "stock", F(1, 4), describe)
    assert worse.observed == 112 and worse.holds is True


def test_pacing_rate_where_lower_is_better() -> None:
    rule = target(margin_percent="10")
    goal = F("0.03")
    at_edge = check_pacing(rule, F("0.033"), None, goal, LOWER, "rate", F(1, 2), describe)
    assert at_edge.bound == F("0.033") and at_edge.holds is False
    over = check_pacing(rule, F("0.0331"), None, goal, LOWER, "rate", F(1, 2), describe)
    assert over.holds is True
    assert "over the target of 0.03" in over.summary


def test_margin_loosens_a_negative_goal_the_same_way() -> None:
    rule = target(margin_percent="10")
    outcome = check_pacing(rule, F(-27), None, F(-100), HIGHER, "flow", F(1, 4), describe)
    assert outcome.bound == -110 and outcome.observed == -108 and outcome.holds is False


def test_pacing_without_a_goal_or_a_value_decides_nothing() -> None:
    no_goal = check_pacing(target(), F(40), None, None, HIGHER, "flow", F(1, 4), describe)
    assert no_goal.holds is None and no_goal.summary == "There is no target for this period."
    no_value = check_pacing(target(), None, None, F(200), HIGHER, "flow", F(1, 4), describe)
    assert no_value.holds is None


def test_pacing_too_early_in_the_period_decides_nothing() -> None:
    early = check_pacing(target(), F(1), None, F(200), HIGHER, "flow", F(1, 11), describe)
    assert early.holds is None
    assert early.summary.startswith("Too early to judge: 9.09% of the period has gone")
    judged = check_pacing(target(), F(1), None, F(200), HIGHER, "flow", MIN_ELAPSED, describe)
    assert judged.holds is True and judged.observed == 10


def test_a_missed_target() -> None:
    missed = check_missed(F(199), F(200), HIGHER, describe)
    assert missed.holds is True and (missed.observed, missed.bound) == (199, 200)
    assert missed.summary == "The period ended at 199.00, short of the target of 200.00."
    met = check_missed(F(200), F(200), HIGHER, describe)
    assert met.holds is False and "meeting the target" in met.summary
    assert check_missed(F("0.0301"), F("0.03"), LOWER, describe).holds is True
    assert check_missed(F("0.03"), F("0.03"), LOWER, describe).holds is False


def test_missed_without_a_goal_or_a_value_decides_nothing() -> None:
    assert check_missed(F(1), None, HIGHER, describe).holds is None
    assert check_missed(None, F(1), HIGHER, describe).holds is None


def test_which_checks_a_target_condition_asks_for() -> None:
    assert (target(check="pacing").checks_pacing, target(check="pacing").checks_missed) == (
        True,
        False,
    )
    assert (target(check="missed").checks_pacing, target(check="missed").checks_missed) == (
        False,
        True,
    )
