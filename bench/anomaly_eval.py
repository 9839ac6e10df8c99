"""The anomaly detectors on the Numenta Anomaly Benchmark (NAB v1.0), scored by its rules.

Every series of ../shared/data/nab is run through `execmetrics.analytics.anomaly.detect`
point by point, each point judged from the points before it only. A detector's NAB score
for a point is the size of its score where it could flag (for the robust detector: a new high
of the recent past) and 0 elsewhere; as NAB's rules have it, one threshold on that score is
tuned for the whole corpus and profile, and the result is normalised so that detecting
nothing scores 0 and detecting every window at its start scores 100 (bench/nab.py). The
season is a day of points when a series spans four days or more.

Run with `make bench-anomaly` or `.venv/bin/python bench/anomaly_eval.py --help`. stdout
carries the Markdown table; --out the raw figures. The exit status is 1 when the robust
detector does not beat the published Windowed Gaussian score (39.6).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from execmetrics.analytics.anomaly import (  # type: ignore[import-untyped, unused-ignore]
    DEFAULT_SENSITIVITY,
    DETECTORS,
    detect,
)
from nab import PROFILES, LabelledFile, best_threshold, load_corpus, normalised, raw_score

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NAB = ROOT.parent / "shared" / "data" / "nab"
DEFAULT_OUT = ROOT / "bench" / "results" / "anomaly_eval.json"
WINDOWED_GAUSSIAN = 39.6  # NAB v1.0 scoreboard, standard profile
TWITTER_ADVEC = 47.1
SECONDS_PER_DAY = 86_400
MIN_SEASON_DAYS = 4


@dataclass(frozen=True)
class DetectorResult:
    method: str
    profile: str
    threshold: float
    score: float  # normalised, at the tuned threshold
    score_at_default: float  # normalised, at the detector's default sensitivity
    true_positives: int
    false_positives: int
    false_negatives: int
    seconds: float  # to run the detector over the whole corpus


def season_length(file: LabelledFile) -> int:
    """Points per day when the series spans MIN_SEASON_DAYS days or more; else none."""
    seconds = np.array([at.timestamp() for at in file.timestamps])
    step = float(np.median(np.diff(seconds)))
    points = round(SECONDS_PER_DAY / step)
    spans_days = len(seconds) * step / SECONDS_PER_DAY
    return points if spans_days >= MIN_SEASON_DAYS and points >= 2 else 1


def nab_scores(file: LabelledFile, method: str) -> np.ndarray:
    detection = detect(file.values, season_length(file), method, sensitivity=1e-9)
    # With the smallest sensitivity every point that may flag does: its score is its size.
    return np.where(detection.flag, np.abs(np.nan_to_num(detection.score)), 0.0)


def evaluate(files: Sequence[LabelledFile], method: str, profile_name: str) -> DetectorResult:
    profile = PROFILES[profile_name]
    started = time.perf_counter()
    scores = {file.name: nab_scores(file, method) for file in files}
    seconds = time.perf_counter() - started
    sweep = best_threshold(files, scores, profile)
    at_default = raw_score(files, scores, DEFAULT_SENSITIVITY[method], profile)
    return DetectorResult(
        method=method,
        profile=profile_name,
        threshold=sweep.threshold,
        score=normalised(files, sweep.raw, profile),
        score_at_default=normalised(files, at_default, profile),
        true_positives=sweep.true_positives,
        false_positives=sweep.false_positives,
        false_negatives=sweep.false_negatives,
        seconds=seconds,
    )


def table(results: Sequence[DetectorResult], files: int) -> str:
    lines = [
        f"| detector ({files} series) | NAB score, {results[0].profile} profile | tuned threshold "
        "| score at the default sensitivity | windows found / missed | false positives | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.method} | {r.score:.1f} | {r.threshold:.3f} | {r.score_at_default:.1f} "
            f"| {r.true_positives} / {r.false_negatives} | {r.false_positives} "
            f"| {r.seconds:.1f} s |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nab", type=Path, default=DEFAULT_NAB, help="the NAB folder")
    parser.add_argument(
        "--files", default=None, help="comma-separated series (data/ relative), default all"
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="standard")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    arguments = parser.parse_args(argv)
    names = arguments.files.split(",") if arguments.files else None
    files = load_corpus(arguments.nab, names)
    results = [evaluate(files, method, arguments.profile) for method in DETECTORS]
    print(table(results, len(files)))
    robust = next(r for r in results if r.method == "robust_seasonal")
    met = robust.score > WINDOWED_GAUSSIAN
    if not met:
        print(
            f"criterion not met: the robust detector scores {robust.score:.1f}, not above the "
            f"Windowed Gaussian's {WINDOWED_GAUSSIAN}",
            file=sys.stderr,
        )
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "files": [file.name for file in files],
        "results": [asdict(r) for r in results],
        "published": {"windowed_gaussian": WINDOWED_GAUSSIAN, "twitter_advec": TWITTER_ADVEC},
        "criterion_met": met,
    }
    arguments.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
