"""The scheduler inside the server: started with it, evaluating right after an ingestion
through the API (and after the data quality report the analytics job then measures), and
stopped with it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from tests.api.conftest import TokenFor, bearer, make_settings

from execmetrics.accounts.roles import Role
from execmetrics.analytics.quality_store import latest_quality
from execmetrics.api.app import create_app
from execmetrics.kpi.evaluation import kpi_values
from execmetrics.metrics.cache import data_version
from execmetrics.store.tables import alert_instances, leases

CONFIG = {
    "rules": [
        {
            "name": "mrr-floor",
            "kpi": "mrr",
            "condition": {"kind": "threshold", "below": "1000000"},
        }
    ]
}


def month_start() -> str:
    today = datetime.now(UTC)
    return f"{today.year:04d}-{today.month:02d}-01T00:00:00Z"


def wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the scheduler did not act in time"
        time.sleep(0.1)


def ingest_one_customer(client: TestClient, headers: dict[str, str]) -> None:
    event = {
        "event_id": "e1", "customer_id": "c1", "subscription_id": "s1",
        "occurred_at": month_start(), "type": "start", "plan_id": "pro",
        "amount_minor": 4900, "currency": "GBP", "interval": "month",
    }  # fmt: skip
    for kind, row in [("customers", {"customer_id": "c1"}), ("subscription_events", event)]:
        answer = client.post(f"/api/v1/events/{kind}", json={"rows": [row]}, headers=headers)
        assert answer.status_code == 200, answer.text


def test_an_ingestion_wakes_the_servers_scheduler(engine: Engine, token_for: TokenFor) -> None:
    # A tick an hour apart: only the ingestion can make the scheduler act within the test.
    settings = make_settings(engine, scheduler=True, scheduler_tick_seconds=3600)
    headers = bearer(token_for(Role.EXECUTIVE))
    with TestClient(create_app(settings, engine)) as client:
        with engine.connect() as connection:
            wait_for(lambda: connection.execute(select(leases.c.holder)).first() is not None)
        assert client.post("/api/v1/kpis/apply", json=CONFIG, headers=headers).status_code == 200
        ingest_one_customer(client, headers)

        def fired() -> bool:
            with engine.connect() as connection:
                phase = connection.execute(select(alert_instances.c.phase)).scalar()
            return phase == "firing"

        wait_for(fired)
    # Stopped with the server: its lease is given up.
    with engine.connect() as connection:
        assert connection.execute(select(leases)).first() is None


def test_an_ingestion_has_the_data_quality_measured_and_its_kpi_evaluated(
    engine: Engine, token_for: TokenFor
) -> None:
    # The scheduler's tick an hour apart, the analytics job's first check a minute after
    # start-up: only the ingestion can have the report measured and read within seconds.
    settings = make_settings(engine, scheduler=True, scheduler_tick_seconds=3600)
    headers = bearer(token_for(Role.EXECUTIVE))
    with TestClient(create_app(settings, engine)) as client:
        ingest_one_customer(client, headers)

        def measured() -> bool:
            with engine.connect() as connection:
                found = latest_quality(connection)
                return found is not None and found.data_version == data_version(connection)

        wait_for(measured, 30.0)
        with engine.connect() as connection:
            report = latest_quality(connection)
        assert report is not None and report.report.overall is not None

        def evaluated() -> bool:
            with engine.connect() as connection:
                rows = kpi_values(connection, "data_quality")
            return bool(rows) and rows[-1]["data_version"].endswith(f"@{report.measured_at}")

        wait_for(evaluated, 30.0)
        with engine.connect() as connection:
            newest = kpi_values(connection, "data_quality")[-1]
        assert newest["value"] == report.report.overall
