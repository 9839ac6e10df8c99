"""The KPI routes: definitions, current values with their verdict, and history."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.api.conftest import TokenFor, bearer
from tests.builders import ingest, kpi_definition, start

from execmetrics.accounts.roles import Role
from execmetrics.kpi.config import starter_kpis
from execmetrics.kpi.evaluation import record_evaluations
from execmetrics.kpi.service import apply_kpis


def test_a_viewer_reads_the_definitions(client: TestClient, token_for: TokenFor) -> None:
    answer = client.get("/api/v1/kpis", headers=bearer(token_for(Role.VIEWER)))
    assert answer.status_code == 200
    kpis = {kpi["name"]: kpi for kpi in answer.json()}
    assert set(kpis) == {definition.name for definition in starter_kpis()}
    assert kpis["expansion_rate"]["formula"] == "expansion_mrr / mrr_start"
    assert kpis["mrr"]["version"] == 1


def test_current_values_history_and_targets(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    headers = bearer(token_for(Role.VIEWER))
    before = client.get("/api/v1/kpis/current", headers=headers).json()
    assert all(row["value"] is None and row["met"] is None for row in before)
    ingest(engine, events=[start("e1", "c1", "s1", "2024-01-10T00:00:00Z", 100000)])
    customers_goal = kpi_definition(
        "paying", metric="customers_end", category="customer", unit="count",
        targets=[{"kind": "recurring", "every": "month", "value": 3}],
    )  # fmt: skip
    with engine.begin() as connection:
        apply_kpis(connection, [customers_goal], "test")
        record_evaluations(connection, date(2024, 2, 5))
    ingest(engine, events=[start("e2", "c2", "s2", "2024-02-10T00:00:00Z", 50000)])
    with engine.begin() as connection:
        record_evaluations(connection, date(2024, 3, 5))
        record_evaluations(connection, date(2025, 2, 5))
    current = {
        row["name"]: row for row in client.get("/api/v1/kpis/current", headers=headers).json()
    }
    assert current["paying"]["period"] == "2025-01"
    assert current["paying"]["value"] == 2 and current["paying"]["exact"] == "2"
    assert (current["paying"]["goal"], current["paying"]["met"]) == (3, False)
    assert current["mrr_start"]["value"] == 150000
    history = client.get("/api/v1/kpis/paying/history", headers=headers).json()
    assert [(r["period"], r["value"], r["previous"], r["year_ago"]) for r in history["rows"]] == [
        ("2024-01", 1, None, None),
        ("2024-02", 2, 1, None),
        ("2025-01", 2, None, 1),
    ]
    ranged = client.get("/api/v1/kpis/paying/history?from=2024-02&to=2024-12", headers=headers)
    assert [r["period"] for r in ranged.json()["rows"]] == ["2024-02"]
    growth = {r["period"]: r for r in client.get(
        "/api/v1/kpis/expansion_rate/history", headers=headers
    ).json()["rows"]}  # fmt: skip
    assert growth["2024-02"]["exact"] == str(Fraction(0))


def test_bad_kpi_requests(client: TestClient, token_for: TokenFor) -> None:
    headers = bearer(token_for(Role.VIEWER))
    missing = client.get("/api/v1/kpis/nothing/history", headers=headers)
    assert missing.status_code == 404
    assert "no KPI named 'nothing'" in missing.json()["detail"]
    assert client.get("/api/v1/kpis/Bad-Name/history", headers=headers).status_code == 422
    bad_range = client.get("/api/v1/kpis/mrr/history?from=January", headers=headers)
    assert bad_range.status_code == 422
    assert "from" in bad_range.text
