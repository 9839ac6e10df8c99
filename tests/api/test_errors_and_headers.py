"""Problem responses, bad parameters and bodies, security headers, the body size limit."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from tests.api.conftest import TokenFor, bearer, make_settings

from execmetrics.accounts.roles import Role
from execmetrics.api.app import create_app
from execmetrics.store.tables import customers

PROBLEM = "application/problem+json"


def test_a_bad_parameter_is_422_naming_it(client: TestClient, token_for: TokenFor) -> None:
    headers = bearer(token_for(Role.ADMIN))
    cases = {
        "/api/v1/metrics?from=2024-13": "from",
        "/api/v1/metrics?interval=fortnight": "interval",
        "/api/v1/metrics?tz=Mars/Olympus": "tz",
        "/api/v1/metrics?by=colour": "by",
        "/api/v1/metrics?from=2025-01&to=2024-01": "to",
        "/api/v1/customers?limit=100000": "limit",
        "/api/v1/audit?limit=0": "limit",
    }
    for path, parameter in cases.items():
        response = client.get(path, headers=headers)
        assert response.status_code == 422, path
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["parameter"] == parameter, (path, problem)
        assert problem["type"].endswith("/invalid-parameter")
        assert parameter in problem["detail"]


def test_an_oversized_date_range_is_refused(client: TestClient, token_for: TokenFor) -> None:
    response = client.get(
        "/api/v1/metrics?from=1900-01&to=2099-12", headers=bearer(token_for(Role.ANALYST))
    )
    assert response.status_code == 422
    assert response.json()["parameter"] == "from"


@pytest.mark.parametrize(
    "value", ["'; DROP TABLE customers; --", "1 OR 1=1", '" OR ""="', "%27%3B", "segment--"]
)
def test_sql_metacharacters_in_parameters_change_nothing(
    engine: Engine, client: TestClient, token_for: TokenFor, value: str
) -> None:
    headers = bearer(token_for(Role.ADMIN))
    with engine.connect() as connection:
        before = connection.execute(select(func.count()).select_from(customers)).scalar_one()
    for name in ("from", "to", "by", "tz", "interval"):
        response = client.get("/api/v1/metrics", params={name: value}, headers=headers)
        assert response.status_code == 422, (name, response.text)
    for path in (f"/api/v1/customers/{value}", "/api/v1/customers"):
        response = client.get(path, params={"after": value}, headers=headers)
        assert response.status_code in (200, 404, 422)
    assert (
        client.get("/api/v1/audit", params={"action": value}, headers=headers).json()["items"] == []
    )
    with engine.connect() as connection:
        after = connection.execute(select(func.count()).select_from(customers)).scalar_one()
    assert after == before


def test_extra_fields_in_a_body_are_refused_including_a_role(
    client: TestClient, token_for: TokenFor
) -> None:
    headers = bearer(token_for(Role.ADMIN))
    smuggled = client.post(
        "/api/v1/tokens", json={"name": "t", "role": "viewer", "is_admin": True}, headers=headers
    )
    assert smuggled.status_code == 422
    assert smuggled.json()["parameter"] == "is_admin"
    batch = client.post(
        "/api/v1/events/customers", json={"rows": [{"customer_id": "c1"}], "role": "admin"},
        headers=bearer(token_for(Role.EXECUTIVE)),
    )  # fmt: skip
    assert batch.status_code == 422
    assert batch.json()["parameter"] == "role"


def test_no_stack_trace_or_sql_reaches_a_client(engine: Engine, token_for: TokenFor) -> None:
    app = create_app(make_settings(engine), engine)

    @app.get("/api/v1/boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("SELECT secret FROM somewhere")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "SELECT" not in response.text and "Traceback" not in response.text
    assert response.json()["type"].endswith("/internal-error")


def test_every_response_carries_the_security_headers(
    client: TestClient, token_for: TokenFor
) -> None:
    for path, headers in [
        ("/healthz", {}),
        ("/api/v1/summary", {}),
        ("/api/v1/ingestions", bearer(token_for(Role.ANALYST))),
        ("/sign-in", {}),
        ("/nope", {}),
    ]:
        response = client.get(path, headers=headers)
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "permissions-policy" in response.headers
        assert response.headers["cache-control"] == "no-store"
        assert len(response.headers["x-request-id"]) >= 8
        # Served over plain http here: no HSTS.
        assert "strict-transport-security" not in response.headers


def test_hsts_is_sent_over_https(engine: Engine) -> None:
    with TestClient(
        create_app(make_settings(engine), engine), base_url="https://testserver"
    ) as client:
        response = client.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_a_given_request_id_is_echoed_and_a_bad_one_replaced(client: TestClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123-def"}).headers["x-request-id"]
        == "abc-123-def"
    )
    replaced = client.get("/healthz", headers={"X-Request-ID": "bad id\x7f"}).headers[
        "x-request-id"
    ]
    assert replaced != "bad id\x7f" and len(replaced) == 32


def test_cors_is_off_unless_an_allow_list_is_configured(engine: Engine, client: TestClient) -> None:
    origin = {"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"}
    assert (
        "access-control-allow-origin"
        not in client.options("/api/v1/summary", headers=origin).headers
    )
    allowed = create_app(make_settings(engine, cors_origins="https://board.example.com"), engine)
    with TestClient(allowed) as cors_client:
        ok = cors_client.options(
            "/api/v1/summary",
            headers={"Origin": "https://board.example.com", "Access-Control-Request-Method": "GET"},
        )
        refused = cors_client.options("/api/v1/summary", headers=origin)
    assert ok.headers["access-control-allow-origin"] == "https://board.example.com"
    assert "access-control-allow-origin" not in refused.headers


def test_a_body_over_the_limit_is_413(engine: Engine, token_for: TokenFor) -> None:
    app = create_app(make_settings(engine, max_body_bytes=2048), engine)
    headers = bearer(token_for(Role.EXECUTIVE))
    rows = [{"customer_id": f"c{i}", "name": "x" * 50} for i in range(100)]
    with TestClient(app) as client:
        declared = client.post("/api/v1/events/customers", json={"rows": rows}, headers=headers)

        def chunks():  # no Content-Length: the limit applies while reading
            yield b'{"rows": ['
            for _ in range(100):
                yield b'{"customer_id": "c", "name": "' + b"x" * 50 + b'"},'
            yield b'{"customer_id": "z"}]}'

        streamed = client.post(
            "/api/v1/events/customers", content=chunks(),
            headers={**headers, "Content-Type": "application/json"},
        )  # fmt: skip
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert declared.headers["content-type"] == PROBLEM
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(customers)).scalar_one() == 0
