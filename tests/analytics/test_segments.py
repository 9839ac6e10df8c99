"""Customer segments: k-means over log-scaled, standardised features, numbered by size,
named by what stands out, the same on every run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from execmetrics.analytics.feature_table import FeatureTable
from execmetrics.analytics.segments import SegmentsError, segment_customers, segment_name
from execmetrics.cli import app as cli

PROFILES = {  # mrr, logins, tickets of three kinds of customer
    "big": (30_000.0, 80.0, 1.0),
    "quiet": (3_000.0, 2.0, 0.2),
    "troubled": (5_000.0, 15.0, 6.0),
}


def customers(sizes: dict[str, int], seed: int = 2) -> FeatureTable:
    rng = np.random.default_rng(seed)
    kinds = [kind for kind, size in sizes.items() for _ in range(size)]
    columns = {"mrr": [], "logins": [], "tickets": []}
    for kind in kinds:
        for name, centre in zip(columns, PROFILES[kind], strict=True):
            columns[name].append(max(0.0, rng.normal(centre, centre * 0.15)))
    return FeatureTable(
        ids=[f"{kind}-{i:04d}" for i, kind in enumerate(kinds)],
        numeric={name: np.array(values) for name, values in columns.items()},
        categorical={"plan": ["pro"] * len(kinds)},
        label=None,
    )


def test_three_kinds_of_customer_are_found_numbered_by_size_and_named() -> None:
    table = customers({"quiet": 300, "big": 100, "troubled": 200})
    result = segment_customers(table, 3)
    assert (result.k, result.chosen_by, result.rows) == (3, "default", 600)
    assert [s.size for s in result.segments] == [300, 200, 100]
    # Every member of a segment is of one kind: the segments are the kinds.
    for found in result.segments:
        kinds = {
            row_id.split("-")[0] for row_id, n in result.assignments.items() if n == found.number
        }
        assert len(kinds) == 1
    quiet, troubled, big = result.segments
    assert "low logins" in quiet.name
    assert "high tickets" in troubled.name
    assert "high mrr" in big.name
    assert big.centre["mrr"] == pytest.approx(30_000, rel=0.1)
    assert big.mrr == pytest.approx(
        float(table.numeric["mrr"][table.numeric["mrr"] > 15_000].sum())
    )
    assert result.ignored == ["plan"] and result.features == ["mrr", "logins", "tickets"]
    assert result.silhouette > 0.5


def test_the_same_data_and_seed_give_the_same_segments() -> None:
    table = customers({"quiet": 150, "big": 80, "troubled": 120}, seed=5)
    first, second = segment_customers(table, 4, seed=1), segment_customers(table, 4, seed=1)
    assert first == second


def test_k_is_chosen_by_silhouette_when_asked() -> None:
    result = segment_customers(customers({"quiet": 120, "big": 60, "troubled": 90}), None)
    assert result.chosen_by == "silhouette" and set(result.silhouettes) == set(range(2, 9))
    assert result.k == 3 == max(result.silhouettes, key=lambda k: result.silhouettes[k])


def test_names_say_what_stands_out_and_repeats_are_numbered() -> None:
    assert segment_name({"mrr": 1.2, "logins": -0.7, "tickets": 0.1}) == "high mrr, low logins"
    assert segment_name({"mrr": 0.2, "logins": -0.1}) == "typical"


def test_impossible_requests_are_refused() -> None:
    table = customers({"quiet": 5, "big": 5})
    with pytest.raises(SegmentsError, match="k: expected 2 to 9 for 10 rows, got 12"):
        segment_customers(table, 12)
    only_categories = FeatureTable(["a", "b"], {}, {"plan": ["x", "y"]}, None)
    with pytest.raises(SegmentsError, match="features: the table has no numeric feature columns"):
        segment_customers(only_categories, 2)


def test_the_command_writes_segments_and_assignments(tmp_path: Path) -> None:
    table = customers({"quiet": 60, "big": 20, "troubled": 40})
    path = tmp_path / "customers.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer", "mrr", "logins", "tickets"])
        for i, row_id in enumerate(table.ids):
            writer.writerow([row_id, *(table.numeric[n][i] for n in ("mrr", "logins", "tickets"))])
    out = tmp_path / "assigned.csv"
    result = CliRunner().invoke(
        cli, ["segments", "--features", str(path), "--id", "customer", "--k", "3",
              "--assignments", str(out), "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert (document["k"], document["chosen_by"]) == (3, "given")
    assert [s["size"] for s in document["segments"]] == [60, 40, 20]
    assigned = list(csv.DictReader(out.open()))
    assert len(assigned) == 120 and list(assigned[0]) == ["customer", "segment", "name"]
    names = {s["segment"]: s["name"] for s in document["segments"]}
    assert all(names[int(row["segment"])] == row["name"] for row in assigned)
    table_output = CliRunner().invoke(
        cli, ["segments", "--features", str(path), "--id", "customer"]
    )
    assert (
        table_output.exit_code == 0 and "5 segments of 120 rows (default k)" in table_output.output
    )
    both = CliRunner().invoke(
        cli, ["segments", "--features", str(path), "--id", "customer", "--k", "3", "--choose-k"]
    )
    assert both.exit_code == 2 and "give --k or --choose-k, not both" in both.output
    missing = CliRunner().invoke(cli, ["segments", "--features", str(path), "--id", "who"])
    assert missing.exit_code == 2 and "--id: no column named 'who'" in " ".join(
        missing.output.split()
    )
