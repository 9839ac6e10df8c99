"""Forecast accuracy on public monthly seasonal series, against the seasonal naive forecast.

Each series ships inside a PyPI package: AirPassengers and wineind in pmdarima, El Nino sea
surface temperatures in statsmodels. The last 12 months are held out; `forecast_series` sees
the rest, chooses its model by its own rolling-origin backtest, and forecasts 12 months. The
held-out months then give the chosen model's MASE (scaled by the in-sample error of the
seasonal naive forecast on the training part, as in M4), the seasonal naive forecast's MASE,
and how many held-out values fall inside the 80% and 95% intervals.

Run with `make bench-forecast` or `.venv/bin/python bench/forecast_eval.py --help`. stdout
carries the Markdown table; --out the raw figures. The exit status is 1 when a criterion of
docs/forecasting.md fails: the chosen model's MASE below the seasonal naive one's on every
series, and the 95% intervals covering at least 85% of the held-out values of all series.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from execmetrics.analytics.forecast import forecast_series  # type: ignore[import-untyped, unused-ignore]
from execmetrics.analytics.series import TimeSeries  # type: ignore[import-untyped, unused-ignore]
from execmetrics.metrics.periods import add_months  # type: ignore[import-untyped, unused-ignore]

HOLD_OUT = 12
SEASON = 12
COVERAGE_TARGET = 0.85
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "forecast_eval.json"


def air_passengers() -> list[float]:
    from pmdarima.datasets import load_airpassengers  # type: ignore[import-untyped]

    return [float(v) for v in load_airpassengers()]


def wineind() -> list[float]:
    from pmdarima.datasets import load_wineind

    return [float(v) for v in load_wineind()]


def elnino() -> list[float]:
    import statsmodels.api as sm  # type: ignore[import-untyped]

    frame = sm.datasets.elnino.load_pandas().data
    return [float(v) for v in frame.iloc[:, 1:].to_numpy().ravel()]


@dataclass(frozen=True)
class Source:
    name: str
    package: str
    first_month: date
    load: Callable[[], list[float]]


SOURCES = (
    Source("AirPassengers", "pmdarima", date(1949, 1, 1), air_passengers),
    Source("wineind", "pmdarima", date(1980, 1, 1), wineind),
    Source("elnino", "statsmodels", date(1950, 1, 1), elnino),
)


@dataclass(frozen=True)
class Result:
    series: str
    package: str
    values: int
    model: str
    backtest_mase: float | None
    baseline_backtest_mase: float | None
    mase: float
    seasonal_naive_mase: float
    covered_80: int
    covered_95: int
    held_out: int
    seconds: float  # median over --repeat runs

    @property
    def beats_baseline(self) -> bool:
        return self.mase < self.seasonal_naive_mase


def evaluate(source: Source, repeat: int) -> Result:
    values = source.load()
    train, test = values[:-HOLD_OUT], np.asarray(values[-HOLD_OUT:])
    series = TimeSeries(
        "month", tuple(add_months(source.first_month, i) for i in range(len(train))), tuple(train)
    )
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        forecast = forecast_series(series, HOLD_OUT)
        timings.append(time.perf_counter() - started)
    history = np.asarray(train)
    scale = float(np.mean(np.abs(history[SEASON:] - history[:-SEASON])))
    mean = np.asarray([point.mean for point in forecast.points])
    naive = history[-SEASON:][:HOLD_OUT]

    def covered(level: int) -> int:
        low = np.asarray([point.bounds[level][0] for point in forecast.points])
        high = np.asarray([point.bounds[level][1] for point in forecast.points])
        return int(np.sum((test >= low) & (test <= high)))

    return Result(
        series=source.name,
        package=source.package,
        values=len(values),
        model=forecast.model,
        backtest_mase=forecast.backtest_mase,
        baseline_backtest_mase=forecast.baseline_mase,
        mase=float(np.mean(np.abs(test - mean))) / scale,
        seasonal_naive_mase=float(np.mean(np.abs(test - naive))) / scale,
        covered_80=covered(80),
        covered_95=covered(95),
        held_out=HOLD_OUT,
        seconds=statistics.median(timings),
    )


def table(results: Sequence[Result]) -> str:
    lines = [
        "| series (package, values) | chosen model | backtest MASE, chosen / seasonal naive "
        "| held-out MASE, chosen | held-out MASE, seasonal naive | inside 80% | inside 95% "
        "| time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.series} ({r.package}, {r.values}) | {r.model} "
            f"| {_figure(r.backtest_mase)} / {_figure(r.baseline_backtest_mase)} "
            f"| {r.mase:.3f} | {r.seasonal_naive_mase:.3f} "
            f"| {r.covered_80} of {r.held_out} | {r.covered_95} of {r.held_out} "
            f"| {r.seconds:.2f} s |"
        )
    held_out = sum(r.held_out for r in results)
    inside = sum(r.covered_95 for r in results)
    mean = statistics.mean(r.mase for r in results)
    naive = statistics.mean(r.seasonal_naive_mase for r in results)
    lines.append(
        f"| all {len(results)} | | | {mean:.3f} (mean) | {naive:.3f} (mean) "
        f"| {sum(r.covered_80 for r in results)} of {held_out} "
        f"| {inside} of {held_out} ({inside / held_out:.0%}) | |"
    )
    return "\n".join(lines)


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def failures(results: Sequence[Result]) -> list[str]:
    found = [
        f"{r.series}: the chosen model's MASE {r.mase:.3f} is not below the seasonal naive "
        f"{r.seasonal_naive_mase:.3f}"
        for r in results
        if not r.beats_baseline
    ]
    held_out = sum(r.held_out for r in results)
    inside = sum(r.covered_95 for r in results)
    if inside < COVERAGE_TARGET * held_out:
        found.append(
            f"the 95% intervals hold {inside} of {held_out} held-out values, "
            f"fewer than {COVERAGE_TARGET:.0%}"
        )
    return found


def run(names: Sequence[str], repeat: int) -> list[Result]:
    return [evaluate(source, repeat) for source in SOURCES if source.name in names]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--series",
        default=",".join(source.name for source in SOURCES),
        help="comma-separated names of the series to evaluate",
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per series")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    arguments = parser.parse_args(argv)
    names = arguments.series.split(",")
    unknown = set(names) - {source.name for source in SOURCES}
    if unknown:
        parser.error(f"--series: unknown {', '.join(sorted(unknown))}")
    results = run(names, max(1, arguments.repeat))
    print(table(results))
    problems = failures(results)
    for problem in problems:
        print(f"criterion not met: {problem}", file=sys.stderr)
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "results": [asdict(r) | {"beats_baseline": r.beats_baseline} for r in results],
        "criteria_met": not problems,
    }
    arguments.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
