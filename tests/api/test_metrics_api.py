"""The metrics, cohorts and summary routes answer with the revenue engine's numbers."""

from __future__ import annotations

import json
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.api.conftest import TokenFor, bearer
from tests.builders import start
from typer.testing import CliRunner

from execmetrics.accounts.roles import Role
from execmetrics.cli import app as cli
from execmetrics.metrics import cache as cache_module
from execmetrics.metrics.periods import period_start, shift_periods
from execmetrics.metrics.service import compute_metrics


def test_metrics_and_cohorts_are_exactly_what_the_cli_prints(
    demo_engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    url = demo_engine.url.render_as_string(hide_password=False)
    headers = bearer(token_for(Role.ANALYST))
    for command, query in [
        (["metrics", "--from", "2025-01", "--to", "2025-06"], "from=2025-01&to=2025-06"),
        (["metrics", "--from", "2025-01", "--to", "2025-03", "--by", "segment",
          "--tz", "Europe/London"], "from=2025-01&to=2025-03&by=segment&tz=Europe/London"),
        (["metrics", "--from", "2024-Q1", "--to", "2025-Q2", "--interval", "quarter"],
         "from=2024-Q1&to=2025-Q2&interval=quarter"),
        (["cohorts", "--from", "2025-01", "--to", "2025-04"], "from=2025-01&to=2025-04"),
    ]:  # fmt: skip
        printed = CliRunner().invoke(cli, [*command, "--format", "json", "--db", url])
        assert printed.exit_code == 0, printed.output
        served = client.get(f"/api/v1/{command[0]}?{query}", headers=headers)
        assert served.status_code == 200
        assert served.text == printed.stdout
        assert json.loads(served.text)["rows"]


def test_the_summary_holds_the_latest_complete_month_and_the_month_to_date(
    demo_engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    response = client.get("/api/v1/summary", headers=bearer(token_for(Role.VIEWER)))
    assert response.status_code == 200
    summary = response.json()
    current = period_start(date.today(), "month")
    with demo_engine.connect() as connection:
        rows = compute_metrics(connection, shift_periods(current, "month", 2), current).rows
    before, latest, to_date = rows
    headline = summary["latest_complete"]
    assert headline["period"] == latest["period"]
    assert headline["metrics"]["mrr"] == {
        "value": latest["mrr_end"],
        "previous": before["mrr_end"],
        "trend": headline["metrics"]["mrr"]["trend"],
    }
    assert headline["metrics"]["mrr"]["trend"][-2:] == [before["mrr_end"], latest["mrr_end"]]
    assert len(headline["metrics"]["mrr"]["trend"]) == 12
    assert headline["metrics"]["customers"]["value"] == latest["customers_end"]
    assert headline["metrics"]["arr"]["value"] == 12 * latest["mrr_end"]
    mtd = summary["month_to_date"]
    assert mtd["period"] == to_date["period"]
    assert mtd["metrics"]["net_new_mrr"] == {
        "value": to_date["net_new_mrr"],
        "previous": latest["net_new_mrr"],
        "trend": None,
    }
    assert summary["currency"] == "GBP"


def test_customer_level_rows_are_for_executives(
    demo_engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    executive = bearer(token_for(Role.EXECUTIVE))
    page = client.get("/api/v1/customers?limit=5", headers=executive).json()
    assert len(page["items"]) == 5 and page["next_after"] == page["items"][-1]["customer_id"]
    detail = client.get(f"/api/v1/customers/{page['items'][0]['customer_id']}", headers=executive)
    assert detail.status_code == 200
    assert client.get("/api/v1/customers/nobody", headers=executive).status_code == 404
    assert (
        client.get("/api/v1/customers", headers=bearer(token_for(Role.ANALYST))).status_code == 403
    )


def test_the_api_never_serves_a_document_older_than_the_data(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    headers = bearer(token_for(Role.EXECUTIVE))
    client.post("/api/v1/events/customers", json={"rows": [{"customer_id": "c1"}]}, headers=headers)

    def mrr() -> int:
        rows = client.get("/api/v1/metrics?from=2025-03&to=2025-03", headers=headers).json()["rows"]
        return int(rows[0]["mrr_end"])

    assert mrr() == mrr() == 0
    event = start("e1", "c1", "s1", "2025-03-01T00:00:00Z", 4900)
    posted = client.post(
        "/api/v1/events/subscription_events", json={"rows": [event]}, headers=headers
    )
    assert posted.status_code == 200, posted.text
    assert mrr() == 4900


def test_an_ingestion_through_the_api_warms_the_default_documents(
    engine: Engine, client: TestClient, token_for: TokenFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = bearer(token_for(Role.EXECUTIVE))
    client.post("/api/v1/events/customers", json={"rows": [{"customer_id": "c1"}]}, headers=headers)
    event = start("e1", "c1", "s1", "2025-03-01T00:00:00Z", 4900)
    client.post("/api/v1/events/subscription_events", json={"rows": [event]}, headers=headers)

    def no_computing(*_args: object) -> None:
        raise AssertionError("computed on request: the ingestion did not warm the cache")

    monkeypatch.setattr(cache_module, "compute_summary", no_computing)
    monkeypatch.setattr(cache_module, "compute_metrics", no_computing)
    assert client.get("/api/v1/summary", headers=headers).status_code == 200
    assert client.get("/api/v1/metrics", headers=headers).status_code == 200
    assert client.get("/", headers=headers).status_code == 200


def test_a_customers_mrr_is_todays_even_with_a_cancel_scheduled(
    client: TestClient, token_for: TokenFor
) -> None:
    headers = bearer(token_for(Role.EXECUTIVE))
    client.post("/api/v1/events/customers", json={"rows": [{"customer_id": "c1"}]}, headers=headers)
    events = [
        start("e1", "c1", "s1", "2025-03-01T00:00:00Z", 4900),
        {"event_id": "e2", "customer_id": "c1", "subscription_id": "s1",
         "occurred_at": "2099-01-01T00:00:00Z", "type": "cancel"},
    ]  # fmt: skip
    client.post("/api/v1/events/subscription_events", json={"rows": events}, headers=headers)
    detail = client.get("/api/v1/customers/c1", headers=headers).json()
    listed = client.get("/api/v1/customers", headers=headers).json()["items"]
    assert [m["type"] for m in detail["movements"]] == ["new", "churn"]
    assert detail["mrr"] == 4900
    assert listed[0]["mrr"] == 4900
