"""`execmetrics metrics --format json|csv|table` (definition 7), through the CLI."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.metrics.scenarios import ingest_mixed
from typer.testing import CliRunner

from execmetrics.cli import app
from execmetrics.store.database import open_database

MONEY_FIELDS = (
    "mrr_start",
    "mrr_end",
    "new_mrr",
    "expansion_mrr",
    "reactivation_mrr",
    "contraction_mrr",
    "churned_mrr",
    "net_new_mrr",
    "arr",
    "arpa",
    "ltv",
    "cac",
)
COUNT_FIELDS = (
    "customers_start",
    "customers_end",
    "new_customers",
    "reactivated_customers",
    "churned_customers",
)
RATE_FIELDS = (
    "customer_churn_rate",
    "gross_mrr_churn_rate",
    "net_mrr_churn_rate",
    "grr",
    "nrr",
    "nrr_12m",
    "grr_12m",
    "quick_ratio",
    "mrr_growth",
    "mrr_growth_yoy",
    "ltv_to_cac",
    "cac_payback_months",
)
SPEC_FIELDS = {"period", "group", *MONEY_FIELDS, *COUNT_FIELDS, *RATE_FIELDS}


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    engine = open_database(url)
    ingest_mixed(engine)
    engine.dispose()
    return url


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def metrics_json(url: str, *extra: str) -> dict[str, Any]:
    result = run(
        "metrics", "--from", "2024-01", "--to", "2024-04", "--format", "json", "--db", url, *extra
    )
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_metrics_json_shape_and_types(database: str) -> None:
    document = metrics_json(database)
    assert set(document) == {"currency", "timezone", "interval", "rows"}
    assert (document["currency"], document["timezone"], document["interval"]) == (
        "GBP",
        "UTC",
        "month",
    )
    rows = document["rows"]
    assert [row["period"] for row in rows] == ["2024-01", "2024-02", "2024-03", "2024-04"]
    for row in rows:
        assert set(row) >= SPEC_FIELDS, SPEC_FIELDS - set(row)
        assert row["group"] is None
        for name in (*MONEY_FIELDS, *COUNT_FIELDS):
            assert row[name] is None or type(row[name]) is int, name
        for name in RATE_FIELDS:
            assert row[name] is None or type(row[name]) in (int, float), name
    jan = rows[0]
    assert (jan["mrr_start"], jan["mrr_end"], jan["arr"], jan["arpa"]) == (
        13000,
        30500,
        366000,
        10167,
    )
    assert jan["customer_churn_rate"] == 0.5
    assert jan["net_mrr_churn_rate"] == -0.307692
    assert jan["nrr"] == 1.307692
    assert jan["nrr_12m"] is None
    assert rows[3]["quick_ratio"] is None


def test_metrics_json_with_a_breakdown_names_the_groups(database: str) -> None:
    document = metrics_json(database, "--by", "segment", "--tz", "Europe/London")
    assert document["timezone"] == "Europe/London"
    groups = [(row["period"], row["group"]) for row in document["rows"]]
    assert {group for _, group in groups} == {"SMB", "Enterprise", "Mid-Market", "(none)"}
    assert len(groups) == 16
    assert all(row["cac"] is None for row in document["rows"])


def test_metrics_json_by_week(database: str) -> None:
    result = run(
        "metrics",
        "--from",
        "2024-W01",
        "--to",
        "2024-W03",
        "--interval",
        "week",
        "--format",
        "json",
        "--db",
        database,
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["interval"] == "week"
    assert [row["period"] for row in document["rows"]] == ["2024-W01", "2024-W02", "2024-W03"]


def test_metrics_csv_has_the_same_rows_as_json(database: str) -> None:
    rows = metrics_json(database)["rows"]
    result = run(
        "metrics", "--from", "2024-01", "--to", "2024-04", "--format", "csv", "--db", database
    )
    assert result.exit_code == 0, result.output
    records = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(records) == len(rows)
    for record, row in zip(records, rows, strict=True):
        assert list(record) == list(row)
        for name, value in row.items():
            text = record[name]
            if value is None:
                assert text == "", name
            elif isinstance(value, float):
                assert Decimal(text) == Decimal(str(value)), name
            else:
                assert text == str(value), name


def test_metrics_table_shows_the_periods(database: str) -> None:
    result = run("metrics", "--from", "2024-01", "--to", "2024-04", "--db", database)
    assert result.exit_code == 0, result.output
    for period in ("2024-01", "2024-02", "2024-03", "2024-04"):
        assert period in result.stdout
    # The table is for people: money in whole units (January's mrr_end is GBP 305.00).
    january = next(
        line for line in result.stdout.splitlines() if line.strip().startswith("2024-01")
    )
    assert " 305 " in f"{january} "


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        (["--tz", "Mars/Olympus"], "tz"),
        (["--from", "2024-13"], "from"),
        (["--to", "someday"], "to"),
        (["--by", "planet"], "by"),
        (["--interval", "fortnight"], "--interval"),
    ],
)
def test_metrics_cli_errors_name_the_parameter(
    database: str, options: list[str], parameter: str
) -> None:
    args = ["metrics", "--format", "json", "--db", database, "--from", "2024-01", "--to", "2024-02"]
    result = run(*args, *options)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{parameter}:" in result.stderr
