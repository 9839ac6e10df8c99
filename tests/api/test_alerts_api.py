"""The alerting routes: configuration through the API, rules, policies and channels with
write-only secrets, alerts with their history and deliveries, acknowledgement, silences, the
outbox's dead letters, and a user's own notifications and preferences."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from tests.api.conftest import TokenFor, bearer
from tests.builders import ingest, start

from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import create_session, create_user
from execmetrics.alerts.engine import evaluate_rules
from execmetrics.alerts.messages import AlertContext
from execmetrics.config import DEVELOPMENT_SECRET
from execmetrics.kpi.evaluation import record_evaluations
from execmetrics.notify.outbox import dispatch_due
from execmetrics.store.tables import audit_log

CONFIG: dict[str, Any] = {
    "channels": [
        {
            "name": "finance",
            "kind": "webhook",
            "url": "https://hooks.example/finance",
            "secret": "finance-hook-signing-secret",
        }
    ],
    "policies": [
        {
            "name": "revenue",
            "levels": [{"delay_minutes": 0, "recipients": ["user:cfo@example.com"]}],
        }
    ],
    "rules": [
        {
            "name": "mrr-floor",
            "kpi": "mrr",
            "severity": "critical",
            "condition": {"kind": "threshold", "below": "200000"},
            "notify": ["channel:finance"],
            "policy": "revenue",
        }
    ],
}


def apply(client: TestClient, token: str, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/kpis/apply", json=body, headers=bearer(token))


def firing_alert(engine: Engine, client: TestClient, token_for: TokenFor) -> dict[str, Any]:
    """An alert that fired: MRR of 1,000.00 below a floor of 2,000.00."""
    assert apply(client, token_for(Role.EXECUTIVE), CONFIG).status_code == 200
    ingest(engine, events=[start("e1", "c1", "s1", "2024-01-10T00:00:00Z", 100_000)])
    with engine.begin() as connection:
        record_evaluations(connection, date(2024, 3, 15), periods=2)
        evaluate_rules(connection, AlertContext("https://metrics.example", DEVELOPMENT_SECRET))
    [alert] = client.get(
        "/api/v1/alerts?firing=true", headers=bearer(token_for(Role.VIEWER))
    ).json()
    return dict(alert)


def test_configuration_through_the_api_with_write_only_secrets(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    answer = apply(client, token_for(Role.ADMIN), CONFIG)
    assert answer.status_code == 200, answer.text
    assert answer.json()["rules"]["created"] == ["mrr-floor"]
    assert "kpis" not in answer.json()  # a section left out is left alone
    viewer = bearer(token_for(Role.VIEWER))
    [rule] = client.get("/api/v1/rules", headers=viewer).json()
    assert rule["condition"] == {"kind": "threshold", "below": "200000", "above": None,
                                 "recover_below": None, "recover_above": None}  # fmt: skip
    [policy] = client.get("/api/v1/policies", headers=viewer).json()
    assert policy["levels"][0]["recipients"] == ["user:cfo@example.com"]
    [channel] = client.get("/api/v1/channels", headers=viewer).json()
    assert channel["settings"]["secret"] == {"set": True}
    assert "finance-hook-signing-secret" not in str(
        client.get("/api/v1/channels", headers=viewer).text
    )
    # Editing without the secret keeps it; the audit trail names what changed, not secrets.
    edited = CONFIG["channels"][0] | {"secret": None, "url": "https://hooks.example/v2"}
    answer = apply(client, token_for(Role.EXECUTIVE), {"channels": [edited]})
    assert answer.json()["channels"]["changed"]["finance"] == [
        {
            "field": "url",
            "before": "https://hooks.example/finance",
            "after": "https://hooks.example/v2",
        }
    ]
    with engine.connect() as connection:
        audited = connection.execute(
            select(audit_log.c.parameters).where(audit_log.c.action == "POST /api/v1/kpis/apply")
        ).all()
    assert "finance-hook-signing-secret" not in str(audited)
    assert "changed" in str(audited[-1])


def test_bad_configuration_is_a_422_naming_the_place_and_saves_nothing(
    client: TestClient, token_for: TokenFor
) -> None:
    headers = bearer(token_for(Role.EXECUTIVE))
    rule = CONFIG["rules"][0]
    policy = CONFIG["policies"][0]
    channel = CONFIG["channels"][0]
    cases = [
        ({"rules": [rule | {"kpi": "nothing"}]}, "rules.mrr-floor.kpi", "unknown KPI 'nothing'"),
        ({"rules": [rule | {"condition": {"kind": "threshold", "below": 2.5}}]},
         "rules[0].condition.threshold.below", "write the number as a string"),
        ({"policies": [policy | {"levels": [{"delay_minutes": -1, "recipients": ["channel:x"]}]}]},
         "policies[0].levels.0.delay_minutes", "greater than or equal to 0"),
        ({"channels": [channel | {"url": "http://169.254.169.254/latest/meta-data"}]},
         "channels.finance.url", "link-local"),
        ({"channels": [channel | {"url": "https://10.0.0.1/hook"}]},
         "channels.finance.url", "private"),
        ({"kpis": [{"name": "loop", "title": "Loop", "formula": "loop + 1", "category": "financial",
                    "unit": "count", "direction": "higher_is_better"}]}, "kpis", "cycle"),
        ({"kpis": [{"name": "bad_cron", "title": "B", "metric": "mrr_end", "schedule": "61 * * * *",
                    "category": "financial", "unit": "money", "direction": "higher_is_better"}]},
         "kpis[0].schedule", "not a cron expression"),
    ]  # fmt: skip
    for body, parameter, message in cases:
        answer = apply(client, headers["Authorization"].removeprefix("Bearer "), body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["parameter"] == parameter, answer.json()
        assert message in answer.json()["detail"], answer.json()
    viewer = bearer(token_for(Role.VIEWER))
    assert client.get("/api/v1/rules", headers=viewer).json() == []
    assert client.get("/api/v1/channels", headers=viewer).json() == []


def test_an_alert_with_its_history_deliveries_and_acknowledgement(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    alert = firing_alert(engine, client, token_for)
    assert alert["state"] == "firing" and alert["severity"] == "critical"
    viewer = bearer(token_for(Role.VIEWER))
    detail = client.get(f"/api/v1/alerts/{alert['id']}", headers=viewer).json()
    assert [t["event"] for t in detail["transitions"]] == ["firing"]
    assert {(n["channel"], n["status"]) for n in detail["notifications"]} == {
        ("finance", "queued"),
        ("in_app", "queued"),
    }
    assert (
        client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", headers=viewer).status_code == 403
    )
    executive = bearer(token_for(Role.EXECUTIVE))
    acknowledged = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", headers=executive)
    assert acknowledged.status_code == 200
    assert acknowledged.json()["acknowledged_by"].startswith("token:executive-")
    assert client.get("/api/v1/alerts/999999", headers=viewer).status_code == 404


def test_silences_are_created_listed_and_ended(client: TestClient, token_for: TokenFor) -> None:
    executive = bearer(token_for(Role.EXECUTIVE))
    ends = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = {"rule": "mrr-floor", "matchers": {"kpi": "mrr"}, "ends_at": ends, "reason": "migration"}
    created = client.post("/api/v1/silences", json=body, headers=executive)
    assert created.status_code == 201, created.text
    assert created.json()["author"].startswith("token:executive-")
    listed = client.get("/api/v1/silences?active=true", headers=bearer(token_for(Role.VIEWER)))
    assert [s["id"] for s in listed.json()] == [created.json()["id"]]
    assert (
        client.delete(f"/api/v1/silences/{created.json()['id']}", headers=executive).status_code
        == 204
    )
    assert client.get("/api/v1/silences?active=true", headers=executive).json() == []
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    refused = client.post("/api/v1/silences", json=body | {"ends_at": past}, headers=executive)
    assert refused.status_code == 422 and refused.json()["parameter"] == "ends_at"
    empty = client.post("/api/v1/silences", json=body | {"reason": ""}, headers=executive)
    assert empty.status_code == 422


def test_dead_letters_are_listed_and_retried(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    firing_alert(engine, client, token_for)
    # The finance hook is a name that does not resolve here, and the CFO is no user yet:
    # both deliveries fail for good.
    report = dispatch_due(engine, lambda name: None)
    assert report.dead == 2
    viewer = bearer(token_for(Role.VIEWER))
    dead = client.get("/api/v1/notifications?status=dead", headers=viewer).json()
    assert {n["channel"] for n in dead} == {"finance", "in_app"}
    assert all(n["last_error"] for n in dead)
    executive = bearer(token_for(Role.EXECUTIVE))
    retried = client.post(f"/api/v1/notifications/{dead[0]['id']}/retry", headers=executive)
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    again = client.post(f"/api/v1/notifications/{dead[0]['id']}/retry", headers=executive)
    assert again.status_code == 409


def test_a_user_reads_their_own_notifications_and_sets_preferences(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    with engine.begin() as connection:
        user = create_user(connection, "cfo@example.com", "a long enough password", Role.EXECUTIVE)
        cookie, csrf = create_session(connection, user, 1)
    firing_alert(engine, client, token_for)
    dispatch_due(engine, lambda name: None)
    client.cookies.set("execmetrics_session", cookie)
    mine = client.get("/api/v1/me/notifications").json()
    assert len(mine) == 1 and mine[0]["read_at"] is None
    assert "mrr-floor" in mine[0]["subject"]
    # A change through the session needs its CSRF token; with it, the user's own list.
    assert client.post("/api/v1/me/notifications/read").status_code == 401
    csrf_header = {"X-CSRF-Token": csrf}
    assert client.post("/api/v1/me/notifications/read", headers=csrf_header).status_code == 204
    assert client.get("/api/v1/me/notifications?unread=true").json() == []
    prefs = {
        "time_zone": "Europe/London",
        "email_channel": "finance",
        "quiet_hours": {
            "time_zone": "Europe/London",
            "windows": [{"start": "22:00", "end": "07:00"}],
        },
    }
    saved = client.put("/api/v1/me/preferences", json=prefs, headers=csrf_header)
    assert saved.status_code == 200, saved.text
    assert (
        client.get("/api/v1/me/preferences").json()["quiet_hours"]["windows"][0]["end"] == "07:00"
    )
    for bad, field in [
        (prefs | {"time_zone": "Mars/Olympus"}, "time_zone"),
        (prefs | {"email_channel": "nowhere"}, "email_channel"),
        (prefs | {"quiet_hours": {"time_zone": "UTC", "windows": [{"start": "25:00"}]}},
         "quiet_hours"),
    ]:  # fmt: skip
        refused = client.put("/api/v1/me/preferences", json=bad, headers=csrf_header)
        assert refused.status_code == 422, refused.text
        assert field in refused.text
    del client.cookies["execmetrics_session"]
    # An API token has no user: no notifications or preferences of its own.
    admin = bearer(token_for(Role.ADMIN))
    assert client.get("/api/v1/me/notifications", headers=admin).status_code == 404
