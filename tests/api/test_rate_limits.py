"""Rate limits per identity, in memory or in Redis shared by several server processes;
sign-in lockout with back-off; behaviour when Redis is unreachable."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.api.conftest import TokenFor, bearer, make_settings

from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import create_token, create_user
from execmetrics.api.app import create_app
from execmetrics.store.database import open_database

REDIS_URL = os.environ.get("EXECMETRICS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_the_101st_executive_request_in_an_hour_is_429(
    engine: Engine, token_for: TokenFor, backend: str
) -> None:
    settings = make_settings(engine, redis_url=REDIS_URL if backend == "redis" else None)
    headers = bearer(token_for(Role.EXECUTIVE))
    with TestClient(create_app(settings, engine)) as client:
        statuses = [client.get("/api/v1/ingestions", headers=headers) for _ in range(101)]
        # Health checks and static assets never count.
        assert client.get("/healthz").status_code == 200
    assert [r.status_code for r in statuses[:100]] == [200] * 100
    assert statuses[99].headers["ratelimit-limit"] == "100"
    assert statuses[99].headers["ratelimit-remaining"] == "0"
    refused = statuses[100]
    assert refused.status_code == 429
    assert refused.json()["type"].endswith("/rate-limited")
    assert 3500 <= int(refused.headers["retry-after"]) <= 3600
    assert refused.headers["ratelimit-remaining"] == "0"


def test_limits_are_per_identity_and_per_role(engine: Engine, token_for: TokenFor) -> None:
    settings = make_settings(engine, rate_limit_analyst=3, rate_limit_admin=5)
    analyst, other, admin = (
        bearer(token_for(role)) for role in (Role.ANALYST, Role.ANALYST, Role.ADMIN)
    )
    with TestClient(create_app(settings, engine)) as client:
        assert [
            client.get("/api/v1/ingestions", headers=analyst).status_code for _ in range(4)
        ] == [200, 200, 200, 429]
        assert client.get("/api/v1/ingestions", headers=other).status_code == 200
        assert [client.get("/api/v1/ingestions", headers=admin).status_code for _ in range(6)] == [
            200
        ] * 5 + [429]


def test_reads_fail_open_when_redis_is_unreachable(engine: Engine, token_for: TokenFor) -> None:
    settings = make_settings(engine, redis_url=UNREACHABLE_REDIS)
    with TestClient(create_app(settings, engine)) as client:
        response = client.get("/api/v1/ingestions", headers=bearer(token_for(Role.ANALYST)))
    assert response.status_code == 200


def _sign_in(client: TestClient, email: str, password: str) -> httpx.Response:
    form = client.get("/sign-in").text
    csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return client.post(
        "/sign-in",
        data={"email": email, "password": password, "csrf": csrf},
        follow_redirects=False,
    )


def test_sign_in_fails_closed_when_redis_is_unreachable(engine: Engine) -> None:
    with engine.begin() as connection:
        create_user(connection, "ceo@example.com", PASSWORD, Role.EXECUTIVE)
    settings = make_settings(engine, redis_url=UNREACHABLE_REDIS)
    with TestClient(create_app(settings, engine)) as client:
        response = _sign_in(client, "ceo@example.com", PASSWORD)
    assert response.status_code == 503


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_repeated_wrong_passwords_lock_the_account_out(engine: Engine, backend: str) -> None:
    email = f"cfo-{backend}-{time.time_ns()}@example.com"
    if backend == "redis":
        # Failures of the test client's address from earlier runs stay in Redis for a window.
        redis.Redis.from_url(REDIS_URL).delete("execmetrics:rl:signin-client:testclient")
    with engine.begin() as connection:
        create_user(connection, email, PASSWORD, Role.EXECUTIVE)
    settings = make_settings(
        engine, redis_url=REDIS_URL if backend == "redis" else None, signin_attempts_per_account=3
    )
    with TestClient(create_app(settings, engine)) as client:
        wrong = [_sign_in(client, email, "wrong password!!").status_code for _ in range(3)]
        locked = _sign_in(client, email, PASSWORD)
    assert wrong == [401, 401, 401]
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["retry-after"]) <= 60


def test_sign_in_attempts_are_limited_per_client_address(engine: Engine) -> None:
    settings = make_settings(engine, signin_attempts_per_client=4)
    with TestClient(create_app(settings, engine)) as client:
        statuses = [
            _sign_in(client, f"nobody{i}@example.com", "wrong password!!").status_code
            for i in range(5)
        ]
    assert statuses == [401, 401, 401, 401, 429]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[list[str], str]]:
    """Two `execmetrics serve` processes on one SQLite database and one Redis."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = open_database(url)
    with engine.begin() as connection:
        token, _ = create_token(connection, f"shared-{time.time_ns()}", Role.EXECUTIVE, 10**10)
    engine.dispose()
    command = str(Path(sys.executable).parent / "execmetrics")
    env = {
        **os.environ,
        "EXECMETRICS_REDIS_URL": REDIS_URL,
        "EXECMETRICS_RATE_LIMIT_EXECUTIVE": "6",
    }
    ports = [_free_port(), _free_port()]
    servers = [
        subprocess.Popen(
            [command, "serve", "--port", str(port), "--db", url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for base in bases:
            for _ in range(100):
                try:
                    if httpx.get(base + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
        yield bases, token
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)


def test_two_server_processes_sharing_redis_share_one_limit(
    two_servers: tuple[list[str], str],
) -> None:
    bases, token = two_servers
    statuses = [
        httpx.get(bases[i % 2] + "/api/v1/ingestions", headers=bearer(token)).status_code
        for i in range(8)
    ]
    assert statuses == [200] * 6 + [429, 429]
