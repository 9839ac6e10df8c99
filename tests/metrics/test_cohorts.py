"""Cohorts (definition 8) through compute_cohorts and `execmetrics cohorts --format json`."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from tests.builders import cancel, change, cohorts, ingest, start, use
from typer.testing import CliRunner

from execmetrics.cli import app
from execmetrics.metrics.cohorts import DAY_US, first_day_from
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
    "active",
    "activity_retention",
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
        # No activity is stored: activity retention is unknown, not 0.
        assert (row["active"], row["activity_retention"]) == (None, None)
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


def cohort_activity() -> list[dict[str, Any]]:
    """Activity of the cohort_events customers. a: January (twice on the 6th, two types, and
    the 20th), February and March. b: January, 20 March (after its churn on 3 March, while
    not paying) and April (paying again). c: 15 January (its trial, before its February
    cohort), 5 February (still in its trial). d: 29 February and 23:30 UTC on 30 April.
    z, of a cohort before --from, is the company's first activity, on 2 January."""
    return [
        use("u1", "a", "2024-01-06T09:00:00Z"),
        use("u2", "a", "2024-01-06T10:00:00Z", "gallery_upload", 3),
        use("u3", "a", "2024-01-20T09:00:00Z"),
        use("u4", "a", "2024-02-14T09:00:00Z"),
        use("u5", "a", "2024-03-15T09:00:00Z"),
        use("u6", "b", "2024-01-25T09:00:00Z"),
        use("u7", "b", "2024-03-20T09:00:00Z"),
        use("u8", "b", "2024-04-12T09:00:00Z"),
        use("u9", "c", "2024-01-15T09:00:00Z"),
        use("u10", "c", "2024-02-05T09:00:00Z", "invoice_sent"),
        use("u11", "d", "2024-02-29T12:00:00Z"),
        use("u12", "d", "2024-04-30T23:30:00Z"),
        use("u13", "z", "2024-01-02T09:00:00Z"),
    ]


def activity_of(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (r["cohort"], r["offset"], r["customers"], r["retained"], r["active"],
         r["activity_retention"])
        for r in rows
    ]  # fmt: skip


def test_activity_retention_by_hand(engine: Engine) -> None:
    ingest(engine, events=cohort_events(), activity=cohort_activity())
    rows = cohorts(engine, "2024-01", "2024-04")
    assert activity_of(rows) == [
        # a and b; a only (three events of a on two days count once); a and b, though only a
        # is paying at the end of March; b.
        ("2024-01", 0, 2, 2, 2, D("1")),
        ("2024-01", 1, 2, 2, 1, D("0.5")),
        ("2024-01", 2, 2, 1, 2, D("1")),
        ("2024-01", 3, 2, 2, 1, D("0.5")),
        # c (in its trial, before paying on 10 February) and d; nobody; d.
        ("2024-02", 0, 2, 2, 2, D("1")),
        ("2024-02", 1, 2, 2, 0, D("0")),
        ("2024-02", 2, 2, 2, 1, D("0.5")),
        # Empty cohorts: activity is measured, but there is no one to retain.
        ("2024-03", 0, 0, 0, 0, None),
        ("2024-03", 1, 0, 0, 0, None),
        ("2024-04", 0, 0, 0, 0, None),
    ]
    # The other fields are those of the cohorts without activity.
    assert as_tuples(rows) == EXPECTED


def test_quarterly_activity_retention(engine: Engine) -> None:
    ingest(engine, events=cohort_events(), activity=cohort_activity())
    rows = cohorts(engine, "2024-Q1", "2024-Q2", interval="quarter")
    assert activity_of(rows) == [
        ("2024-Q1", 0, 4, 3, 4, D("1")),  # a, b, c and d; b is not paying at the end of Q1
        ("2024-Q1", 1, 4, 4, 2, D("0.5")),  # b and d
        ("2024-Q2", 0, 0, 0, 0, None),
    ]


def test_activity_retention_is_null_without_any_activity(engine: Engine) -> None:
    ingest(engine, events=cohort_events())
    rows = cohorts(engine, "2024-01", "2024-04")
    assert {(r["active"], r["activity_retention"]) for r in rows} == {(None, None)}
    assert as_tuples(rows) == EXPECTED


def test_activity_retention_is_null_outside_the_stored_activity(engine: Engine) -> None:
    """The company's activity runs from 14 February (a) to 20 March (b): January and April
    have no activity data, so they are unknown, where February and March are measured."""
    activity = [
        use("u1", "a", "2024-02-14T09:00:00Z"),
        use("u2", "b", "2024-03-20T09:00:00Z"),
        use("u3", "z", "2024-03-01T09:00:00Z"),
    ]
    ingest(engine, events=cohort_events(), activity=activity)
    rows = cohorts(engine, "2024-01", "2024-04")
    assert activity_of(rows) == [
        ("2024-01", 0, 2, 2, None, None),
        ("2024-01", 1, 2, 2, 1, D("0.5")),
        ("2024-01", 2, 2, 1, 1, D("0.5")),
        ("2024-01", 3, 2, 2, None, None),
        ("2024-02", 0, 2, 2, 0, D("0")),
        ("2024-02", 1, 2, 2, 0, D("0")),
        ("2024-02", 2, 2, 2, None, None),
        ("2024-03", 0, 0, 0, 0, None),
        ("2024-03", 1, 0, 0, None, None),
        ("2024-04", 0, 0, 0, None, None),
    ]


def test_activity_before_the_first_measured_period_of_the_table_still_counts_as_data(
    engine: Engine,
) -> None:
    """Activity stored before --from (z, in December) makes January measured: a January with
    no activity of its cohorts is 0, not unknown."""
    activity = [
        use("u1", "z", "2023-12-20T09:00:00Z"),
        use("u2", "a", "2024-02-14T09:00:00Z"),
    ]
    ingest(engine, events=cohort_events(), activity=activity)
    rows = cohorts(engine, "2024-01", "2024-02")
    assert activity_of(rows) == [
        ("2024-01", 0, 2, 2, 0, D("0")),
        ("2024-01", 1, 2, 2, 1, D("0.5")),
        ("2024-02", 0, 2, 2, 0, D("0")),
    ]


def test_a_utc_day_counts_in_the_period_that_holds_its_midpoint(engine: Engine) -> None:
    """x joins the March cohort in every zone below and is active at 23:30 UTC on 31 March,
    the UTC day 31 March. y, of a cohort before --from, keeps activity stored in both months.
    In London (00:30 on 1 April, BST) and New York (19:30 on 31 March) the day counts in
    March, the period of its calendar date; in Auckland (UTC+13) 12:00 UTC on 31 March is
    already 1 April, so it counts in April."""
    ingest(
        engine,
        events=[
            start("x1", "x", "x-s", "2024-03-10T00:00:00Z", 1000),
            start("y1", "y", "y-s", "2024-02-01T00:00:00Z", 1000),
        ],
        activity=[
            use("u1", "x", "2024-03-31T23:30:00Z"),
            use("u2", "y", "2024-03-15T12:00:00Z"),
            use("u3", "y", "2024-04-15T12:00:00Z"),
        ],
    )
    for tz, march, april in [
        ("UTC", 1, 0),
        ("Europe/London", 1, 0),
        ("America/New_York", 1, 0),
        ("Pacific/Auckland", 0, 1),
    ]:
        rows = cohorts(engine, "2024-03", "2024-04", tz=tz)
        assert [(r["cohort"], r["offset"], r["customers"], r["active"]) for r in rows] == [
            ("2024-03", 0, 1, march),
            ("2024-03", 1, 1, april),
            ("2024-04", 0, 0, 0),
        ], tz


def test_first_day_from() -> None:
    half = DAY_US // 2
    assert first_day_from(0) == 0  # a period starting at midnight UTC starts with that day
    assert first_day_from(half) == 0  # the midpoint itself is inside
    assert first_day_from(half + 1) == 1
    assert first_day_from(-1) == 0
    assert first_day_from(-half) == -1
    assert first_day_from(-half - 1) == -1
    assert first_day_from(-half + 1) == 0


def test_cohorts_table_shows_activity_retention_as_a_percentage(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cohorts.db'}"
    engine = open_database(url)
    ingest(engine, events=cohort_events(), activity=cohort_activity())
    engine.dispose()
    result = CliRunner().invoke(
        app, ["cohorts", "--from", "2024-01", "--to", "2024-02", "--db", url]
    )
    assert result.exit_code == 0, result.output
    assert "Active" in result.stdout and "Activity retention" in result.stdout
    january = [
        line.split() for line in result.stdout.splitlines() if line.strip().startswith("2024-01")
    ]
    # (offset, active, activity retention): the last two columns.
    assert [(cells[1], cells[-2], cells[-1]) for cells in january] == [
        ("0", "2", "100.0%"),
        ("1", "1", "50.0%"),
    ]
