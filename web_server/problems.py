"""Errors as ``application/problem+json`` (RFC 9457) with a stable ``code``.

Every error the API answers, its own and the framework's (404 routes, 405, request validation),
goes through the handlers registered by :func:`install_problem_handlers`.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import ErrorCode

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: ``Retry-After`` (seconds) of a 503 ``STORE_UNAVAILABLE``.
STORE_RETRY_AFTER_S = 5

#: The code used when the framework raises a plain HTTP error.
_STATUS_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "VIDEO_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    416: "RANGE_NOT_SATISFIABLE",
    422: "VALIDATION_ERROR",
    503: "UNAVAILABLE",
}


class Problem(BaseModel):
    """An RFC 9457 problem document; ``code`` is the stable, machine-readable reason."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str | None = None


class ApiError(Exception):
    """An error answered as problem+json.

    Args:
        status: the HTTP status.
        code: the stable error code (``INVALID_VIDEO``, ``NOT_FOUND``, ``STALE_LEASE``, ...).
        detail: what happened, in words a user can act on.
        headers: extra response headers (``WWW-Authenticate``, ``Content-Range``).
        extra: further members of the problem document.
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    status: int, code: str, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The problem+json response for ``status`` and ``code``."""
    body = Problem(title=HTTPStatus(status).phrase, status=status, code=code, detail=detail, **extra)
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def not_found(what: str = "job") -> ApiError:
    """404 for a resource the caller may not see (another owner's job looks exactly like a missing one)."""
    return ApiError(404, "NOT_FOUND", f"No such {what}.")


def _jsonable_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors
    ]


def install_problem_handlers(app: FastAPI) -> None:
    """Answer :class:`ApiError`, framework HTTP errors, validation errors and an unreachable MongoDB
    (503 ``STORE_UNAVAILABLE`` with ``Retry-After``) as problem+json."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail, headers=exc.headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "HTTP_ERROR")
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(exc.status_code, code, detail, headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _jsonable_errors(list(exc.errors()))
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return problem_response(422, "VALIDATION_ERROR", f"{where}: {first['msg']}", errors=errors)

    @app.exception_handler(ConnectionFailure)
    async def _store_unavailable(_request: Request, exc: ConnectionFailure) -> JSONResponse:
        # pymongo's message lists every server it tried; the first line is enough to tell why.
        logger.warning("MongoDB unreachable: %s: %.300s", type(exc).__name__, exc)
        return problem_response(
            503,
            ErrorCode.STORE_UNAVAILABLE.value,
            f"The job store (MongoDB) cannot be reached; try again in {STORE_RETRY_AFTER_S} s. "
            "If it persists, the operator should check the database.",
            headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error", exc_info=exc)
        return problem_response(500, "INTERNAL", "The server failed; the error was logged.")
