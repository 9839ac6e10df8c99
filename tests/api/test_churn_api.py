"""GET /api/v1/churn/model and /api/v1/churn/risk: the newest model for analysts, customers'
risk for executives and admins only."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.analytics.test_churn_features import AS_OF
from tests.analytics.test_churn_features import company as company
from tests.api.conftest import TokenFor, bearer

from execmetrics.accounts.roles import Role
from execmetrics.analytics.churn_weights import DEFAULT_WEIGHTS
from execmetrics.analytics.jobs import run_daily_analytics
from execmetrics.timeutil import date_to_micros


def test_before_any_scoring_both_routes_say_so(client: TestClient, token_for: TokenFor) -> None:
    headers = bearer(token_for(Role.EXECUTIVE))
    risk = client.get("/api/v1/churn/risk", headers=headers)
    assert risk.status_code == 404 and "no churn scores yet" in risk.json()["detail"]
    assert client.get("/api/v1/churn/model", headers=headers).status_code == 404


def test_risk_is_for_executives_and_the_model_for_analysts(
    company: Engine, client: TestClient, token_for: TokenFor
) -> None:
    with company.begin() as connection:
        run_daily_analytics(connection, AS_OF, date_to_micros(AS_OF), 60, DEFAULT_WEIGHTS)
    analyst = bearer(token_for(Role.ANALYST))
    assert client.get("/api/v1/churn/risk", headers=analyst).status_code == 403
    model = client.get("/api/v1/churn/model", headers=analyst).json()
    assert (model["version"], model["method"], model["horizon_days"]) == (1, "weighted_score", 60)
    assert model["reason"].startswith("too little labelled history")
    page = client.get(
        "/api/v1/churn/risk?limit=2&offset=1", headers=bearer(token_for(Role.EXECUTIVE))
    ).json()
    assert (page["customers"], page["as_of"], page["currency"]) == (3, "2025-06-01", "GBP")
    # Riskiest first: c2, then c4 (no activity at all), then c1; this page is the last two.
    assert [item["customer_id"] for item in page["items"]] == ["c4", "c1"]
    assert page["items"][1]["factors"][0] == "1 urgent or high-priority ticket in 90 days"
    assert page["items"][1]["mrr"] == 7800


def test_bad_paging_is_named(client: TestClient, token_for: TokenFor) -> None:
    response = client.get("/api/v1/churn/risk?limit=0", headers=bearer(token_for(Role.ADMIN)))
    assert response.status_code == 422 and "limit" in response.text
