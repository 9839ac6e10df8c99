"""The Numenta Anomaly Benchmark's scoring, written from its published rules
(../shared/data/README.md): labelled anomaly windows, a probation period at the start of each
file, detections weighted by a scaled sigmoid of where they fall, only the earliest detection
in a window counting, one threshold for the whole corpus, and scores normalised so that the
null detector (no detections) scores 0 and the perfect one 100.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
PROBATION_SHARE = 0.15
PROBATION_CAP_ROWS = 5000  # the probation is at most 15% of this many rows: 750


@dataclass(frozen=True)
class Profile:
    true_positive: float
    false_positive: float
    false_negative: float


PROFILES = {
    "standard": Profile(1.0, 0.11, 1.0),
    "reward_low_FP_rate": Profile(1.0, 0.22, 1.0),
    "reward_low_FN_rate": Profile(1.0, 0.11, 2.0),
}


@dataclass(frozen=True)
class LabelledFile:
    """One series with its windows as row ranges [first, last], inclusive."""

    name: str
    timestamps: list[datetime]
    values: Floats
    windows: list[tuple[int, int]]

    @property
    def probation(self) -> int:
        rows = len(self.values)
        return int(min(math.floor(PROBATION_SHARE * rows), PROBATION_SHARE * PROBATION_CAP_ROWS))


def scaled_sigmoid(position: float) -> float:
    """NAB's weight of a detection at a relative position: about 1 at a window's start,
    0 at its end, falling to -1 after it (and -1 from three window widths on)."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


@dataclass(frozen=True)
class RowWeights:
    """Per row: the window it is in (-1: none), the weight of a detection there, and whether
    it may be scored at all (not in the probation period)."""

    window: npt.NDArray[np.int_]
    weight: Floats
    scored: npt.NDArray[np.bool_]


def row_weights(file: LabelledFile) -> RowWeights:
    rows = len(file.values)
    window = np.full(rows, -1, dtype=int)
    weight = np.full(rows, -1.0)  # a false positive before any window
    for number, (first, last) in enumerate(file.windows):
        width = last - first + 1
        for row in range(first, last + 1):
            window[row] = number
            weight[row] = scaled_sigmoid(-(last - row + 1) / width)
        following = file.windows[number + 1][0] if number + 1 < len(file.windows) else rows
        for row in range(last + 1, following):
            weight[row] = scaled_sigmoid(abs(last - row) / (width - 1)) if width > 1 else -1.0
    scored = np.arange(rows) >= file.probation
    return RowWeights(window, weight, scored)


@dataclass(frozen=True)
class Sweep:
    threshold: float
    raw: float  # the corpus's summed score at that threshold
    true_positives: int
    false_positives: int
    false_negatives: int


def best_threshold(
    files: Sequence[LabelledFile], scores: Mapping[str, Floats], profile: Profile
) -> Sweep:
    """The threshold on the detector's scores with the highest summed score over all files:
    every row scoring at or above it is a detection."""
    weights = {file.name: row_weights(file) for file in files}
    windows = sum(len(file.windows) for file in files)
    points = [
        (float(scores[file.name][row]), file.name, row)
        for file in files
        for row in np.flatnonzero(weights[file.name].scored)
        if np.isfinite(scores[file.name][row])
    ]
    points.sort(key=lambda point: -point[0])
    best_window: dict[tuple[str, int], float] = {}
    raw = -profile.false_negative * windows
    false_positives = 0
    best = Sweep(math.inf, raw, 0, 0, windows)
    for index, (score, name, row) in enumerate(points):
        found = weights[name]
        number = int(found.window[row])
        weight = float(found.weight[row])
        if number < 0:
            raw += profile.false_positive * weight
            false_positives += 1
        elif (name, number) not in best_window:
            best_window[(name, number)] = weight
            raw += profile.true_positive * weight + profile.false_negative
        elif weight > best_window[(name, number)]:
            raw += profile.true_positive * (weight - best_window[(name, number)])
            best_window[(name, number)] = weight
        tied = index + 1 < len(points) and points[index + 1][0] == score
        if not tied and raw > best.raw:
            hits = len(best_window)
            best = Sweep(score, raw, hits, false_positives, windows - hits)
    return best


def raw_score(
    files: Sequence[LabelledFile], scores: Mapping[str, Floats], threshold: float, profile: Profile
) -> float:
    """The summed score over all files when rows scoring at or above `threshold` are
    detections."""
    total = 0.0
    for file in files:
        found = row_weights(file)
        detected = found.scored & (np.nan_to_num(scores[file.name], nan=-np.inf) >= threshold)
        for number in range(len(file.windows)):
            hits = detected & (found.window == number)
            if hits.any():
                total += profile.true_positive * float(found.weight[hits].max())
            else:
                total -= profile.false_negative
        outside = detected & (found.window < 0)
        total += profile.false_positive * float(found.weight[outside].sum())
    return total


def normalised(files: Sequence[LabelledFile], raw: float, profile: Profile) -> float:
    """100 x (raw - null) / (perfect - null): the null detector detects nothing, the perfect
    one detects each window at its first scored row."""
    null = -profile.false_negative * sum(len(file.windows) for file in files)
    perfect = raw_score(files, perfect_scores(files), 0.5, profile)
    return 100.0 * (raw - null) / (perfect - null)


def perfect_scores(files: Iterable[LabelledFile]) -> dict[str, Floats]:
    found = {}
    for file in files:
        scores = np.zeros(len(file.values))
        for first, _ in file.windows:
            scores[max(first, file.probation)] = 1.0
        found[file.name] = scores
    return found


def load_corpus(root: Path, names: Sequence[str] | None = None) -> list[LabelledFile]:
    """The NAB files under `root` (data/**.csv, labels/combined_windows.json), by their
    names relative to data/ (all when `names` is None), in name order."""
    windows = json.loads((root / "labels" / "combined_windows.json").read_text())
    chosen = sorted(windows) if names is None else list(names)
    return [_load_file(root / "data" / name, name, windows[name]) for name in chosen]


def _load_file(path: Path, name: str, spans: list[list[str]]) -> LabelledFile:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    timestamps = [datetime.fromisoformat(row["timestamp"]) for row in rows]
    values = np.array([float(row["value"]) for row in rows])
    windows = []
    for start, end in spans:
        first_at, last_at = datetime.fromisoformat(start), datetime.fromisoformat(end)
        inside = [i for i, at in enumerate(timestamps) if first_at <= at <= last_at]
        if inside:
            windows.append((inside[0], inside[-1]))
    return LabelledFile(name, timestamps, values, windows)
