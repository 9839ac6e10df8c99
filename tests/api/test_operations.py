"""Operations: the audit record is a condition of every answer, the server refuses default
secrets outside development, and logs are JSON lines carrying the request id."""

from __future__ import annotations

import json
import logging
from concurrent.futures import Future

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError
from tests.api.conftest import TokenFor, bearer, make_settings
from tests.builders import ingest, start
from typer.testing import CliRunner

from execmetrics.accounts.roles import Role
from execmetrics.api.app import create_app
from execmetrics.audit.chain import AuditEntry
from execmetrics.audit.writer import AuditWriter
from execmetrics.cli import app as cli
from execmetrics.config import Settings, SettingsError
from execmetrics.errors import Unavailable
from execmetrics.logs import JsonFormatter
from execmetrics.metrics import ledger_arrays


def test_a_request_that_cannot_be_audited_is_refused(
    engine: Engine, token_for: TokenFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(_self: AuditWriter, _entry: AuditEntry) -> Future[int]:
        failed: Future[int] = Future()
        failed.set_exception(Unavailable("the audit record could not be written"))
        return failed

    monkeypatch.setattr(AuditWriter, "submit", refuse)
    headers = bearer(token_for(Role.ANALYST))
    with TestClient(create_app(make_settings(engine), engine)) as client:
        refused = client.get("/api/v1/ingestions", headers=headers)
        unaudited = client.get("/healthz")
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/audit-unavailable")
    assert "items" not in refused.text
    assert unaudited.status_code == 200  # health checks are not audited


@pytest.mark.parametrize("secret", [None, "short"])
def test_production_refuses_a_default_or_weak_secret(secret: str | None) -> None:
    values: dict[str, object] = {"environment": "production"}
    if secret is not None:
        values["secret_key"] = secret
    with pytest.raises(SettingsError, match="EXECMETRICS_SECRET_KEY"):
        Settings(**values).check_for_serving()  # type: ignore[arg-type]
    Settings(environment="production", secret_key="x" * 40).check_for_serving()


def test_serve_will_not_start_in_production_with_the_default_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXECMETRICS_ENVIRONMENT", "production")
    monkeypatch.delenv("EXECMETRICS_SECRET_KEY", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "EXECMETRICS_SECRET_KEY" in result.output


def test_log_lines_are_json_with_the_request_fields() -> None:
    record = logging.LogRecord("execmetrics.access", logging.INFO, "", 0, "request", None, None)
    record.request_id = "abc123"
    record.status = 200
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "request"
    assert line["request_id"] == "abc123" and line["status"] == 200
    assert line["level"] == "info" and line["time"].endswith("+00:00")


def test_the_access_log_carries_the_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="execmetrics.access"):
        response = client.get("/healthz", headers={"X-Request-ID": "trace-0001"})
    lines = [r for r in caplog.records if r.name == "execmetrics.access"]
    assert response.headers["x-request-id"] == "trace-0001"
    assert [getattr(r, "request_id", None) for r in lines] == ["trace-0001"]
    assert lines[0].status == 200  # type: ignore[attr-defined]


def test_a_credential_in_a_path_never_reaches_the_access_log(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="execmetrics.access"):
        client.get("/alerts/acknowledge/secret-token-value")
    [line] = [r for r in caplog.records if r.name == "execmetrics.access"]
    assert line.path == "/alerts/acknowledge/{token}"  # type: ignore[attr-defined]
    assert "secret-token-value" not in caplog.text


def test_the_server_reads_the_ledger_before_its_first_request(
    engine: Engine, token_for: TokenFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(engine, events=[start("e1", "c1", "s1", "2025-01-10T00:00:00Z", 1000)])
    reads: list[int] = []
    real_load = ledger_arrays.load_ledger

    def counted_load(connection: Connection) -> ledger_arrays.LedgerArrays:
        reads.append(1)
        return real_load(connection)

    monkeypatch.setattr(ledger_arrays, "load_ledger", counted_load)
    headers = bearer(token_for(Role.ANALYST))
    with TestClient(create_app(make_settings(engine), engine)) as client:
        assert reads == [1]
        answer = client.get("/api/v1/metrics?from=2025-01&to=2025-01", headers=headers)
    assert answer.json()["rows"][0]["mrr_end"] == 1000
    assert reads == [1]


def test_a_ledger_unreadable_at_start_up_is_read_by_the_first_request(
    engine: Engine,
    token_for: TokenFor,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ingest(engine, events=[start("e1", "c1", "s1", "2025-01-10T00:00:00Z", 1000)])
    real_load = ledger_arrays.load_ledger
    attempts: list[int] = []

    def failing_once(connection: Connection) -> ledger_arrays.LedgerArrays:
        attempts.append(1)
        if len(attempts) == 1:
            raise OperationalError("SELECT", {}, Exception("database is locked"))
        return real_load(connection)

    monkeypatch.setattr(ledger_arrays, "load_ledger", failing_once)
    headers = bearer(token_for(Role.ANALYST))
    app = create_app(make_settings(engine), engine)
    with caplog.at_level(logging.WARNING, "execmetrics.server"), TestClient(app) as client:
        answer = client.get("/api/v1/metrics?from=2025-01&to=2025-01", headers=headers)
    assert "movement ledger was not read at start-up" in caplog.text
    assert answer.status_code == 200
    assert answer.json()["rows"][0]["mrr_end"] == 1000
    assert len(attempts) == 2
