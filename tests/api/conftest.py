"""Fixtures for the server: an app on each database, API tokens per role, demo data."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import create_token
from execmetrics.api.app import create_app
from execmetrics.config import Settings
from execmetrics.demo import DemoSpec, write_demo
from execmetrics.ingest.service import ingest_files

DAY = 86_400 * 10**6


def make_settings(engine: Engine, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": engine.url.render_as_string(hide_password=False),
        "redis_url": None,
        "environment": "development",
        "scheduler": False,  # tests that want it start it themselves
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def app(engine: Engine) -> FastAPI:
    return create_app(make_settings(engine), engine)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


TokenFor = Callable[[Role], str]


@pytest.fixture
def token_for(engine: Engine) -> TokenFor:
    """A new API token of a role (a new identity, with its own rate limit, on every call)."""

    def make(role: Role) -> str:
        with engine.begin() as connection:
            token, _ = create_token(connection, f"{role.value}-{uuid.uuid4().hex[:8]}", role, DAY)
        return token

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def load_demo(engine: Engine, folder: Path, customers: int = 150) -> None:
    write_demo(DemoSpec(customers=customers, months=30, seed=11, end_month=None), folder)
    ingest_files(engine, [folder])


@pytest.fixture
def demo_engine(engine: Engine, tmp_path: Path) -> Engine:
    load_demo(engine, tmp_path / "demo")
    return engine
