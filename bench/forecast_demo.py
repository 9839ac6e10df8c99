"""Speed of one forecast of a revenue series of an ingested company, as the command and the
server compute it.

On the database --db (with --role, on PostgreSQL, as that role under row-level security:
connect as execmetrics_app), times, each the median of --repeat runs:

- the series read from the database (`stored_series`: one metrics computation over the
  ledger), as `execmetrics forecast` reads it;
- the movement ledger read into memory (`DocumentCache.current_ledger`), as a server process
  does once per data version, and the series computed from it, as the server reads it;
- the forecast with its backtest (`forecast_of`), a series' first request;
- the same forecast from the document cache (`cached_forecast`), every later request for
  the same series and horizon; checked equal to the computed one.

Run with `make bench-forecast-demo` (the 100,000-customer demo company, built once into
var/) or `.venv/bin/python bench/forecast_demo.py --help`. stdout carries the Markdown table.
The exit status is 1 when reading the series from the database and forecasting it take 2 s
or more (docs/benchmarks.md) or the cached forecast differs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from execmetrics.analytics.metric_series import METRIC_SERIES, stored_series  # type: ignore[import-untyped, unused-ignore]
from execmetrics.analytics.service import cached_forecast, forecast_of  # type: ignore[import-untyped, unused-ignore]
from execmetrics.metrics.cache import DocumentCache  # type: ignore[import-untyped, unused-ignore]
from execmetrics.store.database import open_database  # type: ignore[import-untyped, unused-ignore]
from execmetrics.store.roles import as_role  # type: ignore[import-untyped, unused-ignore]
from revenue_engine import timed

TARGET_SECONDS = 2.0


def median_timed(work: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The median seconds of `repeat` runs of `work`, and its last result."""
    runs = [timed(work) for _ in range(repeat)]
    return statistics.median(seconds for seconds, _ in runs), runs[-1][1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="database URL of an ingested company")
    parser.add_argument("--role", default=None, help="PostgreSQL: act as this role (analyst)")
    parser.add_argument("--series", default="mrr", choices=sorted(METRIC_SERIES))
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args(argv)
    repeat, horizon = max(1, arguments.repeat), arguments.horizon
    today = datetime.now(UTC).date()
    with open_database(arguments.db).connect() as connection:
        as_role(connection, arguments.role)
        from_database, named = median_timed(
            lambda: stored_series(connection, arguments.series, today), repeat
        )
        cache = DocumentCache()
        read_ledger, _ = median_timed(lambda: cache.current_ledger(connection), 1)
        from_ledger, kept = median_timed(
            lambda: stored_series(
                connection, arguments.series, today, ledger=lambda: cache.current_ledger(connection)
            ),
            repeat,
        )
        fitted, document = median_timed(lambda: forecast_of(named, horizon), repeat)
        cached_forecast(cache, kept, horizon)
        served, cached = median_timed(lambda: cached_forecast(cache, kept, horizon), repeat)
    values = named.series.values
    rows = [
        (f"{arguments.series} series from the database (`stored_series`), {len(values)} months",
         from_database),
        ("movement ledger read into memory (`DocumentCache.current_ledger`), once per data "
         "version", read_ledger),
        ("series from the ledger in memory (the server)", from_ledger),
        (f"forecast {horizon} months ahead with its backtest (`forecast_of`); chosen: "
         f"{document['model']}, backtest MASE {document['backtest']['mase']} against "
         f"{document['backtest']['baseline_mase']}", fitted),
        ("the same forecast from the document cache (`cached_forecast`)", served),
    ]  # fmt: skip
    print("| measurement | median |\n|---|---|")
    for label, seconds in rows:
        shown = f"{seconds * 1e6:.0f} µs" if seconds < 0.001 else f"{seconds * 1000:.1f} ms"
        print(f"| {label} | {shown} |")
    problems = []
    if kept.series != named.series:
        problems.append("the series from the ledger in memory differs from the database's")
    if cached != document:
        problems.append("the cached forecast differs from the computed one")
    if from_database + fitted >= TARGET_SECONDS:
        problems.append(f"series and forecast took {from_database + fitted:.2f} s")
    for problem in problems:
        print(f"criterion not met: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
