"""KPIs as code: the YAML file, its problems by file and line, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from tests.builders import ingest, start
from typer.testing import CliRunner

from execmetrics.analytics.quality_store import latest_quality
from execmetrics.as_code import Declared, export_document, parse_declared
from execmetrics.cli import app as cli
from execmetrics.kpi.config import starter_kpis
from execmetrics.kpi.definitions import check_references
from execmetrics.kpi.evaluation import kpi_values
from execmetrics.kpi.service import current_kpis
from execmetrics.store.tables import audit_log, kpi_evaluations, kpi_versions, quality_reports
from execmetrics.yaml_config import ConfigError

GOOD = """\
kpis:
  - name: mrr
    title: MRR
    metric: mrr_end
    category: financial
    unit: money
    direction: higher_is_better
  - name: smb_churn
    title: SMB logo churn
    metric: customer_churn_rate
    group: {by: segment, value: SMB}
    category: customer
    unit: ratio
    direction: lower_is_better
    schedule: "0 6 * * *"
  - name: double_mrr
    title: Twice MRR
    formula: mrr * 2
    category: financial
    unit: money
    direction: higher_is_better
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_declared(text, "kpis.yaml")
    return raised.value.problems


def test_a_good_file_and_its_export_round_trip() -> None:
    definitions = parse_declared(GOOD, "kpis.yaml").kpis
    assert [d.name for d in definitions] == ["mrr", "smb_churn", "double_mrr"]
    assert definitions[1].group is not None and definitions[1].group.value == "SMB"
    assert (
        parse_declared(export_document(Declared(kpis=definitions)), "exported.yaml").kpis
        == definitions
    )


def test_every_problem_is_reported_with_its_line() -> None:
    text = (
        GOOD.replace(
            "unit: money\n    direction: higher_is_better\n  - name: smb",
            ("unit: pounds\n    direction: higher_is_better\n  - name: smb"),
        )
        .replace("formula: mrr * 2", "formula: mrr *")
        .replace('"0 6 * * *"', '"0 25 * * *"')
    )
    text += "alerts: []\n"
    assert problems(text) == [
        "kpis.yaml:22: unknown section 'alerts' (expected kpis, rules, policies, channels)",
        "kpis.yaml:6: kpis[0] (mrr): unit: Input should be 'money', 'count', 'ratio', "
        "'percent', 'days' or 'score'",
        "kpis.yaml:15: kpis[1] (smb_churn): schedule: not a cron expression (Bad hour)",
        "kpis.yaml:18: kpis[2] (double_mrr): formula: expected a number, a KPI name or '(' "
        "at character 6, found the end",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kpis: [\n", "kpis.yaml:2: not valid YAML"),
        ("- a\n- b\n", "kpis.yaml:1: expected a mapping with kpis, rules, policies or channels"),
        ("kpis: 3\n", "kpis.yaml:1: kpis: expected a list"),
        ("other: 1\n", "kpis.yaml:1: unknown section 'other'"),
        ("rules: {}\n", "kpis.yaml:1: rules: expected a list"),
        ("kpis:\n  - 7\n", "kpis.yaml:2: kpis[0]: Input should be a valid dictionary"),
        (
            "kpis:\n  - name: x\n    title: X\n    category: financial\n    unit: count\n"
            "    direction: higher_is_better\n",
            "kpis.yaml:2: kpis[0] (x): give either metric or formula",
        ),
    ],
)
def test_a_file_that_is_not_a_kpi_list(text: str, expected: str) -> None:
    assert problems(text)[-1].startswith(expected)


def test_the_starter_set_is_valid_and_complete() -> None:
    starter = starter_kpis()
    assert len(starter) >= 15
    order = check_references(starter)
    assert set(order) == {d.name for d in starter}
    categories = {d.category.value for d in starter}
    assert {"financial", "customer", "marketing", "operational"} <= categories


def invoke(*arguments: str) -> object:
    return CliRunner().invoke(cli, list(arguments))


def test_the_command_line_applies_prints_the_diff_and_audits(
    engine: Engine, tmp_path: Path
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    file = tmp_path / "kpis.yaml"
    file.write_text(GOOD, encoding="utf-8")
    with engine.connect() as connection:
        before = len(current_kpis(connection))
        versions = connection.execute(select(func.count()).select_from(kpi_versions)).scalar()
    dry = CliRunner().invoke(cli, ["kpis", "apply", str(file), "--dry-run", "--db", url])
    assert dry.exit_code == 0, dry.output
    assert "+ smb_churn created" in dry.output and "would change" in dry.output
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(kpi_versions)).scalar() == (
            versions
        )
    applied = CliRunner().invoke(cli, ["kpis", "apply", str(file), "--db", url])
    assert applied.exit_code == 0, applied.output
    assert "+ smb_churn created" in applied.output
    assert "+ double_mrr created" in applied.output
    again = CliRunner().invoke(cli, ["kpis", "apply", str(file), "--db", url])
    assert "kpis: 0 changed" in again.output
    with engine.connect() as connection:
        assert len(current_kpis(connection)) == before + 2
        audited = connection.execute(
            select(audit_log.c.parameters).where(audit_log.c.action == "kpis apply")
        ).all()
    assert len(audited) == 1  # the dry run and the unchanged run change nothing
    parameters = audited[0][0]
    parameters = json.loads(parameters) if isinstance(parameters, str) else parameters
    assert parameters["kpis"]["created"] == ["double_mrr", "smb_churn"]
    pruned = CliRunner().invoke(cli, ["kpis", "apply", str(file), "--prune", "--db", url])
    assert pruned.exit_code == 0, pruned.output
    with engine.connect() as connection:
        assert set(current_kpis(connection)) == {"mrr", "smb_churn", "double_mrr"}
    exported = CliRunner().invoke(cli, ["kpis", "export", "--db", url])
    by_name = {d.name: d for d in parse_declared(GOOD, "kpis.yaml").kpis}
    assert parse_declared(exported.stdout, "export").kpis == [by_name[n] for n in sorted(by_name)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("formula: mrr * 2", "formula: double_mrr * 2"), "cycle: double_mrr"),
        (GOOD.replace("formula: mrr * 2", "formula: nothing * 2"), "unknown KPI 'nothing'"),
        (GOOD.replace("unit: money", "unit: pounds", 1), "kpis.yaml:6: kpis[0] (mrr): unit"),
    ],
)
def test_a_bad_file_changes_nothing(
    engine: Engine, tmp_path: Path, text: str, message: str
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    file = tmp_path / "kpis.yaml"
    file.write_text(text, encoding="utf-8")
    with engine.connect() as connection:
        versions = connection.execute(select(func.count()).select_from(kpi_versions)).scalar()
    result = CliRunner().invoke(cli, ["kpis", "apply", str(file), "--db", url])
    assert result.exit_code == 2
    assert message in result.output
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(kpi_versions)).scalar() == (
            versions
        )


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = CliRunner().invoke(cli, ["kpis", "apply", str(missing), "--db", "sqlite://"])
    assert result.exit_code == 2
    assert f"{missing}: cannot be read" in result.output
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("kpis:\n  - title: caf\xe9\n".encode("latin-1"))
    result = CliRunner().invoke(cli, ["kpis", "apply", str(latin), "--db", "sqlite://"])
    assert result.exit_code == 2
    assert f"{latin}: cannot be read" in result.output


def test_the_command_line_evaluates_and_stores_once_per_data_version(engine: Engine) -> None:
    ingest(engine, events=[start("e1", "c1", "s1", "2025-01-10T00:00:00Z", 123456)])
    url = engine.url.render_as_string(hide_password=False)
    arguments = ["kpis", "evaluate", "--date", "2025-02-03", "--db", url]
    first = CliRunner().invoke(cli, arguments)
    assert first.exit_code == 0, first.output
    assert "GBP 1,234.56" in first.output  # the January MRR of the one customer
    assert "already" not in first.output
    second = CliRunner().invoke(cli, arguments)
    rows = [line.split() for line in second.output.splitlines()]
    stored_column = [row[-1] for row in rows if len(row) > 2 and row[1] in ("2025-01", "2025-02")]
    assert stored_column == ["already"] * len(starter_kpis())
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(kpi_evaluations)).scalar()
        reports = connection.execute(select(func.count()).select_from(quality_reports)).scalar()
        report = latest_quality(connection)
        [quality] = kpi_values(connection, "data_quality")
    assert stored == len(starter_kpis())
    # The first run measured the data quality report the starter quality KPI reads; the
    # second found it current.
    assert reports == 1 and report is not None
    assert report.report.overall is not None and quality["value"] == report.report.overall


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--date", "2025-13-01"], "--date: expected YYYY-MM-DD, got '2025-13-01'"),
        (["--tz", "Mars/Olympus"], "tz: unknown IANA time zone 'Mars/Olympus'"),
    ],
)
def test_bad_evaluation_options_are_named(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["kpis", "evaluate", *arguments, "--db", "sqlite://"])
    assert result.exit_code == 2
    assert message in result.output
