"""Errors a request can end in, each carrying its HTTP status and a stable problem type.

Services raise them; the API turns them into RFC 9457 problem responses and the CLI into
messages. The `type` slugs are part of the API contract: clients may branch on them.
"""

from __future__ import annotations


class ServiceError(Exception):
    status = 500
    type = "internal-error"
    title = "Internal error"

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotAuthenticated(ServiceError):
    status = 401
    type = "not-authenticated"
    title = "Authentication required"


class Forbidden(ServiceError):
    status = 403
    type = "forbidden"
    title = "Not allowed for this role"


class NotFound(ServiceError):
    status = 404
    type = "not-found"
    title = "Not found"


class Conflict(ServiceError):
    status = 409
    type = "conflict"
    title = "Conflict"


class InvalidParameter(ServiceError):
    status = 422
    type = "invalid-parameter"
    title = "Invalid parameter"

    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(detail, parameter=parameter)
        self.parameter = parameter


class RateLimited(ServiceError):
    status = 429
    type = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(ServiceError):
    status = 503
    type = "unavailable"
    title = "Service unavailable"
