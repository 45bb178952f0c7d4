"""RFC 9457 problem details: one base error, a few subclasses, one set of handlers.

Every error a client sees is ``application/problem+json`` with a stable machine ``code``; validation
errors list each offending field. Unexpected exceptions become a 500 that names only the request id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.observability import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger("errors")


class FieldError(BaseModel):
    field: str = Field(description="Where the problem is, e.g. body.amount_vnd or query.cursor")
    message: str
    type: str = Field(description="Machine-readable kind of validation failure")


class Problem(BaseModel):
    """RFC 9457 problem details with the platform's stable ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        title: str | None = None,
        errors: Iterable[FieldError | Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        if code:
            self.code = code
        if status:
            self.status = status
        if title:
            self.title = title
        self.errors = [e if isinstance(e, FieldError) else FieldError(**e) for e in errors] if errors else None
        self.headers = dict(headers or {})
        self.extra = extra


class BadRequest(ProblemError):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthorized(ProblemError):
    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(ProblemError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(ProblemError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(ProblemError):
    status, code, title = 409, "conflict", "Conflict"


class PayloadTooLarge(ProblemError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class Unprocessable(ProblemError):
    status, code, title = 422, "validation_error", "Invalid request"


class TooManyRequests(ProblemError):
    status, code, title = 429, "rate_limited", "Too many requests"


class ServiceUnavailable(ProblemError):
    status, code, title = 503, "service_unavailable", "Service unavailable"


class UpstreamTimeout(ProblemError):
    status, code, title = 504, "upstream_timeout", "Upstream timed out"


def field_error(field: str, message: str, type_: str = "invalid") -> Unprocessable:
    """A 422 naming one field, for rules checked in service code rather than by the schema."""
    return Unprocessable(message, errors=[FieldError(field=field, message=message, type=type_)])


def problem_body(
    status: int,
    code: str,
    title: str | None = None,
    detail: str | None = None,
    *,
    instance: str | None = None,
    errors: list[FieldError] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    body.update(extra)
    return body


def problem_response(
    status: int,
    code: str,
    title: str | None = None,
    detail: str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, code, title, detail, **kwargs),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def _loc_to_field(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(
            exc.status,
            exc.code,
            exc.title,
            exc.detail,
            instance=request.url.path,
            errors=exc.errors,
            headers=exc.headers,
            **exc.extra,
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            FieldError(field=_loc_to_field(err.get("loc", ())), message=err.get("msg", ""), type=err["type"])
            for err in exc.errors()
        ]
        fields = ", ".join(dict.fromkeys(e.field for e in errors))
        return problem_response(
            422,
            "validation_error",
            "Invalid request",
            f"Invalid value for {fields}" if fields else "Invalid request",
            instance=request.url.path,
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # A body that is not UTF-8 JSON is invalid input like any other: the declared 422, naming it.
            error = FieldError(field="body", message="The body is not valid JSON", type="json_invalid")
            return problem_response(
                422,
                "validation_error",
                "Invalid request",
                "Invalid value for body",
                instance=request.url.path,
                errors=[error],
            )
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(exc.status_code, code, None, detail, instance=request.url.path, headers=exc.headers)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return problem_response(
            500, "internal_error", "Internal server error", "An unexpected error occurred; quote the request id."
        )

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries declaring problem+json for the given statuses."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
