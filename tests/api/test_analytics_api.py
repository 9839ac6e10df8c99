"""GET /api/v1/forecast and /api/v1/anomalies: the command line's documents, for analysts
and above, and a 422 that names the parameter."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.api.conftest import TokenFor, bearer
from tests.builders import ingest, start
from tests.builders import kpi_definition as kpi
from tests.metrics.scenarios import steady_churn_events

from execmetrics.accounts.roles import Role
from execmetrics.kpi.evaluation import record_evaluations
from execmetrics.kpi.service import apply_kpis


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
