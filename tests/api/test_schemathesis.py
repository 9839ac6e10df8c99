"""Schemathesis walks the OpenAPI schema with an admin token: no 5xx, and every response
conforms to the schema (status codes, content types, bodies)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from tests.api.conftest import bearer, load_demo

from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import create_token
from execmetrics.api.app import create_app
from execmetrics.config import Settings
from execmetrics.store.database import open_database

# The schema is loaded when pytest collects this module, so the app exists at import time:
# SQLite in a temporary folder, with a small demo company so responses carry real rows.
_folder = Path(tempfile.mkdtemp(prefix="execmetrics-schemathesis-"))
_url = f"sqlite:///{_folder / 'api.db'}"
_engine = open_database(_url)
load_demo(_engine, _folder / "demo", customers=60)
with _engine.begin() as _connection:
    ADMIN_TOKEN, _ = create_token(_connection, "schemathesis-admin", Role.ADMIN, 10**12)
app = create_app(
    Settings(database_url=_url, redis_url=None, rate_limit_admin=10**9, scheduler=False), _engine
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    # Positive data acceptance is left out: the schema cannot say that `to` must not precede
    # `from`, so a schema-valid range may rightly be refused with a 422 that names `to`.
    case.call_and_validate(headers=bearer(ADMIN_TOKEN), excluded_checks=[positive_data_acceptance])
