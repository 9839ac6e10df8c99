"""Dashboard pages: sign-in, sign-out, the executive overview, KPIs, the forecast, data
quality, customer segments, churn risk, alerts and the signed-in user's notifications, and
the page behind the signed acknowledge link of alert notifications.

Pages render their data on the server, so a page view costs one rate-limited request; the
browser only draws the charts (static/overview.js, static/kpis.js and static/forecast.js,
with Chart.js from the pinned npm package). Forms post back with the session's CSRF token
(docs/dashboard-alerts.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from importlib.resources import files
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from execmetrics import render
from execmetrics.accounts.roles import Role
from execmetrics.accounts.service import (
    Identity,
    authenticate_password,
    create_session,
    end_session,
    same_secret,
    session_for,
)
from execmetrics.api.deps import (
    SESSION_COOKIE,
    DbDep,
    ServerDep,
    audit_entry,
    client_address,
    read_in_aggregate,
    require,
    set_database_role,
)
from execmetrics.errors import Forbidden, NotAuthenticated, RateLimited
from execmetrics.metrics.cache import metrics_document, summary_document
from execmetrics.metrics.periods import default_range
from execmetrics.money import currency_exponent
from execmetrics.timeutil import from_micros

CSRF_COOKIE = "execmetrics_csrf"
CHART_MONTHS = 24
CHART_SERIES = (
    "new_mrr", "expansion_mrr", "reactivation_mrr", "contraction_mrr", "churned_mrr", "mrr_end",
)  # fmt: skip
TEMPLATES = Jinja2Templates(directory=str(files("execmetrics.web") / "templates"))
TEMPLATES.env.filters["figure"] = lambda value, name, currency: render.format_value(
    name, value, currency
)


def moment(micros: int | None) -> str:
    """A stored instant (microseconds since the epoch) for people, in UTC."""
    return "" if micros is None else from_micros(micros).strftime("%Y-%m-%d %H:%M UTC")


TEMPLATES.env.filters["moment"] = moment
# `{% if user.role is at_least("analyst") %}`: the navigation links only pages the role may open.
TEMPLATES.env.tests["at_least"] = lambda role, least: Role(role).includes(Role(least))

router = APIRouter(include_in_schema=False)


class SignInRequired(Exception):
    """An unauthenticated page view: answered with a redirect to the sign-in page."""


def page_caller(role: Role) -> Any:
    api_dependency = require(role)

    def dependency(request: Request, connection: DbDep, state: ServerDep) -> Identity:
        try:
            return api_dependency(request, connection, state)
        except NotAuthenticated:
            raise SignInRequired from None
        except Forbidden as error:
            # A person following a link gets a page saying why, not a problem document.
            raise PageRefused(error.detail[:1].upper() + error.detail[1:] + ".") from None

    dependency.required_role = role  # type: ignore[attr-defined]
    return dependency


class PageRefused(Exception):
    """A dashboard form the caller may not submit (wrong role, or a stale CSRF token): answered
    with an HTML page and status 403."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _count_request(request: Request, state: ServerDep, identity: Identity) -> None:
    """The caller's hourly request budget, as for every API request."""
    limit = state.settings.rate_limit(identity.role.value)
    decision = state.limiter.check_request(identity.label, limit)
    request.state.rate_limit = decision
    if not decision.allowed:
        raise RateLimited(
            f"at most {limit} requests per hour for this identity",
            retry_after=decision.reset_seconds,
        )


def form_caller(role: Role) -> Any:
    """The caller of a dashboard form: the session (cookies authenticate only reads, so the
    form's CSRF token must match the session's), or a bearer credential, which a browser
    never sends on its own and so needs no CSRF token."""
    api_dependency = require(role)

    def dependency(
        request: Request,
        connection: DbDep,
        state: ServerDep,
        csrf: Annotated[str, Form(max_length=128)] = "",
    ) -> Identity:
        if request.headers.get("authorization"):
            return api_dependency(request, connection, state)
        session = session_for(connection, request.cookies.get(SESSION_COOKIE, ""))
        request.state.audit = audit_entry(request, session.identity if session else None)
        if session is None:
            raise SignInRequired
        identity = session.identity
        request.state.identity = identity
        request.state.csrf_token = session.csrf_token
        _count_request(request, state, identity)
        if not same_secret(csrf, session.csrf_token):
            raise PageRefused("This form has expired. Reload the page and try again.")
        if not identity.role.includes(role):
            raise PageRefused(
                f"This needs the {role.value} role or above; you are {identity.role.value}."
            )
        set_database_role(connection, identity.role)
        return identity

    dependency.required_role = role  # type: ignore[attr-defined]
    return dependency


ViewerPage = Annotated[Identity, Depends(page_caller(Role.VIEWER))]
AnalystPage = Annotated[Identity, Depends(page_caller(Role.ANALYST))]
ExecutivePage = Annotated[Identity, Depends(page_caller(Role.EXECUTIVE))]
ViewerForm = Annotated[Identity, Depends(form_caller(Role.VIEWER))]
ExecutiveForm = Annotated[Identity, Depends(form_caller(Role.EXECUTIVE))]


def _signin_csrf(secret_key: str, nonce: str) -> str:
    return hmac.new(secret_key.encode(), nonce.encode(), hashlib.sha256).hexdigest()


def _cookie_options(request: Request) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
        "path": "/",
    }


def _sign_in_page(
    request: Request, state: ServerDep, error: str | None = None, status: int = 200
) -> Response:
    nonce = secrets.token_urlsafe(32)
    response = TEMPLATES.TemplateResponse(
        request,
        "sign_in.html",
        {"csrf": _signin_csrf(state.settings.secret_key.get_secret_value(), nonce), "error": error},
        status_code=status,
    )
    response.set_cookie(CSRF_COOKIE, nonce, max_age=3600, **_cookie_options(request))
    return response


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, state: ServerDep) -> Response:
    return _sign_in_page(request, state)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in(
    request: Request,
    connection: DbDep,
    state: ServerDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=128)],
) -> Response:
    account = email.strip().lower()
    entry = audit_entry(request, None)
    entry.action, entry.identity, entry.parameters = "sign-in", f"user:{account}", {}
    request.state.audit = entry
    nonce = request.cookies.get(CSRF_COOKIE, "")
    expected = _signin_csrf(state.settings.secret_key.get_secret_value(), nonce)
    if not nonce or not same_secret(csrf, expected):
        return _sign_in_page(request, state, "The form expired; please sign in again.", 403)
    settings = state.settings
    client = client_address(request)
    state.limiter.check_signin(
        account, client, settings.signin_attempts_per_account,
        settings.signin_attempts_per_client, settings.signin_window_seconds,
    )  # fmt: skip
    user_id = authenticate_password(connection, account, password)
    if user_id is None:
        state.limiter.signin_failed(account, client, settings.signin_attempts_per_account,
                                    settings.signin_window_seconds)  # fmt: skip
        return _sign_in_page(request, state, "Wrong email or password.", 401)
    state.limiter.signin_succeeded(account)
    session, _ = create_session(connection, user_id, settings.session_hours)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE, session, max_age=settings.session_hours * 3600, **_cookie_options(request)
    )
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.post("/sign-out")
def sign_out(
    request: Request,
    connection: DbDep,
    csrf: Annotated[str, Form(max_length=128)],
) -> Response:
    # Cookies authenticate only reads (GET/HEAD), so this form checks its session itself.
    cookie = request.cookies.get(SESSION_COOKIE, "")
    session = session_for(connection, cookie)
    entry = audit_entry(request, session.identity if session else None)
    entry.action, entry.parameters = "sign-out", {}
    request.state.audit = entry
    if session is not None:
        if not same_secret(csrf, session.csrf_token):
            return Response("CSRF token mismatch", status_code=403, media_type="text/plain")
        end_session(connection, cookie)
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, caller: ViewerPage, connection: DbDep, state: ServerDep) -> Response:
    # The same cached documents as GET /api/v1/summary and /metrics.
    analyst = caller.role.includes(Role.ANALYST)
    if not analyst:
        read_in_aggregate(connection)
    summary = json.loads(summary_document(state.cache, connection))
    chart: dict[str, Any] | None = None
    if analyst:
        first, last = default_range(None, None, "month", "UTC", CHART_MONTHS)
        rows = json.loads(metrics_document(state.cache, connection, first, last))["rows"]
        chart = {
            "currency": summary["currency"],
            "exponent": currency_exponent(summary["currency"]),
            "labels": [row["period"] for row in rows],
            "series": {name: [row[name] for row in rows] for name in CHART_SERIES},
        }
    trends = {
        name: figure.get("trend", [])
        for name, figure in summary["latest_complete"]["metrics"].items()
    }
    return TEMPLATES.TemplateResponse(
        request,
        "overview.html",
        {
            "user": caller,
            "summary": summary,
            "csrf": getattr(request.state, "csrf_token", ""),
            "chart_json": json.dumps(chart) if chart else None,
            "trends_json": json.dumps(trends),
        },
    )


def render_page(
    request: Request,
    template: str,
    caller: Identity | None,
    context: dict[str, Any],
    status: int = 200,
) -> Response:
    """A page of the dashboard, with what the navigation bar needs."""
    base = {"user": caller, "csrf": getattr(request.state, "csrf_token", "")}
    return TEMPLATES.TemplateResponse(request, template, base | context, status_code=status)


def install(app: FastAPI) -> None:
    from execmetrics.web import alert_pages, analytics_pages, kpi_pages, segment_pages

    app.include_router(router)
    app.include_router(kpi_pages.router)
    app.include_router(analytics_pages.router)
    app.include_router(segment_pages.router)
    app.include_router(alert_pages.router)
    app.mount(
        "/static", StaticFiles(directory=str(files("execmetrics.web") / "static")), name="static"
    )

    async def redirect_to_sign_in(request: Request, _: Exception) -> Response:
        return RedirectResponse("/sign-in", status_code=303)

    app.add_exception_handler(SignInRequired, redirect_to_sign_in)

    async def refuse_form(request: Request, error: Exception) -> Response:
        message = error.message if isinstance(error, PageRefused) else "Not allowed."
        caller = getattr(request.state, "identity", None)
        return render_page(request, "refused.html", caller, {"message": message}, status=403)

    app.add_exception_handler(PageRefused, refuse_form)
