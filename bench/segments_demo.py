"""Speed of segmenting the demo company's paying customers from its database.

Times the two steps of `execmetrics segments` without `--features`: reading the behaviour
features of every paying customer as of a date (`behaviour_features`, which runs
`churn_features` on the database) and k-means with the canonical names
(`segment_customers`), with the default k (5) and with k chosen by silhouette from 2 to 8.
The target is k-means under 10 s on the 100,000-customer demo. Make the demo first, e.g.

    .venv/bin/execmetrics demo --customers 100000 --months 24 --db sqlite:////tmp/demo.db
    .venv/bin/python bench/segments_demo.py --db sqlite:////tmp/demo.db

stdout carries the Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import func, select

from execmetrics.analytics.company_segments import behaviour_features  # type: ignore[import-untyped, unused-ignore]
from execmetrics.analytics.segments import segment_customers  # type: ignore[import-untyped, unused-ignore]
from execmetrics.settings_store import reporting_currency  # type: ignore[import-untyped, unused-ignore]
from execmetrics.store.database import open_database  # type: ignore[import-untyped, unused-ignore]
from execmetrics.store.tables import activity_daily  # type: ignore[import-untyped, unused-ignore]

TARGET_SECONDS = 10.0


def day_after_activity(url: str) -> date:
    """The day after the newest stored activity: the demo's activity ends with its data."""
    engine = open_database(url)
    with engine.connect() as connection:
        newest = connection.execute(select(func.max(activity_daily.c.day))).scalar()
    engine.dispose()
    if newest is None:
        raise SystemExit(f"{url}: no activity stored; make the demo company first")
    return date(1970, 1, 1) + timedelta(days=int(newest) + 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="URL of the demo company's database")
    parser.add_argument("--as-of", type=date.fromisoformat, default=None,
                        help="default: the day after the newest activity")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args(argv)
    as_of = arguments.as_of or day_after_activity(arguments.db)
    engine = open_database(arguments.db)
    reads = []
    for _ in range(arguments.repeat):
        with engine.connect() as connection:
            started = time.perf_counter()
            table, _ = behaviour_features(connection, as_of)
            reads.append(time.perf_counter() - started)
            currency = reporting_currency(connection)
    engine.dispose()
    print(f"{len(table):,} paying customers as of {as_of}; medians of {arguments.repeat} runs\n")
    print("| step | median time | target | k | silhouette | names |")
    print("|---|---|---|---|---|---|")
    print(f"| features read | {statistics.median(reads):.2f} s | | | | |")
    for label, k in (("k-means, default k (5)", 5), ("k-means, k chosen by silhouette", None)):
        timings, result = [], None
        for _ in range(arguments.repeat):
            started = time.perf_counter()
            result = segment_customers(table, k, arguments.seed, canonical=True,
                                       currency=currency)  # fmt: skip
            timings.append(time.perf_counter() - started)
        assert result is not None
        median = statistics.median(timings)
        met = "met" if median < TARGET_SECONDS else "missed"
        names = ", ".join(f"{s.name} {s.size:,}" for s in result.segments)
        print(f"| {label} | {median:.2f} s | under {TARGET_SECONDS:.0f} s: {met} | {result.k} "
              f"| {result.silhouette:.3f} | {names} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
