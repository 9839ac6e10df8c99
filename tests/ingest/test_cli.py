"""`execmetrics ingest DIR`: exit codes, the problem report on stderr, and --format json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.ingest.support import (
    COMPANY,
    CUSTOMERS,
    EVENTS,
    event,
    snapshot,
    table_counts,
    write_bytes,
    write_company,
    write_file,
)
from typer.testing import CliRunner, Result

from execmetrics.cli import app
from execmetrics.ingest.problems import IngestError
from execmetrics.ingest.readers import KINDS
from execmetrics.ingest.service import ingest_files


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def run_ingest(engine: Engine, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, ["ingest", *args, "--db", url_of(engine)], env=env)


def problems_of(engine: Engine, folder: Path) -> IngestError:
    """The problems ingest_files reports for folder (it writes nothing)."""
    with pytest.raises(IngestError) as info:
        ingest_files(engine, [folder])
    return info.value


def bad_folder(tmp_path: Path) -> Path:
    """Valid rows plus two problems, in two files, at long paths (as real paths can be)."""
    folder = tmp_path / "exports-from-the-billing-system" / "2024-03-31T23-59-59Z-full-export"
    write_company(folder)
    write_file(folder, "customers", [*CUSTOMERS, {"customer_id": "n1", "country": "UK"}])
    write_file(
        folder,
        "subscription_events",
        [
            *EVENTS,
            event("n-e1", "c-ent", "n-s1", "2024-03-01T00:00:00Z", amount="-4900"),
        ],
    )
    return folder


def test_ingest_prints_a_summary_and_exits_0(engine: Engine, tmp_path: Path) -> None:
    result = run_ingest(engine, str(write_company(tmp_path / "in")))
    assert result.exit_code == 0, result.output
    assert table_counts(engine)["subscription_events"] == len(EVENTS)
    assert f"subscription_events: {len(EVENTS)} new" in result.stdout


def test_ingest_json_reports_the_counts(engine: Engine, tmp_path: Path) -> None:
    result = run_ingest(engine, str(write_company(tmp_path / "in")), "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ok"] is True
    for kind, records in COMPANY.items():
        assert payload["counts"][kind]["inserted"] == len(records)
    again = json.loads(run_ingest(engine, str(tmp_path / "in"), "--format", "json").stdout)
    assert again["ok"] is True
    assert {k: v["inserted"] for k, v in again["counts"].items()} == dict.fromkeys(KINDS, 0)


def test_the_database_can_be_chosen_by_environment_variable(engine: Engine, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["ingest", str(write_company(tmp_path / "in"))],
        env={"EXECMETRICS_DATABASE_URL": url_of(engine)},
    )
    assert result.exit_code == 0, result.output
    assert table_counts(engine)["customers"] == len(CUSTOMERS)


def test_refused_input_exits_1_with_file_line_column_reason_lines_on_stderr(
    engine: Engine, tmp_path: Path
) -> None:
    ingest_files(engine, [write_company(tmp_path / "base")])
    folder = bad_folder(tmp_path)
    expected = problems_of(engine, folder)
    assert [(p.line, p.column) for p in expected.problems] == [(9, "country"), (10, "amount_minor")]
    before = snapshot(engine)

    result = run_ingest(engine, str(folder))

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    customers, events = folder / "customers.csv", folder / "subscription_events.csv"
    for problem in expected.problems:
        assert str(problem) in lines, f"{problem} is not a line of stderr:\n{result.stderr}"
    assert str(expected.problems[0]).startswith(f"{customers}:9: country: ")
    assert str(expected.problems[1]).startswith(f"{events}:10: amount_minor: ")
    assert snapshot(engine) == before


def test_refused_input_with_format_json(engine: Engine, tmp_path: Path) -> None:
    ingest_files(engine, [write_company(tmp_path / "base")])
    folder = bad_folder(tmp_path)
    expected = problems_of(engine, folder)
    before = snapshot(engine)

    result = run_ingest(engine, str(folder), "--format", "json")

    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["ok"] is False
    assert payload["problems"] == [
        {
            "file": str(folder / "customers.csv"),
            "line": 9,
            "column": "country",
            "reason": expected.problems[0].reason,
        },
        {
            "file": str(folder / "subscription_events.csv"),
            "line": 10,
            "column": "amount_minor",
            "reason": expected.problems[1].reason,
        },
    ]
    assert payload["total_problems"] == 2
    assert snapshot(engine) == before


def test_more_than_100_problems_on_the_command_line(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    rows = [{"customer_id": f"n{i}", "country": "UK"} for i in range(130)]
    path = write_file(folder, "customers", rows)

    expected = problems_of(engine, folder)
    assert expected.total == 130
    assert str(expected.problems[-1]).startswith(f"{path}:101: country: ")

    text = run_ingest(engine, str(folder))
    assert text.exit_code == 1
    problem_lines = [line for line in text.stderr.splitlines() if line.startswith(f"{path}")]
    assert problem_lines == [str(p) for p in expected.problems]
    assert "30 more" in text.stderr

    as_json = json.loads(run_ingest(engine, str(folder), "--format", "json").stdout)
    assert as_json["ok"] is False
    assert len(as_json["problems"]) == 100
    assert as_json["total_problems"] == 130
    assert [p["line"] for p in as_json["problems"]] == list(range(2, 102))
    assert table_counts(engine)["customers"] == 0


def test_an_empty_file_on_the_command_line(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    path = write_bytes(folder / "customers.csv", b"")
    result = run_ingest(engine, str(folder), "--format", "json")
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["ok"] is False
    assert [(p["file"], p["column"]) for p in payload["problems"]] == [(str(path), None)]
    # Nothing but what a new database has: its settings and starter KPIs.
    counts = table_counts(engine)
    assert sum(counts.values()) == counts["settings"] + counts["kpi_versions"]


def test_a_missing_path_on_the_command_line(engine: Engine, tmp_path: Path) -> None:
    result = run_ingest(engine, str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert any(line.startswith(f"{tmp_path / 'nowhere'}: ") for line in result.stderr.splitlines())


def test_the_installed_command_reports_problems_as_whole_lines(
    engine: Engine, tmp_path: Path
) -> None:
    """The real process, with stderr a pipe as in CI logs: one problem per line, unwrapped."""
    folder = bad_folder(tmp_path)
    expected = problems_of(engine, folder)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.run(
        [sys.executable, "-m", "execmetrics.cli", "ingest", str(folder), "--db", url_of(engine)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert process.returncode == 1
    lines = process.stderr.splitlines()
    for problem in expected.problems:
        assert str(problem) in lines, f"{problem} is not a line of stderr:\n{process.stderr}"
    assert "Traceback" not in process.stderr


@pytest.mark.parametrize("line", [100, 1234])
def test_line_numbers_are_printed_literally(engine: Engine, tmp_path: Path, line: int) -> None:
    # `:100:` and `:1234:` are emoji codes to a terminal renderer; a report must not mangle them.
    folder = tmp_path / "in"
    rows: list[dict[str, object]] = [{"customer_id": f"n{i}"} for i in range(2, line)]
    path = write_file(folder, "customers", [*rows, {"customer_id": "bad", "country": "UK"}])
    expected = problems_of(engine, folder)
    assert [(p.line, p.column) for p in expected.problems] == [(line, "country")]

    result = run_ingest(engine, str(folder))

    assert result.exit_code == 1
    assert f"customers.csv:{line}: country: " in result.stderr
    assert str(path) in result.stderr
