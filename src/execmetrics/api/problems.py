"""Every error as RFC 9457 problem+json, with a stable `type`; never a stack trace or SQL."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from execmetrics.errors import Forbidden, NotAuthenticated, NotFound, RateLimited, ServiceError
from execmetrics.ingest.problems import IngestError
from execmetrics.metrics.periods import PeriodError
from execmetrics.metrics.queries import BreakdownError

log = logging.getLogger("execmetrics.api")

PROBLEM_BASE = "https://execmetrics.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
HTTP_TYPES = {
    400: ("bad-request", "Bad request"),
    **{
        error.status: (error.type, error.title) for error in (NotAuthenticated, Forbidden, NotFound)
    },
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


class ProblemDocument(BaseModel):
    """RFC 9457 problem details, with the request id and, for a bad parameter, its name."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    parameter: str | None = None


def _documented(description: str) -> dict[str, Any]:
    schema = ProblemDocument.model_json_schema()
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}}}


# Every API route may answer with these; the schema says so.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("The body cannot be read (not UTF-8 or not JSON)"),
    401: _documented("Missing, unknown, expired or revoked credentials"),
    403: _documented("The caller's role does not allow this"),
    404: _documented("Not found"),
    409: _documented("Conflicts with what is stored (for example a name already in use)"),
    413: _documented("Request body too large"),
    422: _documented("A parameter or the body is invalid; `parameter` names it"),
    429: _documented("Rate limit reached; see Retry-After"),
    500: _documented("The server failed; the error is logged, never shown"),
    503: _documented("The database or the audit trail is unavailable"),
}


def problem_body(
    status: int, type_slug: str, title: str, detail: str, instance: str, request_id: str | None,
    **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    return {
        "type": PROBLEM_BASE + type_slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": request_id,
        **extra,
    }


def problem(
    request: Request,
    status: int,
    type_slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    body = problem_body(status, type_slug, title, detail, request.url.path, request_id, **extra)
    return JSONResponse(body, status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else None
    if error.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="execmetrics"'}
    extra = {k: v for k, v in error.extra.items() if isinstance(v, str | int | float | bool)}
    return problem(request, error.status, error.type, error.title, error.detail, headers, **extra)


def _parameter_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, PeriodError | BreakdownError)
    parameter = error.parameter if isinstance(error, PeriodError) else "by"
    detail = str(error).removeprefix(f"{parameter}: ")
    return problem(
        request, 422, "invalid-parameter", "Invalid parameter", f"{parameter}: {detail}",
        parameter=parameter,
    )  # fmt: skip


def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        {"location": ".".join(str(part) for part in e["loc"]), "reason": e["msg"]}
        for e in error.errors()
    ]
    first = errors[0] if errors else {"location": "request", "reason": "invalid"}
    parameter = first["location"].split(".")[-1] if errors else "request"
    return problem(
        request, 422, "invalid-parameter", "Invalid parameter",
        f"{first['location']}: {first['reason']}", parameter=parameter, errors=errors[:100],
    )  # fmt: skip


def _ingest_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, IngestError)
    return problem(
        request, 422, "invalid-input", "Input refused; nothing was written",
        f"{error.total} problem(s) in the input",
        problems=[p.as_dict() for p in error.problems], total=error.total,
    )  # fmt: skip


def _allowed_methods(request: Request) -> str:
    """Every method the path answers to: the router names only those of the first route
    matching the path, when GET and POST of one path are separate routes."""
    methods: set[str] = set()
    for context in iter_route_contexts(request.app.routes):
        match, _ = context.route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(context.route, "methods", None) or set()
    return ", ".join(sorted(methods))


def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    slug, title = HTTP_TYPES.get(error.status_code, ("http-error", "HTTP error"))
    detail = error.detail if isinstance(error.detail, str) else title
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return problem(request, error.status_code, slug, title, detail, headers)


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception(
        "unhandled error", extra={"request_id": getattr(request.state, "request_id", None)}
    )
    return problem(
        request, 500, "internal-error", "Internal error", "the server failed; the error is logged"
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(PeriodError, _parameter_error)
    app.add_exception_handler(BreakdownError, _parameter_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(IngestError, _ingest_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
