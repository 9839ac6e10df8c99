"""PostgreSQL enforces the roles itself: connected as the application role, a transaction
sees customer and ledger rows only with a role that may read them, and the audit log only
grows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from tests.api.conftest import bearer, load_demo, make_settings
from tests.builders import kpi_definition
from tests.database import truncate_all

from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import create_token
from execmetrics.analytics.churn_weights import DEFAULT_WEIGHTS
from execmetrics.analytics.jobs import refresh_quality_if_due, run_if_due
from execmetrics.api.app import create_app
from execmetrics.api.deps import set_database_role
from execmetrics.audit.chain import AuditEntry, append
from execmetrics.kpi.service import apply_kpis, current_kpis
from execmetrics.store.database import make_engine
from execmetrics.store.roles import as_role
from execmetrics.store.tables import (
    activity_daily,
    activity_event_ids,
    activity_types,
    audit_log,
    customer_ledger,
    customers,
    inbox,
    kpi_evaluations,
    mrr_movements,
    quality_reports,
    segment_assignments,
    segment_runs,
    subscription_events,
    subscription_mrr_spans,
    support_tickets,
)
from execmetrics.timeutil import now_micros

APP_ROLE = "execmetrics_app"
PROTECTED = (
    customers, subscription_events, customer_ledger, mrr_movements, subscription_mrr_spans,
    support_tickets, activity_types, activity_daily, activity_event_ids,
)  # fmt: skip


@pytest.fixture
def demo_postgres(postgres_engine: Engine, tmp_path: Path) -> Iterator[Engine]:
    """The demo company, loaded by the superuser (who bypasses row-level security)."""
    truncate_all(postgres_engine)
    load_demo(postgres_engine, tmp_path / "demo", customers=60)
    yield postgres_engine
    truncate_all(postgres_engine)


@pytest.fixture
def app_engine(postgres_url: str, demo_postgres: Engine) -> Iterator[Engine]:
    """Connected to the same database as the application role."""
    url = make_url(postgres_url).set(username=APP_ROLE, password=None)
    engine = make_engine(url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()


def visible_rows(connection: Connection) -> dict[str, int]:
    return {
        table.name: int(connection.execute(select(func.count()).select_from(table)).scalar_one())
        for table in PROTECTED
    }


def test_the_application_role_owns_nothing_and_cannot_bypass(app_engine: Engine) -> None:
    with app_engine.connect() as connection:
        role = connection.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        ).one()
        owned = connection.execute(
            text("SELECT count(*) FROM pg_tables WHERE tableowner = current_user")
        ).scalar_one()
    assert tuple(role) == (False, False)
    assert owned == 0


def test_rows_are_visible_only_to_roles_that_may_read_them(
    app_engine: Engine, demo_postgres: Engine
) -> None:
    with demo_postgres.connect() as connection:
        everything = visible_rows(connection)
    assert all(everything.values())
    nothing = dict.fromkeys(everything, 0)
    with app_engine.connect() as connection:
        assert visible_rows(connection) == nothing  # no role set
    for role, expected in [
        (Role.VIEWER, nothing),
        (Role.ANALYST, everything),
        (Role.EXECUTIVE, everything),
        (Role.ADMIN, everything),
    ]:
        with app_engine.begin() as connection:
            set_database_role(connection, role)
            assert visible_rows(connection) == expected, role


def test_a_role_set_in_one_transaction_does_not_leak_to_the_next(app_engine: Engine) -> None:
    with app_engine.connect() as connection:
        with connection.begin():
            set_database_role(connection, Role.EXECUTIVE)
            assert visible_rows(connection)["customers"] > 0
        # The same pooled connection, a new transaction: the setting is gone.
        with connection.begin():
            assert visible_rows(connection)["customers"] == 0


def test_only_writers_may_change_customer_data(app_engine: Engine) -> None:
    with app_engine.begin() as connection:
        set_database_role(connection, Role.ANALYST)
        changed = connection.execute(customers.update().values(name="changed")).rowcount
    assert changed == 0
    with (
        pytest.raises(ProgrammingError, match="row-level security"),
        app_engine.begin() as connection,
    ):
        set_database_role(connection, Role.ANALYST)
        connection.execute(
            customers.insert().values(customer_id="x", attributes={}, ingestion_id=1, source="s")
        )


def test_the_audit_log_only_grows(app_engine: Engine) -> None:
    entry = AuditEntry("req-1", "token:t", "admin", "GET /x", "/x")
    with app_engine.begin() as connection:
        append(connection, entry)
    with app_engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(audit_log)).scalar_one() == 1
    for statement in (
        "UPDATE audit_log SET outcome = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ):
        with (
            pytest.raises(ProgrammingError, match="permission denied"),
            app_engine.begin() as connection,
        ):
            connection.execute(text(statement))


def test_the_server_works_as_the_application_role(
    app_engine: Engine, demo_postgres: Engine
) -> None:
    with demo_postgres.begin() as connection:
        tokens = {
            role: create_token(connection, f"rls-{role.value}", role, 10**10)[0] for role in Role
        }
    with TestClient(create_app(make_settings(app_engine), app_engine)) as client:
        as_app = client.get("/api/v1/summary", headers=bearer(tokens[Role.VIEWER]))
        overview = client.get("/", headers=bearer(tokens[Role.VIEWER]))
        metrics = client.get(
            "/api/v1/metrics?from=2025-01&to=2025-02", headers=bearer(tokens[Role.ANALYST])
        )
        listed = client.get("/api/v1/customers?limit=3", headers=bearer(tokens[Role.EXECUTIVE]))
        posted = client.post(
            "/api/v1/events/customers", json={"rows": [{"customer_id": "rls-new"}]},
            headers=bearer(tokens[Role.EXECUTIVE]),
        )  # fmt: skip
    with TestClient(create_app(make_settings(demo_postgres), demo_postgres)) as client:
        as_owner = client.get("/api/v1/summary", headers=bearer(tokens[Role.VIEWER]))
    # The viewer's summary reads the ledger in aggregate: the same figures as unrestricted.
    assert as_app.status_code == 200
    assert overview.status_code == 200 and 'data-metric="mrr"' in overview.text
    assert as_app.json()["latest_complete"] == as_owner.json()["latest_complete"]
    assert as_app.json()["latest_complete"]["metrics"]["mrr"]["value"] > 0
    assert metrics.status_code == 200 and metrics.json()["rows"][0]["mrr_end"] > 0
    assert len(listed.json()["items"]) == 3
    assert posted.status_code == 200, posted.text


def test_every_role_reads_kpis_and_only_executives_and_admins_add_versions(
    app_engine: Engine, demo_postgres: Engine
) -> None:
    mrr = kpi_definition()
    with app_engine.connect() as connection, connection.begin():
        set_database_role(connection, Role.EXECUTIVE)
        apply_kpis(connection, [mrr], "test")
    for role in Role:
        with app_engine.connect() as connection, connection.begin():
            set_database_role(connection, role)
            assert "mrr" in current_kpis(connection)
    with app_engine.connect() as connection, connection.begin():
        assert current_kpis(connection) == {}  # no role, nothing
    for role in (Role.VIEWER, Role.ANALYST):
        with app_engine.connect() as connection, connection.begin():
            set_database_role(connection, role)
            with pytest.raises(ProgrammingError, match="row-level security"):
                apply_kpis(connection, [mrr.model_copy(update={"title": "Changed"})], "test")


def test_every_role_reads_kpi_values_and_only_executives_and_admins_store_them(
    app_engine: Engine,
) -> None:
    row = {"name": "mrr", "version": 1, "period": "2025-11", "value": "12345",
           "data_version": "1.test", "evaluated_at": 1}  # fmt: skip
    with app_engine.connect() as connection, connection.begin():
        set_database_role(connection, Role.ADMIN)
        connection.execute(kpi_evaluations.insert().values(row))
    for role in Role:
        with app_engine.connect() as connection, connection.begin():
            set_database_role(connection, role)
            assert connection.execute(select(kpi_evaluations.c.value)).scalars().all() == ["12345"]
    for role in (Role.VIEWER, Role.ANALYST):
        with app_engine.connect() as connection, connection.begin():
            set_database_role(connection, role)
            with pytest.raises(ProgrammingError, match="row-level security"):
                connection.execute(kpi_evaluations.insert().values(row | {"period": "2025-12"}))


def test_alerts_are_read_by_every_role_and_changed_by_executives_and_admins(
    app_engine: Engine,
) -> None:
    from execmetrics.alerts.service import create_silence, list_silences

    def silence(connection: Connection) -> int:
        return create_silence(
            connection, rule=None, matchers={}, starts_at=1, ends_at=2, author="t", reason="r"
        )

    with app_engine.connect() as connection, connection.begin():
        as_role(connection, "executive")
        silence(connection)
    for role in Role:
        with app_engine.connect() as connection, connection.begin():
            as_role(connection, role.value)
            assert len(list_silences(connection)) == 1
    for role in (Role.VIEWER, Role.ANALYST):
        with app_engine.connect() as connection, connection.begin():
            as_role(connection, role.value)
            with pytest.raises(ProgrammingError, match="row-level security"):
                silence(connection)


def test_in_app_notifications_are_each_users_own(
    app_engine: Engine, postgres_engine: Engine
) -> None:
    from execmetrics.accounts.service import create_user
    from execmetrics.notify.inbox import list_inbox

    with postgres_engine.begin() as connection:
        owner = create_user(connection, "owner@example.com", "a long enough password", Role.VIEWER)
        other = create_user(connection, "other@example.com", "a long enough password", Role.VIEWER)
        connection.execute(
            inbox.insert().values(
                user_id=owner, severity="info", subject="s", text="t", links=[], created_at=1
            )
        )
    with app_engine.connect() as connection, connection.begin():
        as_role(connection, "viewer", owner)
        assert len(list_inbox(connection, owner)) == 1
    with app_engine.connect() as connection, connection.begin():
        as_role(connection, "executive", other)  # another user, whatever their role
        assert list_inbox(connection, owner) == []
    with app_engine.connect() as connection, connection.begin():
        as_role(connection, "admin")
        assert len(list_inbox(connection, owner)) == 1


def test_only_writers_may_change_support_tickets(app_engine: Engine, demo_postgres: Engine) -> None:
    with demo_postgres.connect() as connection:
        tickets = connection.execute(select(func.count()).select_from(support_tickets)).scalar_one()
    assert tickets > 0  # the demo company's
    closing = support_tickets.update().values(closed_at=1)
    with app_engine.begin() as connection:
        set_database_role(connection, Role.ANALYST)
        assert connection.execute(closing).rowcount == 0
    with app_engine.begin() as connection:
        set_database_role(connection, Role.EXECUTIVE)
        assert connection.execute(closing).rowcount == tickets


def test_the_daily_job_stores_segments_and_only_executives_read_customers_segments(
    app_engine: Engine,
) -> None:
    report = run_if_due(app_engine, "rls-test", 60, DEFAULT_WEIGHTS, now_micros())
    assert report is not None and report.segment_problem is None and report.segmented > 0

    def visible(role: Role) -> tuple[int, int]:
        with app_engine.begin() as connection:
            set_database_role(connection, role)
            runs, assignments = (
                int(connection.execute(select(func.count()).select_from(table)).scalar_one())
                for table in (segment_runs, segment_assignments)
            )
        return runs, assignments

    assert visible(Role.VIEWER) == (0, 0)
    assert visible(Role.ANALYST) == (1, 0)
    assert visible(Role.EXECUTIVE) == visible(Role.ADMIN) == (1, report.segmented)


def test_analysts_read_quality_reports_and_only_admins_store_them(app_engine: Engine) -> None:
    stored = refresh_quality_if_due(app_engine, "rls-test", now_micros())
    assert stored is not None

    def visible(role: Role) -> int:
        with app_engine.begin() as connection:
            set_database_role(connection, role)
            found = connection.execute(select(func.count()).select_from(quality_reports))
            return int(found.scalar_one())

    assert visible(Role.VIEWER) == 0
    assert visible(Role.ANALYST) == visible(Role.EXECUTIVE) == visible(Role.ADMIN) == 1
    for role in (Role.ANALYST, Role.EXECUTIVE):
        with app_engine.connect() as connection:
            set_database_role(connection, role)
            with pytest.raises(ProgrammingError, match="row-level security"):
                connection.execute(
                    quality_reports.insert().values(
                        measured_at=0, data_version="0.x", freshness_us=1, checks=[]
                    )
                )
