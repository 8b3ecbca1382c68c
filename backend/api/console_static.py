"""The company console's static files (frontend-console/dist) at ``/console/``.

The console signs in with a session cookie, so its pages get headers the widget's do not:
they may not be framed (clickjacking), they load scripts only from this origin, and
``index.html`` is revalidated on every load so a deploy reaches users at once, while the
content-hashed assets under ``assets/`` are cached for good.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CONSOLE_PATH = "/console"

# uPlot draws on canvas and sets inline sizes: styles need 'unsafe-inline', scripts do not.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
IMMUTABLE = "public, max-age=31536000, immutable"


class ConsoleFiles(StaticFiles):
    """Static files with the console's security and caching headers."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        hashed_asset = path.startswith("assets/") and response.status_code == 200
        response.headers["Cache-Control"] = IMMUTABLE if hashed_asset else "no-cache"
        return response


def mount_console(app: FastAPI, directory: Path) -> None:
    """Serve the built console at ``/console/`` (``/console`` redirects there). Mount it
    after every router: routes under ``/console/api`` must be matched first."""

    @app.get(CONSOLE_PATH, include_in_schema=False)
    async def console_root() -> RedirectResponse:
        return RedirectResponse(f"{CONSOLE_PATH}/", status_code=308)

    app.mount(CONSOLE_PATH, ConsoleFiles(directory=directory, html=True), name="console")
