"""Identities: API tokens (expiring, revocable), external JWTs (HS256, RS256, ES256)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from tests.api.conftest import TokenFor, bearer, make_settings

from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import create_token, revoke_token
from execmetrics.api.app import create_app
from execmetrics.store.tables import api_tokens

SECRET = "a-shared-secret-of-at-least-32-characters!"


def test_a_token_is_stored_only_as_its_hash(engine: Engine) -> None:
    with engine.begin() as connection:
        token, _ = create_token(connection, "board-pack", Role.EXECUTIVE, 10**9)
        stored = connection.execute(select(api_tokens)).one()
    assert token.startswith("emt_") and len(token) >= 4 + 43  # 256 bits, base64url
    assert token not in json.dumps([str(v) for v in stored])
    assert stored.token_hash != token


def test_expired_and_revoked_tokens_are_401(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    token = token_for(Role.EXECUTIVE)
    assert client.get("/api/v1/ingestions", headers=bearer(token)).status_code == 200
    with engine.begin() as connection:
        connection.execute(update(api_tokens).values(expires_at=1))
    expired = client.get("/api/v1/ingestions", headers=bearer(token))
    assert expired.status_code == 401
    assert expired.json()["type"].endswith("/not-authenticated")

    other = token_for(Role.EXECUTIVE)
    with engine.begin() as connection:
        # The only unexpired token is the new one.
        row = connection.execute(select(api_tokens.c.name).where(api_tokens.c.expires_at > 1)).one()
        revoke_token(connection, row.name)
    assert client.get("/api/v1/ingestions", headers=bearer(other)).status_code == 401


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer emt_not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer a.b.c", "token"],
)
def test_malformed_or_unknown_credentials_are_401(client: TestClient, header: str) -> None:
    response = client.get("/api/v1/summary", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_viewer_token_on_every_executive_route_is_403(
    client: TestClient, token_for: TokenFor
) -> None:
    viewer = bearer(token_for(Role.VIEWER))
    for method, path in [
        ("GET", "/api/v1/metrics"), ("GET", "/api/v1/cohorts"), ("GET", "/api/v1/customers"),
        ("GET", "/api/v1/customers/cus_1"), ("POST", "/api/v1/events/customers"),
        ("GET", "/api/v1/ingestions"), ("GET", "/api/v1/audit"), ("GET", "/api/v1/tokens"),
    ]:  # fmt: skip
        response = client.request(
            method, path, headers=viewer, json={"rows": [{"customer_id": "x"}]}
        )
        assert response.status_code == 403, (method, path)
        assert response.json()["type"].endswith("/forbidden")


# JWTs from an external identity provider.


def _claims(**changes: Any) -> dict[str, Any]:
    claims = {
        "sub": "user-123",
        "aud": "execmetrics",
        "iss": "https://auth.example.com",
        "exp": int(time.time()) + 300,
        "execmetrics_role": "analyst",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def jwt_client(engine: Engine, tmp_path: Path) -> tuple[TestClient, dict[str, Any]]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    rsa_jwk.update(kid="rsa-1", alg="RS256", use="sig")
    ec_jwk.update(kid="ec-1", alg="ES256", use="sig")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [rsa_jwk, ec_jwk]}))
    settings = make_settings(
        engine, jwt_secret=SECRET, jwt_jwks_file=jwks, jwt_audience="execmetrics",
        jwt_issuer="https://auth.example.com",
    )  # fmt: skip
    client = TestClient(create_app(settings, engine))
    return client, {"rsa": rsa_key, "ec": ec_key}


def _status(client: TestClient, token: str) -> int:
    return client.get("/api/v1/ingestions", headers=bearer(token)).status_code


def test_jwts_signed_with_each_accepted_algorithm_authenticate(
    jwt_client: tuple[TestClient, dict[str, Any]],
) -> None:
    client, keys = jwt_client
    assert _status(client, jwt.encode(_claims(), SECRET, algorithm="HS256")) == 200
    rs = jwt.encode(_claims(), keys["rsa"], algorithm="RS256", headers={"kid": "rsa-1"})
    es = jwt.encode(_claims(), keys["ec"], algorithm="ES256", headers={"kid": "ec-1"})
    assert _status(client, rs) == 200
    assert _status(client, es) == 200
    # The role claim decides what the caller may do.
    viewer = jwt.encode(_claims(execmetrics_role="viewer"), SECRET, algorithm="HS256")
    assert _status(client, viewer) == 403


def test_bad_jwts_are_refused(jwt_client: tuple[TestClient, dict[str, Any]]) -> None:
    client, keys = jwt_client
    header = jwt.utils.base64url_encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(_claims()).encode())
    unsigned = f"{header.decode()}.{payload.decode()}."
    refused = {
        "alg none": unsigned,
        "wrong signature": jwt.encode(
            _claims(), "another-secret-that-is-long-enough-xx", algorithm="HS256"
        ),
        "expired": jwt.encode(_claims(exp=int(time.time()) - 10), SECRET, algorithm="HS256"),
        "no expiry": jwt.encode(_claims(exp=None), SECRET, algorithm="HS256"),
        "wrong audience": jwt.encode(_claims(aud="someone-else"), SECRET, algorithm="HS256"),
        "wrong issuer": jwt.encode(
            _claims(iss="https://evil.example.com"), SECRET, algorithm="HS256"
        ),
        "missing role": jwt.encode(_claims(execmetrics_role=None), SECRET, algorithm="HS256"),
        "unknown role": jwt.encode(
            _claims(execmetrics_role="superuser"), SECRET, algorithm="HS256"
        ),
        "unknown key": jwt.encode(
            _claims(), keys["rsa"], algorithm="RS256", headers={"kid": "other"}
        ),
        "HS384": jwt.encode(_claims(), SECRET, algorithm="HS384"),
    }
    statuses = {name: _status(client, token) for name, token in refused.items()}
    assert statuses == {name: 401 for name in refused}


def test_without_jwt_settings_a_jwt_is_refused(client: TestClient) -> None:
    token = jwt.encode(_claims(), SECRET, algorithm="HS256")
    assert _status(client, token) == 401
