"""Webhooks in: verify, de-duplicate, coalesce, queue; then re-fetch and index.

A webhook only says "this item changed". :meth:`WebhookService.receive` checks the request
against the connector's webhook secret (:mod:`backend.webhooks.platforms`) and, for a Google
Business Profile connector that names its push identity, Google's token on the push
(:mod:`backend.webhooks.google_push`); it drops event ids seen before (replays, platform
retries) and adds the named items to the connector's waiting set in Postgres
(``webhook_pending``): an item already waiting absorbs the event, so a burst of 1,000 events
for 50 tickets leaves 50 waiting items. The first event that finds no drain queued queues
one on the job queue (backend.ingest.jobs' broker).

The drain job (:meth:`WebhookService.drain`) waits a short coalescing window, then takes
the waiting items and re-reads each through the connector's own adapter (``fetch_item``),
egress policy and ingest pipeline (:class:`KnowledgeIndexer`): pushed content is never
indexed. A deletion reaches Postgres, vectors and blobs (``KnowledgeIndexer.delete``) and
voids the company's cached answers. Items whose re-read failed are left to the scheduled
sync, which stays as reconciliation for everything a webhook missed.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from backend.adapters.base import Deletion, FetchedItem, FetchFailure, ItemFetcher, SourceDocument
from backend.adapters.http import RateLimiter
from backend.adapters.registry import adapter_spec, build_adapter, connector_base_urls
from backend.clock import Clock
from backend.db.models import Connector
from backend.db.repositories import companies as company_repo
from backend.db.repositories import connectors as connector_repo
from backend.db.repositories import webhooks as webhook_repo
from backend.db.repositories.audit_log import append_audit_entry
from backend.db.session import Database
from backend.egress import Egress, EgressRefused
from backend.errors import AppError, NotFound
from backend.ingest.connectors import ConnectorService
from backend.ingest.indexer import KnowledgeIndexer
from backend.ingest.sync import IndexingParts, LimiterFactory
from backend.secretbox import SecretBox
from backend.tenancy.company_id import CompanyId
from backend.webhooks.google_push import GooglePushVerifier, expected_push_identity
from backend.webhooks.platforms import (
    WEBHOOK_PLATFORMS,
    ChangedItem,
    InboundWebhook,
    bad_signature,
    verify_and_parse,
)

_log = structlog.get_logger("helpdesk.webhooks")

EnqueueDrain = Callable[[str, uuid.UUID], Awaitable[None]]
"""Queue a drain of (company id, connector id) on the job queue."""

# Secrets that the platform generates (Zendesk's signing secret) are given to us; the others
# we generate.
PLATFORM_GENERATED_SECRET = frozenset({"zendesk"})


def webhook_secret_associated_data(company_id: str, connector_id: uuid.UUID) -> bytes:
    """Binds a sealed webhook secret to its connector (and keeps it apart from credentials)."""
    return b"\x00".join(
        [b"helpdesk/webhook-secret", company_id.encode(), str(connector_id).encode()]
    )


_MAX_EVENT_ID = 128


def bounded_id(event_id: str) -> str:
    """Event ids as stored: a platform's id as sent, or, if longer than any platform's ids
    are, its SHA-256 (a body could otherwise make us store whatever it carries)."""
    if len(event_id) <= _MAX_EVENT_ID:
        return event_id
    return "sha256:" + hashlib.sha256(event_id.encode()).hexdigest()


@dataclass(frozen=True)
class WebhookSettings:
    replay_window: timedelta
    rotation_grace: timedelta
    coalesce_seconds: float
    drain_batch: int
    fetch_concurrency: int
    keywords_first: bool = True
    """Write a re-fetched item with its sparse (keyword) vectors first, so it is
    searchable at once, and add its dense vectors right after (the model is the slow part:
    about a tenth of a second per passage on one CPU core)."""


@dataclass(frozen=True)
class Received:
    items: int
    """Items the request named."""
    duplicates: int
    """Events already seen (replays, platform retries): nothing done for them."""
    queued: int
    """Items added to (or joined in) the waiting set."""


@dataclass
class DrainResult:
    fetched: int = 0
    upserted: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    dense_written: int = 0
    """Documents whose dense vectors followed their keyword-first write."""
    latencies_s: list[float] = field(default_factory=list)
    """Per item: first event received → searchable (or deleted), committed."""
    dense_latencies_s: list[float] = field(default_factory=list)
    """Per item written keyword-first: first event received → dense vectors written too."""


class WebhookService:
    def __init__(
        self,
        *,
        database: Database,
        connectors: ConnectorService,
        secret_box: SecretBox,
        parts: IndexingParts,
        egress: Egress,
        clock: Clock,
        settings: WebhookSettings,
        enqueue: EnqueueDrain,
        limiter_for: LimiterFactory | None = None,
        push_verifier: GooglePushVerifier | None = None,
    ) -> None:
        self.database = database
        self.connectors = connectors
        self.secret_box = secret_box
        self.parts = parts
        self.egress = egress
        self.clock = clock
        self.settings = settings
        self.enqueue = enqueue
        self.limiter_for = limiter_for
        # Google's keys for Pub/Sub push tokens, fetched through this service's egress.
        self.push_verifier = push_verifier or GooglePushVerifier(egress=egress, clock=clock)
        # One budget per connector for all its drains in this process (a fresh bucket per
        # drain would let a run of drains exceed the platform's per-minute quota).
        self._limiters: dict[uuid.UUID, RateLimiter] = {}

    def _limiter(self, connector: Connector) -> RateLimiter:
        limiter = self._limiters.get(connector.id)
        if limiter is None:
            limiter = (
                self.limiter_for(connector) if self.limiter_for is not None else None
            ) or RateLimiter.per_minute(
                adapter_spec(connector.platform).default_requests_per_minute, clock=self.clock
            )
            self._limiters[connector.id] = limiter
        return limiter

    # -- secrets ----------------------------------------------------------------------------

    async def set_secret(
        self, company_id: str, connector_id: uuid.UUID, given: str | None, *, actor: str
    ) -> str | None:
        """Set (or rotate) the connector's webhook secret. Returns a generated secret (to be
        shown once), or ``None`` when the platform's own secret was given. The secret it
        replaces stays valid for the rotation grace period."""
        async with self.database.tenant_session(company_id) as session:
            connector = await connector_repo.get_connector(session, connector_id)
            if connector is None:
                raise NotFound("no such connector", code="connector_not_found")
            if connector.platform not in WEBHOOK_PLATFORMS:
                raise AppError(
                    f"{connector.platform} connectors take no webhooks",
                    code="webhooks_unsupported",
                )
            if connector.platform in PLATFORM_GENERATED_SECRET and not given:
                raise AppError(
                    f"{connector.platform} generates the signing secret: pass it as signing_secret",
                    code="signing_secret_required",
                )
            if given and connector.platform not in PLATFORM_GENERATED_SECRET:
                raise AppError(
                    "this platform's webhook secret is generated here; send no signing_secret",
                    code="signing_secret_not_accepted",
                )
            secret = given or secrets.token_urlsafe(32)
            now = self.clock.now()
            sealed = self.secret_box.encrypt(
                secret.encode(), webhook_secret_associated_data(company_id, connector_id)
            )
            await webhook_repo.upsert_endpoint_secret(
                session,
                company_id=company_id,
                connector_id=connector_id,
                secret_sealed=sealed,
                now=now,
                previous_valid_until=now + self.settings.rotation_grace,
            )
            await append_audit_entry(
                session,
                company_id=company_id,
                actor=actor,
                action="connector.webhook_secret.set",
                target=str(connector_id),
                details={"generated": not given},
            )
        return None if given else secret

    async def remove_secret(self, company_id: str, connector_id: uuid.UUID, *, actor: str) -> None:
        async with self.database.tenant_session(company_id) as session:
            if not await webhook_repo.delete_endpoint(session, connector_id):
                raise NotFound("this connector has no webhook secret", code="webhook_not_found")
            await append_audit_entry(
                session,
                company_id=company_id,
                actor=actor,
                action="connector.webhook_secret.remove",
                target=str(connector_id),
            )

    def _secrets(self, endpoint: webhook_repo.WebhookEndpoint, now: datetime) -> list[str]:
        data = webhook_secret_associated_data(endpoint.company_id, endpoint.connector_id)
        valid = [self.secret_box.decrypt(endpoint.secret_sealed, data).decode()]
        if (
            endpoint.previous_secret_sealed is not None
            and endpoint.previous_valid_until is not None
            and now < endpoint.previous_valid_until
        ):
            valid.append(self.secret_box.decrypt(endpoint.previous_secret_sealed, data).decode())
        return valid

    # -- receiving --------------------------------------------------------------------------

    async def receive(self, connector_ref: str, request: InboundWebhook) -> Received:
        """Verify one delivery and queue what it names. 401 for any connector that does not
        exist, has no webhook secret, or whose secret does not match: the answer is the same
        so a caller cannot probe for connectors. A Google Business Profile connector with a
        push identity also needs Google's OIDC token for it (:mod:`.google_push`)."""
        try:
            connector_id = uuid.UUID(connector_ref)
        except ValueError:
            raise bad_signature() from None
        async with self.database.webhook_lookup_session(str(connector_id)) as session:
            endpoint = await webhook_repo.find_endpoint(session, connector_id)
        if endpoint is None:
            raise bad_signature()
        company_id = endpoint.company_id
        now = self.clock.now()
        async with self.database.tenant_session(company_id) as session:
            connector = await connector_repo.get_connector(session, connector_id)
            company = await company_repo.get_company(session, company_id)
            if connector is None or company is None:
                raise bad_signature()
            items = verify_and_parse(
                connector.platform,
                request,
                self._secrets(endpoint, now),
                now=now,
                replay_window=self.settings.replay_window,
            )
            push_identity = expected_push_identity(connector.platform, connector.settings)
            # Authentic, but nothing of a suspended company or a paused connector runs: such a
            # delivery is accepted (so the platform does not retry forever) and dropped.
            active = company.status == "active" and connector.enabled
            if push_identity is None and active:
                # The common case: verified and queued in one transaction.
                received, must_enqueue = await self._queue_items(
                    session, company_id, connector_id, items, now
                )
        if push_identity is not None:
            # Outside any transaction: this may fetch Google's keys.
            await self.push_verifier.verify(request.headers, push_identity)
            if active:
                async with self.database.tenant_session(company_id) as session:
                    received, must_enqueue = await self._queue_items(
                        session, company_id, connector_id, items, now
                    )
        if not active:
            return Received(items=len(items), duplicates=0, queued=0)
        if must_enqueue:
            try:
                await self.enqueue(company_id, connector_id)
            except Exception:
                # Nothing will drain: free the flag so the next delivery queues again (the
                # platform retries this one on our 503).
                async with self.database.tenant_session(company_id) as session:
                    await webhook_repo.release_drain(session, connector_id)
                raise
        return received

    async def _queue_items(
        self,
        session: AsyncSession,
        company_id: str,
        connector_id: uuid.UUID,
        items: list[ChangedItem],
        now: datetime,
    ) -> tuple[Received, bool]:
        """Record a verified delivery's new event ids and add its items to the waiting set;
        also says whether this delivery must queue the drain (no drain was queued yet)."""
        with_ids = [bounded_id(item.event_id) for item in items if item.event_id is not None]
        new_ids = await webhook_repo.record_new_events(
            session,
            company_id=company_id,
            connector_id=connector_id,
            event_ids=with_ids,
            now=now,
        )
        wanted = sorted(
            {
                item.item_ref
                for item in items
                if item.event_id is None or bounded_id(item.event_id) in new_ids
            }
        )
        await webhook_repo.add_pending(
            session,
            company_id=company_id,
            connector_id=connector_id,
            external_ids=wanted,
            now=now,
        )
        must_enqueue = bool(wanted) and await webhook_repo.claim_drain(session, connector_id)
        received = Received(
            items=len(items), duplicates=len(with_ids) - len(new_ids), queued=len(wanted)
        )
        return received, must_enqueue

    # -- draining ---------------------------------------------------------------------------

    async def drain(self, company_id: CompanyId, connector_id: uuid.UUID) -> DrainResult:
        """Re-read every waiting item of one connector and index what came back."""
        if self.settings.coalesce_seconds > 0:
            # Let a burst gather: events for an item already waiting join it.
            await asyncio.sleep(self.settings.coalesce_seconds)
        async with self.database.tenant_session(company_id) as session:
            # Released before taking items: an event arriving from now on queues a new
            # drain, so none is left waiting without one.
            await webhook_repo.release_drain(session, connector_id)
            # Event ids older than twice the replay window cannot match a live replay.
            await webhook_repo.forget_events_before(
                session, self.clock.now() - 2 * self.settings.replay_window
            )
            connector = await connector_repo.get_connector(session, connector_id)
            company = await company_repo.get_company(session, company_id)
        result = DrainResult()
        if connector is None or company is None or company.status != "active":
            return result
        config = self.connectors.open(connector)
        try:
            scope = self.egress.policy.scope(
                connector.platform, connector_base_urls(connector.platform, config.settings)
            )
        except EgressRefused as exc:
            _log.warning("webhook drain refused", company_id=company_id, reason=exc.reason)
            return result
        indexer = self.parts.indexer(self.database, connector_id=connector.id)
        async with self.egress.client(scope) as client:
            adapter: Any = build_adapter(
                connector.platform,
                config.settings,
                config.credentials,
                client=client,
                limiter=self._limiter(connector),
                clock=self.clock,
            )
            if not isinstance(adapter, ItemFetcher):
                return result
            while True:
                async with self.database.tenant_session(company_id) as session:
                    batch = await webhook_repo.take_pending(
                        session, connector_id, limit=self.settings.drain_batch
                    )
                if not batch:
                    break
                await self._fetch_and_index(company_id, adapter, indexer, batch, result)
        completed = await self.parts.indexer(
            self.database, connector_id=connector.id, reindex=True
        ).complete_left_behind(company_id)
        if completed:
            await self._knowledge_changed(company_id)
        return result

    async def _fetch_and_index(
        self,
        company_id: CompanyId,
        adapter: ItemFetcher,
        indexer: KnowledgeIndexer,
        batch: list[tuple[str, datetime, int]],
        result: DrainResult,
    ) -> None:
        gate = asyncio.Semaphore(self.settings.fetch_concurrency)

        async def fetch(item_ref: str) -> FetchedItem:
            async with gate:
                return await adapter.fetch_item(item_ref)

        fetched = await asyncio.gather(*(fetch(item_ref) for item_ref, _, _ in batch))
        documents: list[SourceDocument] = []
        deletions: list[Deletion] = []
        failures: list[FetchFailure] = []
        for item in fetched:
            documents.extend(item.documents)
            deletions.extend(item.deletions)
            failures.extend(item.failures)
        result.fetched += len(batch)
        prepared = await indexer.prepare(
            company_id, documents, dense=not self.settings.keywords_first
        )
        counts = await indexer.write(prepared, deletions)
        if counts.changed:
            await self._knowledge_changed(company_id)
        result.upserted += counts.upserted
        result.unchanged += counts.unchanged
        result.deleted += counts.deleted
        result.failed += len(failures)
        if failures:
            # Left to the scheduled sync (reconciliation); failures carry fixed texts only.
            _log.warning(
                "webhook re-fetch failed",
                company_id=company_id,
                failures=[f.model_dump(mode="json") for f in failures[:10]],
            )
        searchable = self.clock.now()
        result.latencies_s.extend(
            max(0.0, (searchable - received).total_seconds()) for _, received, _ in batch
        )
        if self.settings.keywords_first and counts.upserted:
            # The item is searchable by keyword now; the model adds its meaning. New drains
            # keep taking items meanwhile (the drain flag is free), and PyTorch encodes on
            # its own thread, so this wait holds up no other item's keyword write.
            written = await indexer.write_dense(prepared)
            if written:
                await self._knowledge_changed(company_id)
            complete = self.clock.now()
            result.dense_written += written
            result.dense_latencies_s.extend(
                max(0.0, (complete - received).total_seconds()) for _, received, _ in batch
            )

    async def _knowledge_changed(self, company_id: CompanyId) -> None:
        async with self.parts.scope(self.database, company_id) as tenant:
            # New or removed knowledge: answers cached before it die once this commits.
            await tenant.knowledge_changed()
