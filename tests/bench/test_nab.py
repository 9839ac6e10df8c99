"""NAB's scoring rules (bench/nab.py) on files small enough to score by hand."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest
from bench.nab import (
    PROFILES,
    LabelledFile,
    best_threshold,
    normalised,
    raw_score,
    row_weights,
    scaled_sigmoid,
)

STANDARD = PROFILES["standard"]
EARLY = 2 / (1 + math.exp(-5)) - 1  # a detection at a window's first row: 0.9866


def small_file(rows: int = 100, windows: tuple[tuple[int, int], ...] = ((50, 59),)) -> LabelledFile:
    start = datetime(2024, 1, 1)
    return LabelledFile(
        "small.csv",
        [start + timedelta(minutes=5 * i) for i in range(rows)],
        np.zeros(rows),
        list(windows),
    )


def detections(rows: int, at: dict[int, float]) -> dict[str, np.ndarray]:
    scores = np.zeros(rows)
    for row, score in at.items():
        scores[row] = score
    return {"small.csv": scores}


def test_the_scaled_sigmoid_rewards_early_and_punishes_late() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(EARLY)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1 / 3) == pytest.approx(2 / (1 + math.exp(5 / 3)) - 1)
    assert scaled_sigmoid(3.5) == -1.0


def test_rows_are_weighted_by_where_they_fall() -> None:
    weights = row_weights(small_file())
    assert small_file().probation == 15  # 15% of 100 rows
    assert not weights.scored[14] and weights.scored[15]
    assert weights.window[49] == -1 and weights.window[50] == 0 and weights.window[59] == 0
    assert weights.weight[20] == -1.0  # before any window
    assert weights.weight[50] == pytest.approx(EARLY)
    assert weights.weight[55] == pytest.approx(scaled_sigmoid(-0.5))
    assert weights.weight[62] == pytest.approx(scaled_sigmoid(3 / 9))


def test_only_the_earliest_detection_in_a_window_counts_and_probation_is_ignored() -> None:
    file = small_file()
    late_only = raw_score([file], detections(100, {55: 1.0}), 0.5, STANDARD)
    assert late_only == pytest.approx(scaled_sigmoid(-0.5))
    both = raw_score([file], detections(100, {50: 1.0, 55: 1.0, 10: 1.0}), 0.5, STANDARD)
    assert both == pytest.approx(EARLY)  # row 10 is in the probation period
    missed = raw_score([file], detections(100, {20: 1.0, 62: 1.0}), 0.5, STANDARD)
    assert missed == pytest.approx(-1.0 + 0.11 * (-1.0 + scaled_sigmoid(3 / 9)))


def test_the_threshold_is_swept_to_the_best_summed_score() -> None:
    file = small_file()
    scores = detections(100, {20: 0.95, 50: 0.9, 30: 0.5})
    sweep = best_threshold([file], scores, STANDARD)
    assert sweep.threshold == 0.9
    assert sweep.raw == pytest.approx(EARLY - 0.11)
    assert sweep.raw == pytest.approx(raw_score([file], scores, 0.9, STANDARD))
    assert (sweep.true_positives, sweep.false_positives, sweep.false_negatives) == (1, 1, 0)
    assert normalised([file], sweep.raw, STANDARD) == pytest.approx(
        100 * (EARLY - 0.11 + 1) / (EARLY + 1)
    )


def test_detecting_nothing_scores_0_and_every_window_at_its_start_100() -> None:
    file = small_file(200, ((40, 49), (120, 139)))
    assert normalised([file], -2.0, STANDARD) == 0.0
    perfect = raw_score([file], detections(200, {40: 1.0, 120: 1.0}), 0.5, STANDARD)
    assert normalised([file], perfect, STANDARD) == pytest.approx(100.0)
