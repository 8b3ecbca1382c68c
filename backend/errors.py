"""The one error type of the service, and the one handler that turns it into JSON.

Every failure a caller can act on is raised as :class:`AppError` with a stable ``code``;
the API maps it to ``{"error": code, "detail": ...}`` with the error's HTTP status.
Validation errors from FastAPI/pydantic are mapped to the same shape (422), and anything
unexpected becomes a 500 ``internal_error`` without leaking internals.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """A failure with a stable machine-readable code, an HTTP status and a human detail."""

    status_code: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        detail: Any = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.detail = detail if detail is not None else self.code.replace("_", " ")
        self.headers = headers
        super().__init__(f"{self.code}: {self.detail}")

    def to_body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail}


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class InvalidCompanyId(AppError):
    status_code = 400
    code = "invalid_company_id"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, detail: Any = None, *, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Unavailable(AppError):
    status_code = 503
    code = "unavailable"

    def __init__(
        self,
        detail: Any = None,
        *,
        code: str | None = None,
        retry_after_s: int = 5,
        headers: dict[str, str] | None = None,
    ) -> None:
        # A 503 is worth retrying: say when.
        super().__init__(
            detail, code=code, headers={"Retry-After": str(retry_after_s), **(headers or {})}
        )


class StoreUnavailable(Unavailable):
    """A store (``postgres``, ``redis``, ``vectors``, ``object_store``) cannot serve now; the
    request may be retried as is. The body names the store:
    ``{"error": "store_unavailable", "detail": {"store": "postgres", "message": ...}}``."""

    code = "store_unavailable"

    def __init__(self, store: str, message: str | None = None, *, retry_after_s: int = 5) -> None:
        self.store = store
        super().__init__(
            {"store": store, "message": message or f"{store} is unavailable; retry shortly"},
            retry_after_s=retry_after_s,
        )
