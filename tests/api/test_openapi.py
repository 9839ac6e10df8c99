"""The committed docs/openapi.json is the schema the server serves."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from execmetrics.cli import app as cli

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_served_schema_matches_docs_openapi_json(client: TestClient) -> None:
    served = client.get("/openapi.json")
    assert served.status_code == 200
    # Regenerate with `execmetrics openapi --out docs/openapi.json`.
    assert served.json() == json.loads(COMMITTED.read_text())
    paths = served.json()["paths"]
    assert {"/api/v1/metrics", "/api/v1/summary", "/api/v1/audit", "/healthz"} <= set(paths)


def test_the_command_line_writes_the_committed_schema(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    result = CliRunner().invoke(cli, ["openapi", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == json.loads(COMMITTED.read_text())
