"""Request dependencies: the database transaction, the caller, and role requirements.

Every route declares the least role it needs with one of the `*Caller` aliases below (or is
listed in PUBLIC_ROUTES); tests/api/test_route_roles.py walks every route against every role.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine, func, select

from execmetrics.accounts.jwt import JwtVerifier
from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import TOKEN_PREFIX, Identity, session_for, token_identity
from execmetrics.audit.chain import AuditEntry
from execmetrics.config import Settings
from execmetrics.errors import Forbidden, NotAuthenticated, RateLimited
from execmetrics.metrics.cache import DocumentCache
from execmetrics.ratelimit import Limiter
from execmetrics.store.roles import as_role

SESSION_COOKIE = "execmetrics_session"
# Routes anyone may call: health checks, the sign-in form, static assets, the API schema.
PUBLIC_ROUTES = {
    "/healthz",
    "/readyz",
    "/sign-in",
    "/sign-out",
    "/static",
    "/openapi.json",
    # The signed link in notifications: the token in the path is the credential.
    "/alerts/acknowledge/{token}",
}
# Routes whose path holds a credential: logged by their template, never as requested.
SECRET_PATH_ROUTES = {"/alerts/acknowledge/{token}"}
# Query parameters never written to the audit trail.
SECRET_PARAMETERS = {"password", "token", "csrf_token", "access_token"}


@dataclass(frozen=True)
class ServerState:
    settings: Settings
    engine: Engine
    limiter: Limiter
    jwt: JwtVerifier | None
    cache: DocumentCache
    # Set to run this process's scheduler at once (after an ingestion), if it runs one.
    wake_scheduler: threading.Event = field(default_factory=threading.Event)
    # Set to have this process's analytics job measure the data quality at once.
    wake_analytics: threading.Event = field(default_factory=threading.Event)


def server(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


ServerDep = Annotated[ServerState, Depends(server)]


def database(request: Request) -> Iterator[Connection]:
    """One transaction per request: committed when the route returns, rolled back when it
    raises. Services never commit."""
    with server(request).engine.begin() as connection:
        yield connection


# scope="function": committed when the route returns, before the response is sent (and before
# the guard writes the audit record on a connection of its own).
DbDep = Annotated[Connection, Depends(database, scope="function")]


def set_database_role(connection: Connection, role: Role | None) -> None:
    """Tell PostgreSQL's row-level security who is asking, for this transaction only."""
    as_role(connection, role.value if role else None)


def read_in_aggregate(connection: Connection) -> None:
    """Let this transaction read the MRR ledger, marketing spend and fx rates whatever the
    caller's role, for a route that returns only aggregates (the summary): on PostgreSQL,
    row-level security otherwise hides them from viewers."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.set_config("execmetrics.scope", "aggregate", True)))


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def audit_entry(request: Request, identity: Identity | None) -> AuditEntry:
    route = request.scope.get("route")
    template = getattr(route, "path", request.url.path)
    parameters: dict[str, Any] = {
        key: value for key, value in request.query_params.items() if key not in SECRET_PARAMETERS
    }
    return AuditEntry(
        request_id=request.state.request_id,
        identity=identity.label if identity else "anonymous",
        role=identity.role.value if identity else None,
        action=f"{request.method} {template}",
        resource=request.url.path[:400],
        parameters=parameters,
        client=client_address(request),
        user_agent=request.headers.get("user-agent"),
    )


def authenticate(request: Request, connection: Connection, state: ServerState) -> Identity:
    """The caller from a bearer token (API token or JWT) or, for reads, the session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if header:
        if scheme.lower() != "bearer" or not credential.strip():
            raise NotAuthenticated("expected 'Authorization: Bearer <token>'")
        credential = credential.strip()
        if credential.startswith(TOKEN_PREFIX):
            identity = token_identity(connection, credential)
            if identity is None:
                raise NotAuthenticated("the token is unknown, expired or revoked")
            return identity
        if state.jwt is not None and credential.count(".") == 2:
            return state.jwt.identity(credential)
        raise NotAuthenticated("the bearer credential is not a token this server accepts")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session = session_for(connection, cookie)
        if session is not None and _safe_from_forgery(request, session.csrf_token):
            request.state.csrf_token = session.csrf_token
            return session.identity
    raise NotAuthenticated("sign in, or send 'Authorization: Bearer <token>'")


def _safe_from_forgery(request: Request, csrf_token: str) -> bool:
    """A read, or a change that carries the session's CSRF token in X-CSRF-Token: another
    site's page can make the browser send the cookie, but cannot read the token."""
    if request.method in ("GET", "HEAD"):
        return True
    sent = request.headers.get("x-csrf-token", "")
    return bool(sent) and hmac.compare_digest(sent, csrf_token)


def require(role: Role) -> Callable[..., Identity]:
    """A dependency that admits callers holding `role` or a more privileged one."""

    def dependency(request: Request, connection: DbDep, state: ServerDep) -> Identity:
        request.state.audit = audit_entry(request, None)
        identity = authenticate(request, connection, state)
        request.state.audit = audit_entry(request, identity)
        request.state.identity = identity
        limit = state.settings.rate_limit(identity.role.value)
        decision = state.limiter.check_request(identity.label, limit)
        request.state.rate_limit = decision
        if not decision.allowed:
            raise RateLimited(
                f"at most {limit} requests per hour for this identity",
                retry_after=decision.reset_seconds,
            )
        if not identity.role.includes(role):
            raise Forbidden(
                f"this needs the {role.value} role or above; you are {identity.role.value}"
            )
        set_database_role(connection, identity.role)
        return identity

    dependency.required_role = role  # type: ignore[attr-defined]
    return dependency


ViewerCaller = Annotated[Identity, Depends(require(Role.VIEWER))]
AnalystCaller = Annotated[Identity, Depends(require(Role.ANALYST))]
ExecutiveCaller = Annotated[Identity, Depends(require(Role.EXECUTIVE))]
AdminCaller = Annotated[Identity, Depends(require(Role.ADMIN))]


def required_role(route: Any) -> Role | None:
    """The role a route's dependencies require, or None when it declares none."""
    dependant = getattr(route, "dependant", None)
    pending = list(dependant.dependencies) if dependant is not None else []
    while pending:
        dependant = pending.pop()
        role = getattr(dependant.call, "required_role", None)
        if role is not None:
            return role  # type: ignore[no-any-return]
        pending.extend(dependant.dependencies)
    return None
