"""The committed docs/openapi.json is the schema the server serves."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_the_served_schema_matches_docs_openapi_json(client: TestClient) -> None:
    served = client.get("/openapi.json")
    assert served.status_code == 200
    # Regenerate with `execmetrics openapi --out docs/openapi.json`.
    assert served.json() == json.loads(COMMITTED.read_text())
    paths = served.json()["paths"]
    assert {"/api/v1/metrics", "/api/v1/summary", "/api/v1/audit", "/healthz"} <= set(paths)
