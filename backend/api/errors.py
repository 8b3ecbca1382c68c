"""Maps every failure to ``{"error": code, "detail": ...}`` with the right status."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.api.responses import OrjsonResponse
from backend.db.outage import is_database_outage
from backend.errors import AppError, StoreUnavailable

_log = structlog.get_logger("helpdesk.errors")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_response(
    status: int, code: str, detail: Any, headers: dict[str, str] | None = None
) -> OrjsonResponse:
    return OrjsonResponse(
        {"error": code, "detail": jsonable_encoder(detail)}, status_code=status, headers=headers
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> OrjsonResponse:
        return error_response(exc.status_code, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> OrjsonResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return error_response(422, "validation_error", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> OrjsonResponse:
        # Edge rejections (backend.api.edge) carry their own code, e.g. ``nul_character``.
        code = getattr(exc, "code", None) or _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, exc.detail, getattr(exc, "headers", None))

    # A store that cannot serve now is a 503 with Retry-After naming it, not a 500: the same
    # request will work once it is back (the pools reconnect by themselves, no restart).
    # Most outages already arrive as StoreUnavailable from the session layer; these catch
    # the rest (a statement outside a tenant session, a Redis call that was not guarded).
    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, exc: SQLAlchemyError) -> OrjsonResponse:
        if is_database_outage(exc):
            return await _app_error(request, StoreUnavailable("postgres"))
        _log.exception("unhandled database error", exc_type=type(exc).__name__)
        return error_response(500, "internal_error", "an unexpected error occurred")

    @app.exception_handler(RedisError)
    async def _redis(request: Request, exc: RedisError) -> OrjsonResponse:
        _log.warning("redis unavailable", exc_type=type(exc).__name__)
        return await _app_error(request, StoreUnavailable("redis"))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> OrjsonResponse:
        _log.exception("unhandled error", exc_type=type(exc).__name__)
        return error_response(500, "internal_error", "an unexpected error occurred")
