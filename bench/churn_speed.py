"""Churn risk on the demo company: training on a time split (once; the figures the issue
asks for beside the weighted score) and the speed of scoring every paying customer
(features, probabilities and factors in words), median of several runs.

Run on a database holding the demo company, e.g. after
`execmetrics demo --customers 100000 --months 36 --seed 7 --end 2026-11 --db sqlite:///demo.db`:
`.venv/bin/python bench/churn_speed.py --db sqlite:///demo.db --as-of 2026-12-01`.
stdout carries the Markdown tables.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import date

from execmetrics.analytics.churn import score_customers, train_churn_model  # type: ignore[import-untyped, unused-ignore]
from execmetrics.analytics.churn_features import churn_features  # type: ignore[import-untyped, unused-ignore]
from execmetrics.analytics.churn_store import latest_model, save_model  # type: ignore[import-untyped, unused-ignore]
from execmetrics.settings_store import reporting_currency  # type: ignore[import-untyped, unused-ignore]
from execmetrics.store.database import open_database  # type: ignore[import-untyped, unused-ignore]
from execmetrics.timeutil import now_micros  # type: ignore[import-untyped, unused-ignore]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--stored", action="store_true", help="score with the model an earlier run stored"
    )
    arguments = parser.parse_args(argv)
    engine = open_database(arguments.db)
    with engine.begin() as connection:
        started = time.perf_counter()
        stored = latest_model(connection) if arguments.stored else None
        if stored is None:
            model = train_churn_model(connection, arguments.as_of)
            save_model(connection, model, now_micros())
        else:
            model = stored.model
        trained = time.perf_counter() - started
        split = model.evaluation["split"]
        how = " (stored before)" if stored else ""
        print(f"training: {trained:.1f} s{how}, {len(split['snapshots'])} snapshots, "
              f"{split['train_rows']:,} training rows ({split['train_churned']:,} churned), "
              f"test snapshot {split['test_snapshot']}: {split['test_rows']:,} rows "
              f"({split['test_churned']:,} churned); chosen: {model.method}")  # fmt: skip
        print()
        print("| method | ROC AUC | PR AUC | Brier |")
        print("|---|---|---|---|")
        for name, scores in model.evaluation.get("test", {}).items():
            print(f"| {name} | {scores['roc_auc']:.3f} | {scores['pr_auc']:.3f} "
                  f"| {scores['brier']:.4f} |")  # fmt: skip
        currency = reporting_currency(connection)
        feature_times, score_times = [], []
        customers = 0
        for _ in range(arguments.runs):
            started = time.perf_counter()
            churn_features(connection, arguments.as_of)
            feature_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            risk = score_customers(connection, model, arguments.as_of, currency)
            score_times.append(time.perf_counter() - started)
            customers = len(risk.ids)
            print(f"features {feature_times[-1]:.1f} s, scores with features and factors "
                  f"{score_times[-1]:.1f} s", file=sys.stderr)  # fmt: skip
    print()
    print(f"| step ({customers:,} paying customers) | median time | runs |")
    print("|---|---|---|")
    for label, times in (("features alone", feature_times),
                         ("features, scores and factors", score_times)):  # fmt: skip
        print(f"| {label} | {statistics.median(times):.1f} s "
              f"| {', '.join(f'{t:.1f}' for t in times)} s |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
