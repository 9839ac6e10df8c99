"""GET /api/v1/segments and /api/v1/segments/customers: the newest stored segmentation for
analysts, each customer's segment for executives and admins only."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.analytics.test_churn_features import AS_OF as FEW_CUSTOMERS_AS_OF
from tests.analytics.test_churn_features import company as company
from tests.analytics.test_segments_company import AS_OF, kind_of, population
from tests.api.conftest import TokenFor, bearer

from execmetrics.accounts.roles import Role
from execmetrics.analytics.churn_weights import DEFAULT_WEIGHTS
from execmetrics.analytics.jobs import run_daily_analytics
from execmetrics.timeutil import date_to_micros

NOW = date_to_micros(AS_OF) + 6 * 3600 * 10**6


def segmented(engine: Engine) -> None:
    """The population of five kinds of customer, segmented by the daily job at 06:00."""
    population(engine)
    with engine.begin() as connection:
        run_daily_analytics(connection, AS_OF, NOW, 60, DEFAULT_WEIGHTS)


def test_before_any_segmentation_both_routes_say_so(
    client: TestClient, token_for: TokenFor
) -> None:
    headers = bearer(token_for(Role.EXECUTIVE))
    for path in ("/api/v1/segments", "/api/v1/segments/customers"):
        response = client.get(path, headers=headers)
        assert response.status_code == 404, path
        assert response.json()["detail"] == (
            "no customer segments yet: the daily analytics job stores them once a day"
        )


def test_with_too_few_customers_the_404_gives_the_reason(
    company: Engine, client: TestClient, token_for: TokenFor
) -> None:
    with company.begin() as connection:
        day = FEW_CUSTOMERS_AS_OF
        run_daily_analytics(connection, day, date_to_micros(day), 60, DEFAULT_WEIGHTS)
    response = client.get("/api/v1/segments", headers=bearer(token_for(Role.ANALYST)))
    assert response.status_code == 404
    assert response.json()["detail"] == (
        "no customer segments yet: the daily analytics job could not make them as of "
        "2025-06-01: k: expected 2 to 2 for 3 rows, got 5"
    )


def test_analysts_read_the_summary_and_viewers_are_refused(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    segmented(engine)
    viewer = client.get("/api/v1/segments", headers=bearer(token_for(Role.VIEWER)))
    assert viewer.status_code == 403
    document = client.get("/api/v1/segments", headers=bearer(token_for(Role.ANALYST))).json()
    assert (document["run"], document["as_of"], document["computed_at"]) == (
        1, "2025-06-01", "2025-06-01T06:00:00Z",
    )  # fmt: skip
    assert (document["k"], document["chosen_by"], document["rows"], document["currency"]) == (
        5, "default", 30, "GBP",
    )  # fmt: skip
    assert 0.5 < document["silhouette"] <= 1 and document["notes"] == []
    assert [(s["segment"], s["name"], s["size"]) for s in document["segments"]] == [
        (1, "steady", 8), (2, "inactive", 7), (3, "at risk", 6), (4, "new", 5),
        (5, "power users", 4),
    ]  # fmt: skip
    power = document["segments"][4]
    # 4 power users at 20,000 pence + 100 x (0 + 1 + 2 + 3); the median member's MRR 20,150.
    assert (power["share"], power["mrr"], power["centre"]["mrr"]) == (0.1333, 80_600, 20_150)
    assert power["centre"]["logins_30d"] == 20 and power["centre"]["feature_breadth_90d"] == 6
    assert set(power["centroid"]) == set(power["centre"])
    assert document["segments"][2]["centre"]["tickets_90d"] == 6  # at risk


def test_customers_segments_are_for_executives_and_paged(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    segmented(engine)
    analyst = client.get("/api/v1/segments/customers", headers=bearer(token_for(Role.ANALYST)))
    assert analyst.status_code == 403
    executive = bearer(token_for(Role.EXECUTIVE))
    everyone = client.get("/api/v1/segments/customers?limit=1000", headers=executive).json()
    assert (everyone["run"], everyone["segment"], everyone["customers"]) == (1, None, 30)
    assert all(item["name"] == kind_of(item["customer_id"]) for item in everyone["items"])
    page = client.get(
        "/api/v1/segments/customers?segment=5&limit=2&offset=1", headers=executive
    ).json()
    assert (page["segment"], page["customers"], page["as_of"]) == (5, 4, "2025-06-01")
    assert page["items"] == [
        {"customer_id": "power_users-1", "segment": 5, "name": "power users"},
        {"customer_id": "power_users-2", "segment": 5, "name": "power users"},
    ]


def test_bad_parameters_are_named(engine: Engine, client: TestClient, token_for: TokenFor) -> None:
    segmented(engine)
    headers = bearer(token_for(Role.ADMIN))
    for query, parameter in [
        ("segment=0", "segment"),
        ("segment=two", "segment"),
        ("segment=6", "segment"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("offset=-1", "offset"),
    ]:
        response = client.get(f"/api/v1/segments/customers?{query}", headers=headers)
        assert response.status_code == 422, query
        assert response.json()["parameter"] == parameter, query
    beyond = client.get("/api/v1/segments/customers?segment=6", headers=headers).json()
    assert beyond["detail"] == "expected 1 to 5, the newest segmentation's segments; got 6"
