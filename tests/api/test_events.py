"""POST /api/v1/events/{kind}: the validation and all-or-nothing rule of `ingest`, audited
in the same transaction; GET /api/v1/ingestions."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from tests.api.conftest import TokenFor, bearer

from execmetrics.accounts.roles import Role
from execmetrics.audit.chain import verify
from execmetrics.store.tables import (
    activity_daily,
    audit_log,
    customers,
    mrr_movements,
    subscription_events,
)

CUSTOMERS = [
    {"customer_id": "c1", "name": "Rose & Thorn Florists", "country": "GB", "employees": 4},
    {"customer_id": "c2", "name": "Lakeside Venue", "country": "GB", "venue_type": "barn"},
]
EVENTS = [
    {"event_id": "e1", "customer_id": "c1", "subscription_id": "s1",
     "occurred_at": "2025-01-10T09:00:00Z", "type": "start", "plan_id": "pro-monthly",
     "amount_minor": 4900, "currency": "GBP", "interval": "month"},
    {"event_id": "e2", "customer_id": "c2", "subscription_id": "s2",
     "occurred_at": "2025-02-01", "type": "start", "plan_id": "scale-annual",
     "amount_minor": 120000, "currency": "GBP", "interval": "year"},
]  # fmt: skip


def count(engine: Engine, table: object) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_a_batch_is_ingested_and_the_ledger_rebuilt(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    headers = bearer(token_for(Role.EXECUTIVE))
    first = client.post("/api/v1/events/customers", json={"rows": CUSTOMERS}, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["counts"]["customers"] == {
        "received": 2, "inserted": 2, "unchanged": 0, "updated": 0
    }  # fmt: skip
    events = client.post(
        "/api/v1/events/subscription_events", json={"rows": EVENTS}, headers=headers
    )
    assert events.status_code == 200, events.text
    assert events.json()["ledger_movements"] == 2
    assert count(engine, mrr_movements) == 2
    # Idempotent by id: the same batch again changes nothing.
    again = client.post(
        "/api/v1/events/subscription_events", json={"rows": EVENTS}, headers=headers
    )
    assert again.json()["counts"]["subscription_events"]["unchanged"] == 2
    assert count(engine, subscription_events) == 2
    history = client.get("/api/v1/ingestions", headers=headers).json()["items"]
    assert [item["counts"]["subscription_events"]["inserted"] for item in history[:2]] == [0, 2]
    assert history[0]["actor"].startswith("token:executive-")


def test_one_bad_row_refuses_the_whole_batch(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    headers = bearer(token_for(Role.EXECUTIVE))
    client.post("/api/v1/events/customers", json={"rows": CUSTOMERS}, headers=headers)
    bad = [
        EVENTS[0],
        {**EVENTS[1], "amount_minor": 49.5},
        {**EVENTS[1], "event_id": "e3", "customer_id": "nobody"},
    ]
    response = client.post(
        "/api/v1/events/subscription_events", json={"rows": bad}, headers=headers
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("/invalid-input")
    assert [(p["line"], p["column"]) for p in problem["problems"]] == [
        (2, "amount_minor"),
        (3, "customer_id"),
    ]
    assert count(engine, subscription_events) == 0


def test_unknown_and_missing_fields_are_named(client: TestClient, token_for: TokenFor) -> None:
    headers = bearer(token_for(Role.EXECUTIVE))
    unknown = client.post(
        "/api/v1/events/fx_rates",
        json={"rows": [{"date": "2025-01-01", "currency": "EUR", "rate": "0.85", "role": "admin"}]},
        headers=headers,
    )
    missing = client.post(
        "/api/v1/events/fx_rates", json={"rows": [{"date": "2025-01-01"}]}, headers=headers
    )
    assert unknown.json()["problems"][0]["column"] == "role"
    assert missing.json()["problems"][0]["column"] in ("currency", "rate")
    nested = client.post(
        "/api/v1/events/customers", json={"rows": [{"customer_id": {"$ne": 1}}]}, headers=headers
    )
    assert nested.status_code == 422
    empty = client.post("/api/v1/events/customers", json={"rows": []}, headers=headers)
    assert empty.status_code == 422 and empty.json()["parameter"] == "rows"


def test_an_ingestion_and_its_audit_record_are_written_together(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    headers = bearer(token_for(Role.EXECUTIVE))
    client.post("/api/v1/events/customers", json={"rows": CUSTOMERS}, headers=headers)
    client.post("/api/v1/events/customers", json={"rows": [{"customer_id": ""}]}, headers=headers)
    with engine.connect() as connection:
        records = connection.execute(select(audit_log).order_by(audit_log.c.seq)).all()
        assert verify(connection).intact
    assert [(r.action, r.outcome) for r in records] == [
        ("POST /api/v1/events/{kind}", "200"),
        ("POST /api/v1/events/{kind}", "422"),
    ]
    assert records[0].parameters["inserted"] == 2
    assert count(engine, customers) == 2


def test_activity_batches_add_to_the_daily_counts_and_bad_rows_are_named(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    headers = bearer(token_for(Role.EXECUTIVE))
    client.post("/api/v1/events/customers", json={"rows": CUSTOMERS}, headers=headers)
    rows = [
        {"event_id": "a1", "customer_id": "c1", "occurred_at": "2025-03-01T10:00:00Z",
         "type": "login"},
        {"event_id": "a2", "customer_id": "c1", "occurred_at": "2025-03-01T11:00:00Z",
         "type": "gallery_upload", "quantity": 12},
    ]  # fmt: skip
    first = client.post("/api/v1/events/activity_events", json={"rows": rows}, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["counts"]["activity_events"] == {
        "received": 2, "inserted": 2, "unchanged": 0, "updated": 0,
    }  # fmt: skip
    again = client.post("/api/v1/events/activity_events", json={"rows": rows}, headers=headers)
    assert again.json()["counts"]["activity_events"]["unchanged"] == 2
    with engine.connect() as connection:
        totals = connection.execute(
            select(func.sum(activity_daily.c.events), func.sum(activity_daily.c.quantity))
        ).one()
    assert tuple(totals) == (2, 13)
    bad = client.post(
        "/api/v1/events/activity_events",
        json={"rows": [dict(rows[0], event_id="a3", customer_id="c9")]},
        headers=headers,
    )
    assert bad.status_code == 422
    [problem] = bad.json()["problems"]
    assert (problem["line"], problem["column"]) == (1, "customer_id")
    assert problem["reason"] == "unknown customer 'c9'"
