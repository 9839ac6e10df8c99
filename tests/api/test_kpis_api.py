"""The KPI routes: definitions, current values with their verdict, and history."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from tests.api.conftest import TokenFor, bearer
from tests.builders import ingest, kpi_definition, start

from execmetrics.accounts.roles import Role
from execmetrics.kpi.config import starter_kpis
from execmetrics.kpi.evaluation import record_evaluations
from execmetrics.kpi.service import apply_kpis
from execmetrics.store.tables import audit_log


def test_a_viewer_reads_the_definitions(client: TestClient, token_for: TokenFor) -> None:
    answer = client.get("/api/v1/kpis", headers=bearer(token_for(Role.VIEWER)))
    assert answer.status_code == 200
    kpis = {kpi["name"]: kpi for kpi in answer.json()}
    assert set(kpis) == {definition.name for definition in starter_kpis()}
    assert kpis["expansion_rate"]["formula"] == "expansion_mrr / mrr_start"
    assert kpis["mrr"]["version"] == 1


def test_current_values_history_and_targets(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    headers = bearer(token_for(Role.VIEWER))
    before = client.get("/api/v1/kpis/current", headers=headers).json()
    assert all(row["value"] is None and row["met"] is None for row in before)
    ingest(engine, events=[start("e1", "c1", "s1", "2024-01-10T00:00:00Z", 100000)])
    customers_goal = kpi_definition(
        "paying", metric="customers_end", category="customer", unit="count",
        targets=[{"kind": "recurring", "every": "month", "value": 3}],
    )  # fmt: skip
    with engine.begin() as connection:
        apply_kpis(connection, [customers_goal], "test")
        record_evaluations(connection, date(2024, 2, 5))
    ingest(engine, events=[start("e2", "c2", "s2", "2024-02-10T00:00:00Z", 50000)])
    with engine.begin() as connection:
        record_evaluations(connection, date(2024, 3, 5))
        record_evaluations(connection, date(2025, 2, 5))
    current = {
        row["name"]: row for row in client.get("/api/v1/kpis/current", headers=headers).json()
    }
    assert current["paying"]["period"] == "2025-01"
    assert current["paying"]["value"] == 2 and current["paying"]["exact"] == "2"
    assert (current["paying"]["goal"], current["paying"]["met"]) == (3, False)
    assert current["mrr_start"]["value"] == 150000
    # A benchmark band with its source beside a monthly rate; none beside a formula KPI.
    band = current["customer_churn_rate"]["band"]
    assert band["basis"] == "monthly" and band["source"]["year"] and band["source"]["url"]
    assert current["expansion_rate"]["band"] is None
    history = client.get("/api/v1/kpis/paying/history", headers=headers).json()
    assert [(r["period"], r["value"], r["previous"], r["year_ago"]) for r in history["rows"]] == [
        ("2024-01", 1, None, None),
        ("2024-02", 2, 1, None),
        ("2025-01", 2, None, 1),
    ]
    ranged = client.get("/api/v1/kpis/paying/history?from=2024-02&to=2024-12", headers=headers)
    assert [r["period"] for r in ranged.json()["rows"]] == ["2024-02"]
    growth = {r["period"]: r for r in client.get(
        "/api/v1/kpis/expansion_rate/history", headers=headers
    ).json()["rows"]}  # fmt: skip
    assert growth["2024-02"]["exact"] == str(Fraction(0))


def test_bad_kpi_requests(client: TestClient, token_for: TokenFor) -> None:
    headers = bearer(token_for(Role.VIEWER))
    missing = client.get("/api/v1/kpis/nothing/history", headers=headers)
    assert missing.status_code == 404
    assert "no KPI named 'nothing'" in missing.json()["detail"]
    assert client.get("/api/v1/kpis/Bad-Name/history", headers=headers).status_code == 422
    bad_range = client.get("/api/v1/kpis/mrr/history?from=January", headers=headers)
    assert bad_range.status_code == 422
    assert "from" in bad_range.text


SMB_CHURN = {
    "name": "smb_churn",
    "title": "SMB logo churn",
    "metric": "customer_churn_rate",
    "group": {"by": "segment", "value": "SMB"},
    "category": "customer",
    "unit": "ratio",
    "direction": "lower_is_better",
}


def test_executives_apply_kpis_as_the_command_line_does(
    engine: Engine, client: TestClient, token_for: TokenFor
) -> None:
    headers = bearer(token_for(Role.EXECUTIVE))

    def apply(body: dict[str, object]) -> dict[str, object]:
        answer = client.post("/api/v1/kpis/apply", json=body, headers=headers)
        assert answer.status_code == 200, answer.text
        result: dict[str, object] = answer.json()["kpis"] | {"dry_run": answer.json()["dry_run"]}
        return result

    dry = apply({"kpis": [SMB_CHURN], "dry_run": True})
    assert dry["created"] == ["smb_churn"] and dry["dry_run"] is True
    listed = {kpi["name"] for kpi in client.get("/api/v1/kpis", headers=headers).json()}
    assert "smb_churn" not in listed
    assert apply({"kpis": [SMB_CHURN]})["created"] == ["smb_churn"]
    assert apply({"kpis": [SMB_CHURN]})["unchanged"] == ["smb_churn"]
    changed = apply({"kpis": [SMB_CHURN | {"title": "Churn, SMB"}]})["changed"]
    assert changed == {
        "smb_churn": [{"field": "title", "before": "SMB logo churn", "after": "Churn, SMB"}]
    }
    pruned = apply({"kpis": [SMB_CHURN | {"title": "Churn, SMB"}], "prune": True})
    assert "mrr" in pruned["removed"]  # type: ignore[operator]
    listed = {kpi["name"] for kpi in client.get("/api/v1/kpis", headers=headers).json()}
    assert listed == {"smb_churn"}
    with engine.connect() as connection:
        audited = connection.execute(
            select(audit_log.c.action).where(audit_log.c.action == "POST /api/v1/kpis/apply")
        ).all()
    assert len(audited) == 5


def test_viewers_and_analysts_cannot_change_kpis(client: TestClient, token_for: TokenFor) -> None:
    for role in (Role.VIEWER, Role.ANALYST):
        answer = client.post(
            "/api/v1/kpis/apply", json={"kpis": [SMB_CHURN]}, headers=bearer(token_for(role))
        )
        assert answer.status_code == 403


def test_a_bad_kpi_set_is_a_clear_422_and_saves_nothing(
    client: TestClient, token_for: TokenFor
) -> None:
    headers = bearer(token_for(Role.EXECUTIVE))
    formula = {k: v for k, v in SMB_CHURN.items() if k not in ("metric", "group")}
    cases = [
        ([SMB_CHURN | {"metric": "profit"}], "kpis[0].metric", "unknown metric 'profit'"),
        ([SMB_CHURN | {"schedule": "every day"}], "kpis[0].schedule", "not a cron expression"),
        ([SMB_CHURN, formula | {"name": "f", "formula": "(1"}], "kpis[1].formula", "expected ')'"),
        ([formula | {"formula": "nothing + 1"}], "kpis", "unknown KPI 'nothing'"),
        ([formula | {"formula": "smb_churn * 2"}], "kpis", "cycle: smb_churn -> smb_churn"),
        ([SMB_CHURN, SMB_CHURN], "kpis", "'smb_churn' is given twice"),
    ]
    for kpis, parameter, message in cases:
        answer = client.post("/api/v1/kpis/apply", json={"kpis": kpis}, headers=headers)
        assert answer.status_code == 422, (kpis, answer.text)
        assert answer.json()["parameter"] == parameter
        assert message in answer.json()["detail"]
    listed = {kpi["name"] for kpi in client.get("/api/v1/kpis", headers=headers).json()}
    assert "smb_churn" not in listed and "f" not in listed
    pruning_a_read_kpi = client.post(
        "/api/v1/kpis/apply",
        json={"kpis": [formula | {"name": "ratio", "formula": "mrr_start / 2"}], "prune": True},
        headers=headers,
    )
    # Pruning would remove mrr_start, which the new formula reads.
    assert pruning_a_read_kpi.status_code == 422
    assert "ratio: unknown KPI 'mrr_start'" in pruning_a_read_kpi.json()["detail"]
