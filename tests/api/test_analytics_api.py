"""GET /api/v1/forecast, /api/v1/anomalies and /api/v1/quality: the command line's documents,
for analysts and above, and a 422 that names the parameter."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.api.conftest import TokenFor, bearer
from tests.builders import customer, ingest, start
from tests.builders import kpi_definition as kpi
from tests.metrics.scenarios import steady_churn_events
from typer.testing import CliRunner

import execmetrics.analytics.service as service
from execmetrics.accounts.roles import Role
from execmetrics.analytics.forecast import Forecast
from execmetrics.analytics.quality_store import refresh_quality
from execmetrics.analytics.series import TimeSeries
from execmetrics.cli import app as cli
from execmetrics.kpi.evaluation import record_evaluations
from execmetrics.kpi.service import apply_kpis
from execmetrics.timeutil import now_micros, parse_timestamp


def growing_events() -> list[dict[str, object]]:
    """A new customer each month of 2024 and 2025, each paying a little more."""
    return [
        start(f"e{i}", f"c{i}", f"s{i}", f"{2024 + i // 12}-{i % 12 + 1:02d}-10T00:00:00Z",
              10_000 + 500 * i)
        for i in range(24)
    ]  # fmt: skip


def test_an_analyst_gets_the_forecast_of_the_monthly_mrr(
    client: TestClient, token_for: TokenFor, engine: Engine
) -> None:
    ingest(engine, events=growing_events())
    response = client.get(
        "/api/v1/forecast?series=mrr&horizon=3", headers=bearer(token_for(Role.ANALYST))
    )
    assert response.status_code == 200, response.text
    document = response.json()
    assert (document["series"], document["unit"], document["currency"]) == ("mrr", "money", "GBP")
    assert document["model"] in document["backtest"]["candidates"]
    assert len(document["forecast"]) == 3
    assert all(isinstance(row["forecast"], int) for row in document["forecast"])


def test_the_forecast_is_the_commands_and_is_fitted_once_per_series(
    client: TestClient, token_for: TokenFor, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(engine, events=growing_events())
    fitted: list[tuple[float, ...]] = []
    fit = service.forecast_series

    def counted(series: TimeSeries, horizon: int) -> Forecast:
        fitted.append(series.values)
        return fit(series, horizon)

    monkeypatch.setattr(service, "forecast_series", counted)
    analyst = bearer(token_for(Role.ANALYST))
    path = "/api/v1/forecast?series=mrr&horizon=3"
    first = client.get(path, headers=analyst).json()
    assert client.get(path, headers=analyst).json() == first
    assert len(fitted) == 1  # the second request was served from the cache
    # The command reads the series from the database, the server from the ledger it keeps.
    url = engine.url.render_as_string(hide_password=False)
    command = CliRunner().invoke(
        cli, ["forecast", "mrr", "--horizon", "3", "--format", "json", "--db", url]
    )
    assert command.exit_code == 0, command.output
    assert json.loads(command.output) == first
    assert fitted[1] == fitted[0]
    ingest(engine, events=[start("e99", "c99", "s99", "2025-12-20T00:00:00Z", 90_000)])
    changed = client.get(path, headers=analyst).json()
    assert len(fitted) == 3 and fitted[2] != fitted[0]
    assert changed["forecast"] != first["forecast"]


def test_anomalies_of_a_kpi_series(client: TestClient, token_for: TokenFor, engine: Engine) -> None:
    ingest(engine, events=steady_churn_events())
    with engine.begin() as connection:
        apply_kpis(connection, [kpi("mrr_closed", metric="mrr_end")], "test")
        record_evaluations(connection, date(2024, 12, 10), periods=11)
    response = client.get(
        "/api/v1/anomalies?series=kpi:mrr_closed&method=rolling_zscore&sensitivity=3",
        headers=bearer(token_for(Role.EXECUTIVE)),
    )
    assert response.status_code == 200, response.text
    document = response.json()
    assert (document["method"], document["sensitivity"], document["interval"]) == (
        "rolling_zscore", 3.0, "month"
    )  # fmt: skip
    assert [p["period"] for p in document["points"]][:2] == ["2024-01", "2024-02"]
    assert set(document["points"][0]) == {
        "period", "value", "expected", "lower", "upper", "score", "flag"
    }  # fmt: skip


def test_viewers_may_not_and_bad_parameters_are_named(
    client: TestClient, token_for: TokenFor, engine: Engine
) -> None:
    ingest(engine, events=steady_churn_events())
    viewer = client.get("/api/v1/forecast?series=mrr", headers=bearer(token_for(Role.VIEWER)))
    assert viewer.status_code == 403
    analyst = bearer(token_for(Role.ANALYST))
    for query, parameter, detail in [
        ("/forecast?series=revenue", "series", "expected one of mrr, arr, customers"),
        ("/forecast?series=kpi:nothing", "series", "no KPI named 'nothing'"),
        ("/forecast?series=mrr&horizon=0", "horizon", ""),
        ("/anomalies?series=mrr&method=prophet", "method", ""),
        ("/anomalies?series=mrr&sensitivity=-1", "sensitivity", ""),
        ("/anomalies?series=mrr&tz=Mars/Olympus", "tz", "unknown IANA time zone"),
    ]:
        response = client.get(f"/api/v1{query}", headers=analyst)
        assert response.status_code == 422, (query, response.text)
        problem = response.json()
        assert parameter in str(problem), (query, problem)
        assert detail in str(problem), (query, problem)


def flawed_company(engine: Engine) -> None:
    """Ten customers, two without a country; ten starts, one at 99 times its plan's price;
    two tickets, one closed an hour before it was opened."""
    customers = [
        customer(f"c{i}", segment="smb", acquisition_source="ads",
                 country=None if i in (3, 7) else "GB")
        for i in range(10)
    ]  # fmt: skip
    events = [
        start(f"e{i}", f"c{i}", f"s{i}", f"2024-05-{10 + i}T00:00:00Z",
              990_000 if i == 9 else 10_000, plan="pro-m", tier="standard")
        for i in range(10)
    ]  # fmt: skip
    tickets = [
        {"ticket_id": "t1", "customer_id": "c1", "opened_at": "2024-05-20T10:00:00Z",
         "closed_at": "2024-05-20T09:00:00Z", "priority": "high", "category": "billing"},
        {"ticket_id": "t2", "customer_id": "c2", "opened_at": "2024-05-21T10:00:00Z",
         "priority": "low", "category": "bug"},
    ]  # fmt: skip
    ingest(engine, customers=customers, events=events, tickets=tickets)


def without_moments(document: dict[str, Any]) -> dict[str, Any]:
    """The document less the moment it was measured and the checks' descriptions, which
    name it."""
    checks = [
        {k: v for k, v in check.items() if k != "description"} for check in document["checks"]
    ]
    return {k: v for k, v in document.items() if k != "measured_at"} | {"checks": checks}


def test_an_analyst_gets_the_data_quality_report_the_command_prints(
    client: TestClient, token_for: TokenFor, engine: Engine
) -> None:
    flawed_company(engine)
    # Ten years: the rows of 2024 are fresh, so timeliness scores 100 whenever this runs.
    response = client.get(
        "/api/v1/quality?freshness=3650d", headers=bearer(token_for(Role.ANALYST))
    )
    assert response.status_code == 200, response.text
    document = response.json()
    failing = {
        f"{c['dataset']}/{c['check']}": (c["failing"], c["total"], c["score"], c["examples"])
        for c in document["checks"]
        if c["failing"]
    }
    assert failing == {
        "customers/country given": (2, 10, 80.0, ["c3", "c7"]),
        "subscription_events/amount within its plan's norm": (1, 10, 90.0, ["e9"]),
        "support_tickets/closed after opened": (1, 2, 50.0, ["t1"]),
    }
    assert document["datasets"] == {
        "customers": {"score": 93.33, "dimensions": {"completeness": 93.33}},
        "subscription_events": {
            "score": 98.33,
            "dimensions": {"completeness": 100.0, "validity": 95.0, "timeliness": 100.0},
        },
        "support_tickets": {
            "score": 83.33,
            "dimensions": {"completeness": 100.0, "validity": 50.0, "timeliness": 100.0},
        },
        "ledger": {"score": 100.0, "dimensions": {"consistency": 100.0}},
    }
    assert document["overall"] == 93.75  # (93 1/3 + 98 1/3 + 83 1/3 + 100) / 4

    url = engine.url.render_as_string(hide_password=False)
    printed = CliRunner().invoke(
        cli, ["quality", "--freshness", "3650d", "--format", "json", "--db", url]
    )
    assert printed.exit_code == 0, printed.output
    assert without_moments(json.loads(printed.output)) == without_moments(document)


def test_the_default_freshness_is_two_days(
    client: TestClient, token_for: TokenFor, engine: Engine
) -> None:
    flawed_company(engine)
    response = client.get("/api/v1/quality", headers=bearer(token_for(Role.EXECUTIVE)))
    assert response.status_code == 200, response.text
    fresh = {c["dataset"]: c for c in response.json()["checks"] if c["check"] == "fresh"}
    # The newest event and ticket are from May 2024: far past twice the limit.
    assert {name: (c["score"], c["failing"]) for name, c in fresh.items()} == {
        "subscription_events": (0.0, 1),
        "support_tickets": (0.0, 1),
    }
    assert fresh["subscription_events"]["description"].endswith("the limit is 2 days")


def test_an_empty_database_has_no_quality_score(client: TestClient, token_for: TokenFor) -> None:
    response = client.get("/api/v1/quality", headers=bearer(token_for(Role.ANALYST)))
    assert response.status_code == 200, response.text
    assert without_moments(response.json()) == {"overall": None, "datasets": {}, "checks": []}


def test_viewers_may_not_see_data_quality_and_a_bad_freshness_is_named(
    client: TestClient, token_for: TokenFor, engine: Engine
) -> None:
    flawed_company(engine)
    viewer = client.get("/api/v1/quality", headers=bearer(token_for(Role.VIEWER)))
    assert viewer.status_code == 403
    assert viewer.json()["type"] == "https://execmetrics.dev/problems/forbidden"
    analyst = bearer(token_for(Role.ANALYST))
    for freshness in ("soon", "0d", "2w", "-1h", "100001d", "x" * 13):
        response = client.get("/api/v1/quality", params={"freshness": freshness}, headers=analyst)
        assert response.status_code == 422, (freshness, response.text)
        problem = response.json()
        assert problem["type"] == "https://execmetrics.dev/problems/invalid-parameter"
        assert problem["parameter"] == "freshness", problem
    soon = client.get("/api/v1/quality?freshness=soon", headers=analyst).json()
    assert soon["detail"] == "expected a duration such as 90d, 12h or 30m, got 'soon'"


def test_the_stored_report_is_served_while_it_is_current(
    client: TestClient, token_for: TokenFor, engine: Engine
) -> None:
    flawed_company(engine)
    ten_minutes_ago = now_micros() - 10 * 60_000_000
    with engine.begin() as connection:
        refresh_quality(connection, ten_minutes_ago)  # as the analytics job stores them
    analyst = bearer(token_for(Role.ANALYST))

    def measured_at(freshness: str = "2d") -> int:
        answer = client.get("/api/v1/quality", params={"freshness": freshness}, headers=analyst)
        assert answer.status_code == 200, answer.text
        return parse_timestamp(answer.json()["measured_at"])

    before = now_micros()
    assert measured_at() == ten_minutes_ago
    assert measured_at("3d") >= before  # another freshness limit: measured now
    ingest(engine, events=[start("e10", "c10", "s10", "2024-05-31T00:00:00Z", 10_000)])
    assert measured_at() >= before  # other data: measured now
