"""The guard around every request: request id, body size limit, security headers, the audit
record, and a JSON access log line.

A pure ASGI middleware, so it sees the response status before anything is sent: when the
audit record of an audited request cannot be written, the client gets a 503 instead of the
response.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from execmetrics.api.deps import SECRET_PATH_ROUTES
from execmetrics.api.problems import HTTP_TYPES, PROBLEM_MEDIA_TYPE, problem_body
from execmetrics.audit.chain import AuditEntry
from execmetrics.audit.writer import AuditWriter
from execmetrics.errors import ServiceError, Unavailable

log = logging.getLogger("execmetrics.access")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), microphone=(), payment=(), "
    "usb=(), interest-cohort=()"
)
STATIC_PREFIX = "/static/"


def _security_headers(headers: MutableHeaders, https: bool, path: str) -> None:
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["Permissions-Policy"] = PERMISSIONS_POLICY
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Cross-Origin-Resource-Policy"] = "same-origin"
    if https:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if path.startswith(STATIC_PREFIX):
        headers.setdefault("Cache-Control", "public, max-age=3600")
    else:
        headers["Cache-Control"] = "no-store"


def _problem_message(
    status: int, slug: str, title: str, detail: str, path: str, request_id: str
) -> tuple[Message, Message]:
    """A problem response sent by the guard itself, before or instead of the app's."""
    body = json.dumps(problem_body(status, slug, title, detail, path, request_id)).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class RequestGuard:
    def __init__(self, app: ASGIApp, audit: AuditWriter, max_body_bytes: int) -> None:
        self.app = app
        self.audit = audit
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_headers = Headers(scope=scope)
        given = request_headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        https = scope.get("scheme") == "https"
        path: str = scope["path"]

        declared = request_headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            start, body = _problem_message(
                413, *HTTP_TYPES[413], f"at most {self.max_body_bytes} bytes", path, request_id
            )
            await self._send_start(start, send, https, path, request_id, state)
            await send(body)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise HTTPException(413, f"at most {self.max_body_bytes} bytes")
            return message

        replaced = False

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start":
                entry: AuditEntry | None = state.get("audit")
                if entry is not None and not state.get("audit_written"):
                    entry.outcome = str(message["status"])
                    try:
                        await asyncio.wrap_future(self.audit.submit(entry))
                    except ServiceError:
                        log.error(
                            "audit record not written; request refused",
                            extra={"request_id": request_id},
                        )
                        replaced = True
                        start, body = _problem_message(
                            503, "audit-unavailable", Unavailable.title,
                            "the request could not be recorded in the audit trail",
                            path, request_id,
                        )  # fmt: skip
                        await self._send_start(start, send, https, path, request_id, state)
                        await send(body)
                        return
                self._access_log(scope, message["status"], started, request_id, state)
                await self._send_start(message, send, https, path, request_id, state)
                return
            if not replaced:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    @staticmethod
    async def _send_start(
        message: Message, send: Send, https: bool, path: str, request_id: str, state: dict[str, Any]
    ) -> None:
        headers = MutableHeaders(scope=message)
        _security_headers(headers, https, path)
        headers["X-Request-ID"] = request_id
        decision = state.get("rate_limit")
        if decision is not None:
            headers["RateLimit-Limit"] = str(decision.limit)
            headers["RateLimit-Remaining"] = str(decision.remaining)
            headers["RateLimit-Reset"] = str(decision.reset_seconds)
        await send(message)

    @staticmethod
    def _access_log(
        scope: Scope, status: int, started: float, request_id: str, state: dict[str, Any]
    ) -> None:
        entry: AuditEntry | None = state.get("audit")
        route_path = getattr(scope.get("route"), "path", None)
        path = route_path if route_path in SECRET_PATH_ROUTES else scope["path"]
        log.info(
            "request",
            extra={
                "request_id": request_id,
                "method": scope["method"],
                "path": path,
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "identity": entry.identity if entry else None,
            },
        )
