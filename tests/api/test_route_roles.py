"""Default deny: every route declares the least role it admits, and admits exactly the roles
from it upwards; a route that declares none must be on the public list."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount
from tests.api.conftest import TokenFor, bearer

from execmetrics.accounts.roles import Role
from execmetrics.api.deps import PUBLIC_ROUTES, required_role

SAMPLE_PATH_VALUES = {"kind": "customers", "customer_id": "cus_000001", "name": "nobody"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: SAMPLE_PATH_VALUES.get(m[1], "x"), path)


def all_routes(app: FastAPI) -> list[BaseRoute]:
    # Included routers are resolved lazily; this yields every route they hold.
    return [context.route for context in iter_route_contexts(app.routes)]


def guarded_routes(app: FastAPI) -> list[tuple[str, str, Role]]:
    found = []
    for route in all_routes(app):
        if isinstance(route, APIRoute):
            role = required_role(route)
            if role is not None:
                found.extend((method, route.path, role) for method in sorted(route.methods))
    return found


def test_every_route_declares_a_role_or_is_public(app: FastAPI) -> None:
    undeclared = []
    for route in all_routes(app):
        if isinstance(route, Mount):
            assert route.path in PUBLIC_ROUTES, route.path
        elif isinstance(route, APIRoute) and required_role(route) is None:
            if route.path not in PUBLIC_ROUTES:
                undeclared.append(route.path)
        elif not isinstance(route, APIRoute):
            # OpenAPI schema and other framework routes.
            assert getattr(route, "path", None) in PUBLIC_ROUTES, route
    assert undeclared == []
    assert len(guarded_routes(app)) >= 15


def request(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    body = {} if method in ("POST", "PUT", "PATCH") else None
    response = client.request(
        method, concrete(path), headers=headers, json=body, follow_redirects=False
    )
    return response.status_code


@pytest.mark.parametrize("role", list(Role))
def test_each_route_admits_exactly_the_roles_it_declares(
    app: FastAPI, client: TestClient, token_for: TokenFor, role: Role
) -> None:
    outcomes = {}
    for method, path, required in guarded_routes(app):
        # A new identity per route, so no rate limit is reached.
        status = request(client, method, path, bearer(token_for(role)))
        allowed = role.includes(required)
        outcomes[(method, path)] = (status, allowed)
    refused = {key: s for key, (s, allowed) in outcomes.items() if not allowed and s != 403}
    wrongly_refused = {
        key: s for key, (s, allowed) in outcomes.items() if allowed and s in (401, 403)
    }
    assert refused == {}
    assert wrongly_refused == {}


def test_every_guarded_route_refuses_anonymous_callers(app: FastAPI, client: TestClient) -> None:
    for method, path, _ in guarded_routes(app):
        status = request(client, method, path, {})
        expected = 303 if not path.startswith("/api/") and method == "GET" else 401
        if not path.startswith("/api/") and method == "POST":
            expected = 303  # a page form without a session goes back to sign-in
        assert status == expected, (method, path, status)


def test_a_wrong_method_is_405_and_an_unknown_route_404(client: TestClient) -> None:
    assert client.delete("/api/v1/summary").status_code == 405
    assert client.put("/api/v1/metrics").status_code == 405
    unknown = client.get("/api/v1/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
