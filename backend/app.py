"""The FastAPI application: ``create_app()`` builds it; the lifespan wires the stack once."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import start_http_server

from backend import __version__
from backend.api import admin, console, demo, ops
from backend.api.console_static import mount_console
from backend.api.cors import CompanyCorsMiddleware, OriginPolicy
from backend.api.edge import RequestEdgeMiddleware
from backend.api.errors import install_error_handlers
from backend.api.v1 import (
    analytics,
    api_keys,
    assistant,
    company,
    company_settings,
    connector_kinds,
    connectors,
    evaluation,
    insights,
    knowledge,
    privacy,
    review_replies,
    triage,
    webhooks,
    widget,
)
from backend.clock import Clock
from backend.config import Settings
from backend.egress import Resolver
from backend.embeddings.dense import SentenceTransformerEncoder
from backend.observability.logging import configure_logging
from backend.observability.middleware import RequestContextMiddleware
from backend.stack import Stack, open_stack

DESCRIPTION = """
Helpdesk Assistant answers agents' questions, finds similar solved tickets and drafts
replies grounded in **your company's own** tickets, articles and reviews, with citations.

**Authentication.** Every `/v1` call carries `Authorization: Bearer <API key>` and
`X-Company-ID: <your company id>`. The key decides the company; the header must name the
same company. Errors: missing/unknown/revoked key → 401, key of another company → 403,
malformed company id → 400. The sidebar widget uses a short-lived **widget token** instead
(`POST /v1/widget-tokens`, minted server-side with an API key); it works for the assistant
endpoints only. The company console signs people in with a cookie instead (`hd_console`,
from `POST /console/api/session`); with it `X-Company-ID` may be omitted, and POST, PUT,
PATCH and DELETE need the `X-CSRF-Token` header the session returned.

**Scopes and roles.** API keys carry scopes: `assistant`, `ingest` (connectors, syncs,
documents), `admin` (keys, settings, audit log, usage, analytics) and `widget-mint`; keys
made before scopes have all four. A key without the endpoint's scope → 403
`insufficient_scope`. Console users have a role (owner, admin, agent); an agent may use the
assistant and read documents only (403 `role_forbidden` otherwise).

**Streams.** The `/stream` endpoints send Server-Sent Events: `token` events with text, then
one `done` event (the full response with citations) or an `error` event.

**Errors** always have the body `{"error": "<code>", "detail": ...}`.
"""

TAGS = [
    {"name": "company", "description": "Your company's profile and audit trail."},
    {"name": "assistant", "description": "Search, answers, reply drafts, feedback, widget."},
    {"name": "connectors", "description": "Sources, syncs, indexed documents, erasure."},
    {
        "name": "insight",
        "description": "Triage suggestions, usage analytics and knowledge gaps (agents only).",
    },
    {
        "name": "webhooks",
        "description": "Platforms push changes in; items are re-fetched and indexed in seconds.",
    },
    {"name": "console", "description": "The company console: sign-in, users, invitations."},
    {"name": "admin", "description": "Platform administration (admin token)."},
    {"name": "operations", "description": "Health, readiness and metrics."},
]


async def _settle(state: Stack) -> None:
    """Get the process ready for traffic: load the local embedding models now rather than
    on the first sync or search (seconds; the first start also exports the query model),
    then move everything that lives as long as the process (libraries, the models, the
    stack) out of the garbage collector's sight, so a full collection under load walks
    request garbage only instead of pausing every request for tens of milliseconds."""
    if isinstance(state.dense, SentenceTransformerEncoder):
        await state.dense.warm_up()
    gc.collect()
    gc.freeze()


@contextmanager
def serve_metrics(bind: str | None) -> Iterator[None]:
    """Prometheus text on a listener of its own (a private interface), when configured:
    metrics name companies, so they stay off the public API port."""
    if not bind:
        yield
        return
    host, _, port = bind.rpartition(":")
    server, thread = start_http_server(int(port), addr=host or "127.0.0.1")
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    http_transport: httpx.AsyncBaseTransport | None = None,
    egress_resolver: Resolver | None = None,
) -> FastAPI:
    """The API. ``clock``, ``http_transport`` and ``egress_resolver`` are injection points
    for tests (the egress policy still applies to what they reach)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Without Redis the jobs run in this process, so the scheduler runs here too.
        async with open_stack(
            settings,
            clock=clock,
            http_transport=http_transport,
            egress_resolver=egress_resolver,
            run_scheduler=settings.in_process_jobs,
        ) as state:
            app.state.helpdesk = state
            app.state.origin_policy = OriginPolicy(
                state.database,
                global_origins=settings.cors_allow_origins,
                cache_seconds=settings.plan_cache_seconds,
            )
            await _settle(state)
            with serve_metrics(settings.metrics_bind):
                yield

    app = FastAPI(
        title="Helpdesk Assistant API",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # Outermost last: request context → CORS (per company) → edge checks → routes, so the
    # edge's 413/400 answers carry CORS headers and request ids too.
    app.add_middleware(RequestEdgeMiddleware, max_body_bytes=settings.max_request_body_bytes)
    app.add_middleware(
        CompanyCorsMiddleware, policy=lambda: getattr(app.state, "origin_policy", None)
    )
    app.add_middleware(RequestContextMiddleware)
    app.include_router(ops.router)
    app.include_router(admin.router)
    app.include_router(console.operator_router)
    app.include_router(console.router)
    app.include_router(company.router)
    app.include_router(api_keys.router)
    app.include_router(company_settings.router)
    # Before the connector routes: /v1/connectors/kinds is not a connector id.
    app.include_router(connector_kinds.router)
    app.include_router(connectors.router)
    app.include_router(knowledge.router)
    app.include_router(privacy.router)
    app.include_router(assistant.router)
    app.include_router(widget.router)
    app.include_router(triage.router)
    app.include_router(analytics.router)
    app.include_router(insights.router)
    app.include_router(evaluation.router)
    app.include_router(review_replies.router)
    app.include_router(review_replies.notes_router)
    app.include_router(webhooks.inbound)
    app.include_router(webhooks.manage)
    if settings.demo_mode:
        app.include_router(demo.router)
    if settings.widget_dir.is_dir():
        # The embeddable widget bundle (and its demo page); nginx serves the same files.
        app.mount("/widget", StaticFiles(directory=settings.widget_dir), name="widget")
    if settings.console_dir.is_dir():
        mount_console(app, settings.console_dir)
    return app
