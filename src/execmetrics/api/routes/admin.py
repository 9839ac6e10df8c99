"""Administration: the audit trail, users, API tokens and settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from execmetrics.accounts import service as accounts
from execmetrics.api.deps import AdminCaller, DbDep
from execmetrics.api.problems import PROBLEM_RESPONSES
from execmetrics.api.schemas import (
    AuditPage,
    AuditRecord,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
)
from execmetrics.settings_store import all_settings
from execmetrics.store.tables import audit_log

router = APIRouter(prefix="/api/v1", tags=["admin"], responses=PROBLEM_RESPONSES)
DAY = 86_400 * 10**6


@router.get("/audit", response_model=AuditPage)
def audit(
    _: AdminCaller,
    connection: DbDep,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    action: Annotated[str | None, Query(max_length=100)] = None,
    identity: Annotated[str | None, Query(max_length=400)] = None,
) -> AuditPage:
    """Audit records in order, `limit` at a time after the record number `after`."""
    query = select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(limit)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    if identity is not None:
        query = query.where(audit_log.c.identity == identity)
    items = [AuditRecord.model_validate(dict(row._mapping)) for row in connection.execute(query)]
    return AuditPage(items=items, next_after=items[-1].seq if len(items) == limit else None)


@router.get("/users", response_model=list[UserOut])
def users(_: AdminCaller, connection: DbDep) -> list[UserOut]:
    """Every user of the dashboard, without password hashes."""
    return [UserOut.model_validate(user) for user in accounts.list_users(connection)]


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(_: AdminCaller, connection: DbDep, body: UserIn) -> UserOut:
    """Create a dashboard user."""
    user_id = accounts.create_user(connection, body.email, body.password, body.role)
    return next(
        UserOut.model_validate(u) for u in accounts.list_users(connection) if u["id"] == user_id
    )


@router.get("/tokens", response_model=list[TokenOut])
def tokens(_: AdminCaller, connection: DbDep) -> list[TokenOut]:
    """Every API token, without the tokens themselves (only their hashes are stored)."""
    return [TokenOut.model_validate(token) for token in accounts.list_tokens(connection)]


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(_: AdminCaller, connection: DbDep, body: TokenIn) -> TokenCreated:
    """Create an API token; the response is the only time it is shown."""
    token, expires_at = accounts.create_token(
        connection, body.name, body.role, body.expires_days * DAY
    )
    return TokenCreated(name=body.name, role=body.role.value, token=token, expires_at=expires_at)


@router.delete("/tokens/{name}", status_code=204)
def revoke_token(
    _: AdminCaller, connection: DbDep, name: Annotated[str, Path(max_length=100)]
) -> None:
    """Revoke an API token at once."""
    accounts.revoke_token(connection, name)


@router.get("/settings", response_model=dict[str, str])
def settings(_: AdminCaller, connection: DbDep) -> dict[str, str]:
    """The database's settings (reporting currency, gross margin)."""
    return all_settings(connection)
