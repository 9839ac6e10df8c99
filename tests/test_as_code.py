"""Configuration as code across KPIs, rules, policies and channels: applied idempotently
with a diff, exported without secrets, and every bad input refused with its file and line
before anything is saved."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from execmetrics.as_code import (
    Declared,
    apply_declared,
    export_document,
    parse_declared,
    stored_declared,
)
from execmetrics.cli import app as cli
from execmetrics.notify.registry import Sealer
from execmetrics.store.tables import (
    alert_rule_versions,
    channel_versions,
    escalation_policy_versions,
)
from execmetrics.yaml_config import ConfigError

SECRET = "a-test-secret-key-of-sufficient-length-0123456789"
SEALER = Sealer.from_secret(SECRET)

FILE = """\
channels:
  - name: finance
    kind: webhook
    url: https://hooks.example/finance
    secret: ${FINANCE_HOOK_SECRET}
  - name: board-email
    kind: email
    host: smtp.example.com
    username: alerts
    password: "smtp password"
    sender: alerts@example.com
    to: [board@example.com]
policies:
  - name: revenue
    levels:
      - delay_minutes: 0
        recipients: [channel:finance]
      - delay_minutes: 60
        recipients: [user:cfo@example.com, channel:board-email]
    repeat: 2
    ack_timeout_minutes: 240
rules:
  - name: mrr-floor
    kpi: mrr
    severity: critical
    condition: {kind: threshold, below: "200000000", recover_above: "205000000"}
    policy: revenue
  - name: churn-anomaly
    kpi: [customer_churn_rate, gross_mrr_churn_rate]
    condition: {kind: anomaly, sensitivity: 3.5, direction: up}
    pending_minutes: 60
    nodata: normal
    notify: [channel:finance]
"""


@pytest.fixture(autouse=True)
def hook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINANCE_HOOK_SECRET", "finance-hook-signing-secret")


def apply(engine: Engine, text: str, **options: object) -> dict[str, object]:
    with engine.begin() as connection:
        return apply_declared(  # type: ignore[return-value]
            connection,
            parse_declared(text, "alerts.yaml"),
            "test",
            SEALER,
            **options,  # type: ignore[arg-type]
        )


def counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            connection.execute(select(func.count()).select_from(table)).scalar()
            for table in (alert_rule_versions, escalation_policy_versions, channel_versions)
        )


def problems(engine: Engine, text: str, **options: object) -> list[str]:
    before = counts(engine)
    with pytest.raises(ConfigError) as raised:
        apply(engine, text, **options)
    assert counts(engine) == before  # nothing saved
    return raised.value.problems


def test_applying_twice_changes_nothing_the_second_time(engine: Engine) -> None:
    first = apply(engine, FILE)
    assert first["rules"].created == ["churn-anomaly", "mrr-floor"]  # type: ignore[attr-defined]
    assert first["channels"].created == ["board-email", "finance"]  # type: ignore[attr-defined]
    again = apply(engine, FILE)
    assert all(diff.empty for diff in again.values())  # type: ignore[attr-defined]
    changed = apply(engine, FILE.replace("repeat: 2", "repeat: 3"))
    [change] = changed["policies"].changed["revenue"]  # type: ignore[attr-defined]
    assert (change.field, change.before, change.after) == ("repeat", 2, 3)


def test_an_export_has_no_secrets_and_applies_back_unchanged(engine: Engine) -> None:
    apply(engine, FILE)
    with engine.connect() as connection:
        exported = export_document(stored_declared(connection, SEALER))
    assert "finance-hook-signing-secret" not in exported and "smtp password" not in exported
    assert all(diff.empty for diff in apply(engine, exported).values())  # type: ignore[attr-defined]
    # Secrets changed: the diff says so without showing them.
    rotated = apply(engine, FILE.replace("smtp password", "a new smtp password"))
    [change] = rotated["channels"].changed["board-email"]  # type: ignore[attr-defined]
    assert (change.field, change.before, change.after) == ("password", "(secret)", "(secret)")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("kpi: mrr\n", "kpi: nothing\n"), "rules.mrr-floor.kpi: unknown KPI 'nothing'"),
        (("policy: revenue", "policy: nobody"), "rules.mrr-floor.policy: unknown escalation"),
        (
            ("notify: [channel:finance]", "notify: [channel:ghost]"),
            "rules.churn-anomaly.notify: unknown channel 'ghost'",
        ),
        (
            ("delay_minutes: 60", "delay_minutes: -5"),
            "alerts.yaml:18: policies[0] (revenue): levels.1.delay_minutes: Input should be "
            "greater than or equal to 0",
        ),
        (("repeat: 2", "repeat: 10"), "alerts.yaml:20: policies[0] (revenue): repeat:"),
        (
            ("url: https://hooks.example/finance", "url: http://169.254.169.254/latest"),
            "channels.finance.url:",
        ),
        (
            ("url: https://hooks.example/finance", "url: https://10.0.0.1/x"),
            "channels.finance.url:",
        ),
        (("host: smtp.example.com", "host: 127.0.0.1"), "channels.board-email.host:"),
        (
            ('below: "200000000"', "below: 2.5"),
            "alerts.yaml:26: rules[0] (mrr-floor): condition.threshold.below: ",
        ),
        (("secret: ${FINANCE_HOOK_SECRET}", "secret: ${NOT_SET_ANYWHERE}"), "NOT_SET_ANYWHERE"),
    ],
)
def test_a_bad_file_is_refused_with_where_and_why_and_saves_nothing(
    engine: Engine, change: tuple[str, str], expected: str
) -> None:
    found = problems(engine, FILE.replace(*change))
    assert any(expected in problem for problem in found), found


def test_the_allow_list_admits_a_private_address(engine: Engine) -> None:
    private = FILE.replace("url: https://hooks.example/finance", "url: https://10.0.0.1/x")
    assert apply(engine, private, allow=["10.0.0.0/8"])["channels"]


def test_pruning_removes_what_the_file_leaves_out(engine: Engine) -> None:
    apply(engine, FILE)
    only_floor = FILE[: FILE.index("  - name: churn-anomaly")]
    diffs = apply(engine, only_floor, prune=True)
    assert diffs["rules"].removed == ["churn-anomaly"]  # type: ignore[attr-defined]
    # Removing a channel a remaining rule needs is refused.
    without_finance = only_floor.replace("  - name: finance\n", "  - name: renamed\n")
    found = problems(engine, without_finance, prune=True)
    assert any("unknown channel 'finance'" in problem for problem in found), found


def test_the_command_line_applies_all_sections(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXECMETRICS_SECRET_KEY", SECRET)
    url = engine.url.render_as_string(hide_password=False)
    file = tmp_path / "alerts.yaml"
    file.write_text(FILE, encoding="utf-8")
    applied = CliRunner().invoke(cli, ["kpis", "apply", str(file), "--db", url])
    assert applied.exit_code == 0, applied.output
    assert "+ mrr-floor created" in applied.output and "rules: 2 changed" in applied.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(FILE.replace("delay_minutes: 60", "delay_minutes: -1"), encoding="utf-8")
    refused = CliRunner().invoke(cli, ["kpis", "apply", str(bad), "--db", url])
    assert refused.exit_code == 2
    assert "bad.yaml:18: policies[0] (revenue): levels.1.delay_minutes" in refused.output
    exported = CliRunner().invoke(cli, ["kpis", "export", "--db", url])
    declared = parse_declared(exported.stdout, "export")
    assert isinstance(declared, Declared) and declared.rules is not None
    assert {rule.name for rule in declared.rules} == {"mrr-floor", "churn-anomaly"}


def test_the_example_in_the_documentation_applies(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FINANCE_SLACK_WEBHOOK", "SMTP_PASSWORD", "TWILIO_AUTH_TOKEN"):
        monkeypatch.setenv(name, "https://hooks.slack.com/services/T0/B0/x0123456789abcdef")
    example = Path(__file__).parent.parent / "docs" / "examples" / "alerts.yaml"
    diffs = apply(engine, example.read_text(encoding="utf-8"))
    assert len(diffs["rules"].created) == 4  # type: ignore[attr-defined]
