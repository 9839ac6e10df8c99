"""`execmetrics anomalies`: every point of a series judged, from a file or the engine."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Engine
from tests.builders import ingest
from tests.metrics.scenarios import steady_churn_events
from typer.testing import CliRunner

from execmetrics.cli import app as cli


def daily_file(tmp_path: Path) -> Path:
    """Ten weeks of daily bookings with a weekly pattern, and one day far off it."""
    start = date(2025, 3, 3)
    rows = []
    for day in range(70):
        value = 200 + (40 if day % 7 in (5, 6) else 0) + (day % 3)
        if day == 60:
            value = 520
        rows.append(f"{start + timedelta(days=day)},{value}")
    path = tmp_path / "bookings.csv"
    path.write_text("period,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_file_is_judged_point_by_point_as_json(tmp_path: Path) -> None:
    path = daily_file(tmp_path)
    result = CliRunner().invoke(cli, ["anomalies", "--series", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert (document["interval"], document["season_length"]) == ("day", 7)
    assert (document["method"], document["sensitivity"]) == ("robust_seasonal", 1.73)
    # After the first weeks, which cannot know the weekly pattern yet, only the odd day.
    assert [period for period in document["flagged"] if period >= "2025-03-17"] == ["2025-05-02"]
    spike = document["points"][60]
    assert spike["period"] == "2025-05-02" and spike["flag"] is True
    assert spike["value"] > spike["upper"] and spike["score"] >= 1.73
    assert document["points"][0]["expected"] is None  # no history yet
    assert set(document["points"][30]) == {
        "period", "value", "expected", "lower", "upper", "score", "flag"
    }  # fmt: skip


def test_the_baseline_and_a_sensitivity_can_be_chosen(tmp_path: Path) -> None:
    path = daily_file(tmp_path)
    result = CliRunner().invoke(
        cli, ["anomalies", "--series", str(path), "--method", "rolling_zscore",
              "--sensitivity", "3", "--format", "json"],
    )  # fmt: skip
    document = json.loads(result.output)
    assert (document["method"], document["sensitivity"]) == ("rolling_zscore", 3.0)
    assert "2025-05-02" in document["flagged"]


def test_the_table_lists_the_flagged_points(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["anomalies", "--series", str(daily_file(tmp_path))])
    assert result.exit_code == 0, result.output
    document = json.loads(
        CliRunner()
        .invoke(cli, ["anomalies", "--series", str(daily_file(tmp_path)), "--format", "json"])
        .output
    )
    count = len(document["flagged"])
    assert f"{count} of 70 points flagged" in " ".join(result.output.split())
    assert "2025-05-02" in result.output


def test_the_monthly_mrr_is_judged_from_the_database(engine: Engine) -> None:
    ingest(engine, events=steady_churn_events())
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(cli, ["anomalies", "mrr", "--format", "json", "--db", url])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert (document["series"], document["interval"], document["season_length"]) == (
        "mrr", "month", 12
    )  # fmt: skip
    assert document["points"][0]["period"] == "2023-12"


def test_bad_options_are_refused_naming_them(tmp_path: Path) -> None:
    path = daily_file(tmp_path)
    for arguments, message in [
        (["--method", "prophet"], "method: expected one of robust_seasonal, rolling_zscore"),
        (["--sensitivity", "-1"], "sensitivity: expected a positive number, got -1.0"),
        (["--format", "csv"], "--format: expected one of table, json, got 'csv'"),
    ]:
        result = CliRunner().invoke(cli, ["anomalies", "--series", str(path), *arguments])
        assert result.exit_code == 2
        assert message in " ".join(result.output.split())
    neither = CliRunner().invoke(cli, ["anomalies"])
    assert neither.exit_code == 2 and "not both or neither" in neither.output
