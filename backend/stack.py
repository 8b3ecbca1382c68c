"""Wires the running stack once per process — for the API, the worker, the CLI and scripts.

With no ``HELPDESK_DATABASE_URL`` it starts the embedded PostgreSQL in ``data_dir`` and
stops it again on exit; with one it connects to that server. Migrations run when an owner
connection is known (always in the embedded default).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import structlog

from backend.api.state import AppState
from backend.config import Settings
from backend.db.embedded import EmbeddedPostgres
from backend.db.provisioning import assert_runtime_role_is_safe, run_migrations
from backend.db.session import Database
from backend.tenancy.clock import Clock, SystemClock

_log = structlog.get_logger("helpdesk.stack")


@asynccontextmanager
async def open_stack(
    settings: Settings, *, clock: Clock | None = None, migrate: bool | None = None
) -> AsyncIterator[AppState]:
    async with AsyncExitStack() as exit_stack:
        runtime_url, owner_url = settings.database_url, settings.database_owner_url
        if runtime_url is None:
            data_dir = settings.resolved_data_dir
            data_dir.mkdir(parents=True, exist_ok=True)
            embedded = EmbeddedPostgres(data_dir, app_role=settings.database_app_role)
            urls = await embedded.start()
            exit_stack.push_async_callback(embedded.stop)
            runtime_url, owner_url = urls.runtime_url, urls.owner_url
            _log.info("using embedded postgres", data_dir=str(data_dir))

        should_migrate = settings.auto_migrate if migrate is None else migrate
        if should_migrate and owner_url:
            await run_migrations(owner_url, app_role=settings.database_app_role)

        database = Database.from_url(runtime_url, pool_size=settings.database_pool_size)
        exit_stack.push_async_callback(database.dispose)
        await assert_runtime_role_is_safe(database.engine)

        state = AppState(settings=settings, database=database, clock=clock or SystemClock())
        state.readiness_checks["postgres"] = database.ping
        yield state
