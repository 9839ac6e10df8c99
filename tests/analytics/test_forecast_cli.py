"""`execmetrics forecast`: a file a user brings, a revenue metric, a KPI, and clear errors."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.builders import ingest
from tests.builders import kpi_definition as kpi
from tests.metrics.scenarios import steady_churn_events
from typer.testing import CliRunner

from execmetrics.cli import app as cli
from execmetrics.kpi.evaluation import record_evaluations
from execmetrics.kpi.service import apply_kpis
from execmetrics.metrics.periods import add_months, label, period_start


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_a_csv_series_is_forecast_as_json(tmp_path: Path) -> None:
    rows = "\n".join(f"{label(add_months(date(2021, 1, 1), i), 'month')},{100 + i * 3 + (i % 12)}"
                     for i in range(40))  # fmt: skip
    path = tmp_path / "bookings.csv"
    path.write_text("period,value\n" + rows + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["forecast", "--series", str(path), "--horizon", "6",
                                      "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert (document["series"], document["interval"], document["unit"]) == (
        str(path),
        "month",
        "number",
    )
    assert document["model"] in document["backtest"]["candidates"]
    assert document["backtest"]["baseline"] == "seasonal_naive"
    assert [row["period"] for row in document["forecast"]] == [
        "2024-05", "2024-06", "2024-07", "2024-08", "2024-09", "2024-10"
    ]  # fmt: skip
    first = document["forecast"][0]
    assert set(first) == {"period", "forecast", "lower_80", "upper_80", "lower_95", "upper_95"}
    assert first["lower_95"] <= first["lower_80"] <= first["forecast"] <= first["upper_80"]


def test_the_monthly_mrr_is_forecast_in_whole_minor_units(engine: Engine) -> None:
    ingest(engine, events=steady_churn_events())
    result = CliRunner().invoke(cli, ["forecast", "mrr", "--horizon", "3", "--format", "json",
                                      "--db", url_of(engine)])  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert (document["unit"], document["currency"]) == ("money", "GBP")
    this_month = period_start(datetime.now().date(), "month")
    assert [row["period"] for row in document["forecast"]] == [
        label(add_months(this_month, i), "month") for i in range(3)
    ]
    assert all(isinstance(value, int) for row in document["forecast"] for value in
               list(row.values())[1:])  # fmt: skip


def test_a_kpi_series_is_forecast_from_its_stored_values(engine: Engine) -> None:
    ingest(engine, events=steady_churn_events())
    with engine.begin() as connection:
        apply_kpis(connection, [kpi("mrr_closed", metric="mrr_end")], "test")
        record_evaluations(connection, date(2024, 12, 10), periods=11)
    result = CliRunner().invoke(cli, ["forecast", "kpi:mrr_closed", "--horizon", "2",
                                      "--db", url_of(engine)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Forecast of kpi:mrr_closed" in result.output
    assert "2024-12" in result.output and "2025-01" in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give a series name (such as mrr) or --series FILE, not both or neither"),
        (["mrr", "--series", "x.csv"], "not both or neither"),
        (["revenue"], "series: expected one of mrr, arr, customers"),
        (["kpi:nothing"], "series: no KPI named 'nothing'"),
        (["mrr", "--horizon", "0"], "horizon: expected 1 to 120 periods, got 0"),
        (["mrr", "--format", "csv"], "--format: expected one of table, json, got 'csv'"),
    ],
)
def test_bad_requests_are_refused_naming_the_parameter(
    engine: Engine, arguments: list[str], message: str
) -> None:
    ingest(engine, events=steady_churn_events())
    result = CliRunner().invoke(cli, ["forecast", *arguments, "--db", url_of(engine)])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_an_empty_ledger_and_a_bad_file_are_refused(engine: Engine, tmp_path: Path) -> None:
    empty = CliRunner().invoke(cli, ["forecast", "mrr", "--db", url_of(engine)])
    assert empty.exit_code == 2 and "the ledger has no movements yet" in empty.output
    path = tmp_path / "bad.csv"
    path.write_text("period,value\n2024-01,1\n2024-02,x\n", encoding="utf-8")
    bad = CliRunner().invoke(cli, ["forecast", "--series", str(path)])
    assert bad.exit_code == 2
    # The error console wraps long lines: compare without white space.
    expected = f"{path}:3: value: expected a number, got 'x'"
    assert "".join(expected.split()) in "".join(bad.output.split())
