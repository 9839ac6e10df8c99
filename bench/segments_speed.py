"""Speed of customer segmentation on 100,000 synthetic customers.

Five behaviour features (MRR, tenure, logins, feature breadth, tickets) drawn around five
customer profiles with a seed; `segment_customers` with the default k (5) and with k chosen
by silhouette from 2 to 8. Run with `.venv/bin/python bench/segments_speed.py`; stdout
carries the Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence

import numpy as np

from execmetrics.analytics.feature_table import FeatureTable  # type: ignore[import-untyped, unused-ignore]
from execmetrics.analytics.segments import segment_customers  # type: ignore[import-untyped, unused-ignore]

PROFILES = {  # share, then the centre of each feature
    "share": [0.35, 0.25, 0.20, 0.12, 0.08],
    "mrr": [3_000, 9_000, 15_000, 4_000, 30_000],
    "tenure_days": [400, 900, 60, 700, 1_200],
    "logins_30d": [20, 45, 10, 2, 80],
    "feature_breadth": [4, 8, 3, 1, 12],
    "tickets_90d": [0.5, 1, 2, 4, 1.5],
}


def synthetic(customers: int, seed: int) -> FeatureTable:
    rng = np.random.default_rng(seed)
    kinds = rng.choice(len(PROFILES["share"]), customers, p=PROFILES["share"])
    numeric = {
        name: np.maximum(0.0, rng.normal(np.array(centres)[kinds], np.array(centres)[kinds] * 0.3))
        for name, centres in PROFILES.items()
        if name != "share"
    }
    return FeatureTable([f"c{i}" for i in range(customers)], numeric, {}, None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args(argv)
    table = synthetic(arguments.customers, arguments.seed)
    print("| run | median time | k | silhouette |")
    print("|---|---|---|---|")
    for label, k in (("default k (5)", 5), ("k chosen by silhouette, 2 to 8", None)):
        timings, result = [], None
        for _ in range(arguments.repeat):
            started = time.perf_counter()
            result = segment_customers(table, k, seed=0)
            timings.append(time.perf_counter() - started)
        assert result is not None
        print(f"| {label} | {statistics.median(timings):.2f} s | {result.k} "
              f"| {result.silhouette:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
