"""Cohorts (definition 8) through compute_cohorts and `execmetrics cohorts --format json`."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from tests.builders import cancel, change, cohorts, ingest, start
from typer.testing import CliRunner

from execmetrics.cli import app
from execmetrics.store.database import open_database

D = Decimal

COHORT_KEYS = {
    "cohort",
    "offset",
    "customers",
    "retained",
    "logo_retention",
    "mrr",
    "new_mrr",
    "revenue_retention",
    "ltv",
}


def cohort_events() -> list[dict[str, Any]]:
    """January cohort: a 10000 (expands to 20000 in March), b 5000 (churns in March, back at 6000
    in April). February cohort: c, whose trial started in January and ends in February, 8000;
    d 3000 from 00:00 on 1 February, contracting to 1000 in April. z paid before --from."""
    return [
        start("a1", "a", "a-s", "2024-01-05T00:00:00Z", 10000),
        change("a2", "a", "a-s", "2024-03-05T00:00:00Z", 20000),
        start("b1", "b", "b-s", "2024-01-20T00:00:00Z", 5000),
        cancel("b2", "b", "b-s", "2024-03-03T00:00:00Z"),
        start("b3", "b", "b-s", "2024-04-10T00:00:00Z", 6000),
        start("c1", "c", "c-s", "2024-01-10T00:00:00Z", 8000, trial_ends_at="2024-02-10T00:00:00Z"),
        start("d1", "d", "d-s", "2024-02-01T00:00:00Z", 3000),
        change("d2", "d", "d-s", "2024-04-15T00:00:00Z", 1000),
        start("z1", "z", "z-s", "2023-12-15T00:00:00Z", 99999),
        change("z2", "z", "z-s", "2024-02-15T00:00:00Z", 1),
    ]


def as_tuples(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            r["cohort"],
            r["offset"],
            r["customers"],
            r["retained"],
            r["logo_retention"],
            r["mrr"],
            r["new_mrr"],
            r["revenue_retention"],
            r["ltv"],
        )
        for r in rows
    ]


# ltv: the cohort's month-end MRR so far per cohort customer (15000 / 2, then + 15000 / 2, ...).
EXPECTED = [
    ("2024-01", 0, 2, 2, D("1"), 15000, 15000, D("1"), 7500),
    ("2024-01", 1, 2, 2, D("1"), 15000, 15000, D("1"), 15000),
    ("2024-01", 2, 2, 1, D("0.5"), 20000, 15000, D("1.333333"), 25000),
    ("2024-01", 3, 2, 2, D("1"), 26000, 15000, D("1.733333"), 38000),
    ("2024-02", 0, 2, 2, D("1"), 11000, 11000, D("1"), 5500),
    ("2024-02", 1, 2, 2, D("1"), 11000, 11000, D("1"), 11000),
    ("2024-02", 2, 2, 2, D("1"), 9000, 11000, D("0.818182"), 15500),
    ("2024-03", 0, 0, 0, None, 0, 0, None, None),
    ("2024-03", 1, 0, 0, None, 0, 0, None, None),
    ("2024-04", 0, 0, 0, None, 0, 0, None, None),
]


def test_cohort_retention_by_hand(engine: Engine) -> None:
    ingest(engine, events=cohort_events())
    rows = cohorts(engine, "2024-01", "2024-04")
    assert as_tuples(rows) == EXPECTED


def test_cohort_is_the_period_of_the_first_new_movement_not_the_trial_start(
    engine: Engine,
) -> None:
    ingest(
        engine,
        events=[
            start(
                "t1", "t", "t-s", "2024-01-25T00:00:00Z", 4000, trial_ends_at="2024-02-08T00:00:00Z"
            ),
        ],
    )
    rows = {(r["cohort"], r["offset"]): r for r in cohorts(engine, "2024-01", "2024-02")}
    assert rows[("2024-01", 0)]["customers"] == 0
    assert rows[("2024-01", 1)]["retained"] == 0
    assert rows[("2024-02", 0)]["customers"] == 1
    assert rows[("2024-02", 0)]["new_mrr"] == 4000


def test_cohorts_in_a_time_zone(engine: Engine) -> None:
    ingest(engine, events=[start("a", "a", "a-s", "2024-03-31T23:30:00Z", 1000)])
    london = cohorts(engine, "2024-03", "2024-04", tz="Europe/London")
    assert [(r["cohort"], r["offset"], r["customers"]) for r in london] == [
        ("2024-03", 0, 0),
        ("2024-03", 1, 0),
        ("2024-04", 0, 1),
    ]
    utc = cohorts(engine, "2024-03", "2024-04")
    assert [(r["cohort"], r["offset"], r["customers"]) for r in utc] == [
        ("2024-03", 0, 1),
        ("2024-03", 1, 1),
        ("2024-04", 0, 0),
    ]


def test_cohorts_json_through_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cohorts.db'}"
    engine = open_database(url)
    ingest(engine, events=cohort_events())
    engine.dispose()
    result = CliRunner().invoke(
        app, ["cohorts", "--from", "2024-01", "--to", "2024-04", "--format", "json", "--db", url]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"currency", "timezone", "interval", "rows"}
    assert (document["currency"], document["timezone"], document["interval"]) == (
        "GBP",
        "UTC",
        "month",
    )
    for row in document["rows"]:
        assert set(row) == COHORT_KEYS
        for name in ("offset", "customers", "retained", "mrr", "new_mrr"):
            assert type(row[name]) is int, name
        for name in ("logo_retention", "revenue_retention"):
            assert row[name] is None or type(row[name]) in (int, float), name
    decoded = [
        tuple(D(str(v)) if isinstance(v, float) else v for v in row)
        for row in as_tuples(document["rows"])
    ]
    assert decoded == EXPECTED


def test_quarterly_ltv_counts_three_months_per_quarter(engine: Engine) -> None:
    ingest(engine, events=cohort_events())
    rows = cohorts(engine, "2024-Q1", "2024-Q2", interval="quarter")
    first = [
        (r["offset"], r["customers"], r["mrr"], r["ltv"]) for r in rows if r["cohort"] == "2024-Q1"
    ]
    # a 20000, b gone, c 8000, d 3000 at the end of Q1; b back at 6000, d at 1000 by June.
    assert first == [(0, 4, 31000, 31000 * 3 // 4), (1, 4, 35000, (31000 + 35000) * 3 // 4)]
