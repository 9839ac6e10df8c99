"""The scheduler inside the server: started with it, evaluating right after an ingestion
through the API, and stopped with it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from tests.api.conftest import TokenFor, bearer, make_settings

from execmetrics.accounts.roles import Role
from execmetrics.api.app import create_app
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


def test_an_ingestion_wakes_the_servers_scheduler(engine: Engine, token_for: TokenFor) -> None:
    # A tick an hour apart: only the ingestion can make the scheduler act within the test.
    settings = make_settings(engine, scheduler=True, scheduler_tick_seconds=3600)
    headers = bearer(token_for(Role.EXECUTIVE))
    with TestClient(create_app(settings, engine)) as client:
        with engine.connect() as connection:
            wait_for(lambda: connection.execute(select(leases.c.holder)).first() is not None)
        assert client.post("/api/v1/kpis/apply", json=CONFIG, headers=headers).status_code == 200
        event = {
            "event_id": "e1", "customer_id": "c1", "subscription_id": "s1",
            "occurred_at": month_start(), "type": "start", "plan_id": "pro",
            "amount_minor": 4900, "currency": "GBP", "interval": "month",
        }  # fmt: skip
        for kind, row in [("customers", {"customer_id": "c1"}), ("subscription_events", event)]:
            answer = client.post(f"/api/v1/events/{kind}", json={"rows": [row]}, headers=headers)
            assert answer.status_code == 200, answer.text

        def fired() -> bool:
            with engine.connect() as connection:
                phase = connection.execute(select(alert_instances.c.phase)).scalar()
            return phase == "firing"

        wait_for(fired)
    # Stopped with the server: its lease is given up.
    with engine.connect() as connection:
        assert connection.execute(select(leases)).first() is None
