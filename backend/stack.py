"""Wires the running stack once per process — for the API, the worker, the CLI and scripts.

:class:`Stack` is what :func:`open_stack` yields: every store and service, built once. Work
for one company goes through :meth:`Stack.for_tenant`, which opens that company's
:class:`~backend.tenancy.scope.TenantScope` (its Postgres transaction and store views); the
API's request dependency, the worker, the CLI and the demo loader all enter that way. The
API (``backend.api``) sits on top of this module; nothing here or below imports from it.

With no ``HELPDESK_DATABASE_URL`` it starts the embedded PostgreSQL in ``data_dir`` and
stops it again on exit; with one it connects to that server. Migrations run when an owner
connection is known (always in the embedded default). Every other store follows the same
rule: a URL selects a server, nothing selects the embedded engine under ``data_dir``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import structlog
from taskiq import AsyncBroker

from backend.assistant import Assistant, company_settings_from_database
from backend.assistant.recorder import USAGE, InteractionRecorder
from backend.assistant.service import AssistantService
from backend.blobs import BlobStore, LocalBlobStore, S3BlobStore
from backend.cache import CacheBackend, build_cache_backend
from backend.clock import Clock, SystemClock
from backend.config import Settings
from backend.db.embedded import EmbeddedPostgres
from backend.db.provisioning import assert_runtime_role_is_safe, run_migrations
from backend.db.session import Database
from backend.demo import DATA_DIR as DEMO_DATA_DIR
from backend.egress import Egress, EgressPolicy, Resolver, parse_allowed_hosts
from backend.embeddings.dense import DenseEncoder, build_dense_encoder
from backend.embeddings.sparse import SparseEncoder
from backend.ingest.connectors import ConnectorService
from backend.ingest.file_imports import FileImportPolicy
from backend.ingest.indexer import KnowledgeIndexer
from backend.ingest.jobs import JobQueue, SyncScheduler, build_broker
from backend.ingest.sync import IndexingParts, SyncService
from backend.insight.gaps import GapFinder
from backend.insight.triage import TriageService
from backend.llm.builder import build_router_from_settings
from backend.llm.cache import ResponseInvalidator
from backend.llm.company_choice import CachedCompanyChoices
from backend.llm.ledger import PostgresBudgetLedger
from backend.llm.router import LLMRouter
from backend.outbox import FileOutbox
from backend.privacy.requesters import RequesterPrivacy
from backend.replies.jobs import register_review_drafts_task
from backend.replies.service import ReviewReplyService
from backend.replies.wiring import build_reply_service
from backend.retrieval import HybridRetriever
from backend.secretbox import SecretBox, load_or_create_key
from backend.tenancy.company_id import CompanyId
from backend.tenancy.credential_cache import CredentialCache
from backend.tenancy.lifecycle import CompanyLifecycle
from backend.tenancy.plans import PlanLimits, PlanService, build_limiter_storage
from backend.tenancy.scope import TenantScope, TenantStores
from backend.tenancy.widget_tokens import SIGNING_KEY_PURPOSE, WidgetTokenSigner
from backend.vectors import VectorStore, build_vector_store
from backend.webhooks.google_push import GooglePushVerifier
from backend.webhooks.jobs import register_drain_task
from backend.webhooks.service import WebhookService, WebhookSettings

_log = structlog.get_logger("helpdesk.stack")

ReadinessCheck = Callable[[], Awaitable[None]]


@dataclass
class Stack:
    """Every store and service of one process, wired once by :func:`open_stack`."""

    settings: Settings
    database: Database
    clock: Clock
    vectors: VectorStore
    dense: DenseEncoder
    blobs: BlobStore
    cache: CacheBackend
    connectors: ConnectorService
    sync: SyncService
    jobs: JobQueue
    router: LLMRouter
    llm_choices: CachedCompanyChoices
    assistant: AssistantService
    widget_signer: WidgetTokenSigner
    triage: TriageService
    replies: ReviewReplyService
    credentials: CredentialCache
    plans: PlanService
    # name → check; /readyz runs each configured store's check.
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    webhooks: WebhookService | None = None
    """Webhooks in (backend.webhooks); set by open_stack."""

    @property
    def stores(self) -> TenantStores:
        return TenantStores(self.database, self.vectors, self.blobs, self.cache)

    def for_tenant(self, company_id: CompanyId) -> AbstractAsyncContextManager[TenantScope]:
        """One company's scope: committed when the block exits, rolled back if it raises."""
        return self.stores.scope(company_id)

    def indexer(self) -> KnowledgeIndexer:
        """Uploads, deletions and the CLI index through the same parts a sync uses."""
        return self.sync.parts.indexer(self.database)

    def gap_finder(self) -> GapFinder:
        """Knowledge gaps, searched with the default fusion settings."""
        parts = self.sync.parts
        return GapFinder(
            self.database,
            HybridRetriever(parts.vectors, parts.dense, parts.sparse),
            parts.dense,
            router=self.router,
        )

    def privacy(self) -> RequesterPrivacy:
        """Erasure and export of one requester, run inside a tenant scope."""
        return RequesterPrivacy(
            flush_records=self.assistant.recorder.flush,
            phone_region=self.settings.privacy_phone_region,
        )

    def lifecycle(self) -> CompanyLifecycle:
        """Suspension and deletion, wired to this process's stores and caches."""
        return CompanyLifecycle(
            stores=self.stores,
            clock=self.clock,
            credentials=self.credentials,
            pending_records=self.assistant.recorder,
        )


def _secret(value: object) -> str | None:
    getter = getattr(value, "get_secret_value", None)
    return getter() if getter else None


def build_blob_store(settings: Settings) -> BlobStore:
    if settings.s3_bucket:
        return S3BlobStore.from_settings(
            bucket=settings.s3_bucket,
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=_secret(settings.s3_access_key_id),
            secret_access_key=_secret(settings.s3_secret_access_key),
        )
    return LocalBlobStore(settings.resolved_data_dir / "objects")


def build_egress_policy(settings: Settings) -> EgressPolicy:
    return EgressPolicy(
        allowed_hosts=parse_allowed_hosts(settings.egress_allowed_hosts),
        max_response_bytes=settings.egress_max_response_bytes,
        allow_loopback_for_tests=settings.egress_allow_loopback_for_tests,
    )


def build_file_import_policy(settings: Settings) -> FileImportPolicy:
    # The built-in demo data is the one fixed exception: sample files shipped in the package.
    return FileImportPolicy((settings.resolved_import_root, DEMO_DATA_DIR))


def plan_defaults(settings: Settings) -> PlanLimits:
    return PlanLimits(
        requests_per_minute=settings.plan_default_requests_per_minute,
        assistant_calls_per_month=settings.plan_default_assistant_calls_per_month,
        documents=settings.plan_default_documents,
        connectors=settings.plan_default_connectors,
    )


def build_webhook_service(
    settings: Settings,
    database: Database,
    connectors: ConnectorService,
    secret_box: SecretBox,
    sync: SyncService,
    egress: Egress,
    clock: Clock,
    broker: AsyncBroker,
) -> WebhookService:
    """Webhooks in, with their drain task registered on the sync jobs' broker."""
    service = WebhookService(
        database=database,
        connectors=connectors,
        secret_box=secret_box,
        parts=sync.parts,
        egress=egress,
        clock=clock,
        settings=WebhookSettings(
            replay_window=timedelta(seconds=settings.webhook_replay_window_s),
            rotation_grace=timedelta(seconds=settings.webhook_rotation_grace_s),
            coalesce_seconds=settings.webhook_coalesce_s,
            drain_batch=settings.webhook_drain_batch,
            fetch_concurrency=settings.webhook_fetch_concurrency,
            keywords_first=settings.webhook_keywords_first,
        ),
        enqueue=register_drain_task(broker),
        limiter_for=sync.limiter_for,
        # Pub/Sub push tokens of Google Business Profile connectors; Google's keys come
        # through the same egress policy as every platform call.
        push_verifier=GooglePushVerifier(egress=egress, clock=clock),
    )
    broker.state.webhook_service = service
    return service


def build_secret_box(settings: Settings) -> SecretBox:
    if settings.encryption_key is not None:
        return SecretBox.from_base64(settings.encryption_key.get_secret_value())
    if settings.environment == "production":
        raise RuntimeError("HELPDESK_ENCRYPTION_KEY is required in production")
    return SecretBox(load_or_create_key(settings.resolved_data_dir / "encryption.key"))


@asynccontextmanager
async def open_stack(
    settings: Settings,
    *,
    clock: Clock | None = None,
    migrate: bool | None = None,
    run_scheduler: bool = False,
    http_transport: httpx.AsyncBaseTransport | None = None,
    egress_resolver: Resolver | None = None,
) -> AsyncIterator[Stack]:
    """Open every store. ``http_transport`` replaces the network for platform calls and
    ``egress_resolver`` the DNS (tests replay platform APIs through them at the protocol
    level); the egress policy runs in front of both either way."""
    clock = clock or SystemClock()
    async with AsyncExitStack() as exit_stack:
        runtime_url, owner_url = settings.database_url, settings.database_owner_url
        data_dir = settings.resolved_data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        if runtime_url is None:
            embedded = EmbeddedPostgres(data_dir, app_role=settings.database_app_role)
            urls = await embedded.start()
            exit_stack.push_async_callback(embedded.stop)
            runtime_url, owner_url = urls.runtime_url, urls.owner_url
            _log.info("using embedded postgres", data_dir=str(data_dir))

        should_migrate = settings.auto_migrate if migrate is None else migrate
        if should_migrate and owner_url:
            await run_migrations(owner_url, app_role=settings.database_app_role)

        database = Database.from_url(
            runtime_url, pool_size=settings.database_pool_size, pooler=settings.database_pooler
        )
        exit_stack.push_async_callback(database.dispose)
        await assert_runtime_role_is_safe(database.engine)

        # Model endpoints (LLM, embeddings) are operator configuration: their own client,
        # outside the egress policy (a model server on a private network is normal).
        http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False)
        exit_stack.push_async_callback(http.aclose)
        # Everything a tenant can point at (connectors) goes through the egress policy.
        egress = Egress(
            build_egress_policy(settings), resolver=egress_resolver, transport=http_transport
        )
        files = build_file_import_policy(settings)
        dense = build_dense_encoder(
            settings.embedding_provider,
            model=settings.embedding_model,
            base_url=settings.embedding_url,
            api_key=_secret(settings.embedding_api_key),
            batch_size=settings.embedding_batch_size,
            torch_threads=settings.torch_threads,
            query_runtime=settings.embedding_query_runtime,
            document_runtime=settings.embedding_document_runtime,
            int8_weights=settings.embedding_int8_weights,
            model_cache_dir=settings.model_cache_dir or data_dir / "models",
            http_client=http,
        )
        vectors = build_vector_store(
            settings.qdrant_url,
            _secret(settings.qdrant_api_key),
            data_dir,
            dense_dimension=dense.dimension,
            dense_weight=settings.search_dense_weight,
            layout=settings.qdrant_layout,
            custom_sharding=settings.qdrant_custom_sharding,
            max_open_shards=settings.edge_max_open_shards,
            open_shards_memory_bytes=settings.edge_open_shards_memory_mb * 1024 * 1024,
        )
        exit_stack.push_async_callback(vectors.close)
        sparse = SparseEncoder()
        blobs = build_blob_store(settings)
        cache = build_cache_backend(settings.redis_url, settings.redis_cluster_nodes)
        exit_stack.push_async_callback(cache.close)

        # Answers are recorded through a durable outbox on local disk (see the recorder).
        recorder = InteractionRecorder(database, clock, outbox=FileOutbox(data_dir / "outbox"))
        await recorder.start()
        exit_stack.push_async_callback(recorder.close)

        # Each company's own routes and budget, read per request (a short per-process cache,
        # forgotten by the settings endpoint when they change).
        llm_choices = CachedCompanyChoices(
            company_settings_from_database(database), clock, ttl_s=settings.plan_cache_seconds
        )
        router = build_router_from_settings(
            client=http,
            company_choices=llm_choices,
            ledger=PostgresBudgetLedger(
                database,
                clock,
                spill=lambda company_id, row: recorder.enqueue(USAGE, company_id, row),
            ),
            clock=clock,
            openai_base_url=settings.llm_openai_base_url,
            openai_api_key=_secret(settings.llm_openai_api_key),
            openai_model=settings.llm_openai_model,
            anthropic_api_key=_secret(settings.llm_anthropic_api_key),
            anthropic_base_url=settings.llm_anthropic_base_url,
            anthropic_model=settings.llm_anthropic_model,
            local_base_url=settings.llm_local_base_url,
            local_model=settings.llm_local_model,
            routes_json=settings.llm_routes,
            budgets_json=settings.llm_budgets,
            prices_json=settings.llm_prices,
            timeout_s=settings.llm_timeout_s,
            connect_timeout_s=settings.llm_connect_timeout_s,
            max_attempts=settings.llm_max_attempts,
            max_retry_after_s=settings.llm_max_retry_after_s,
            breaker_failures=settings.llm_breaker_failures,
            breaker_cooldown_s=settings.llm_breaker_cooldown_s,
        )
        secret_box = build_secret_box(settings)
        plans = PlanService(
            database,
            build_limiter_storage(settings.redis_url, settings.redis_cluster_nodes),
            defaults=plan_defaults(settings),
            clock=clock,
            cache_seconds=settings.plan_cache_seconds,
        )
        connectors = ConnectorService(
            secret_box,
            egress=egress.policy,
            files=files,
            connector_limit=plans.connector_limit,
        )
        retriever = HybridRetriever(
            vectors,
            dense,
            sparse,
            dense_weight=settings.search_fusion_dense_weight,
            fusion=settings.search_fusion,
        )
        triage = TriageService(database, retriever)
        assistant = AssistantService(
            assistant=Assistant(
                retriever, router, company_settings=company_settings_from_database(database)
            ),
            router=router,
            database=database,
            cache=cache,
            cache_ttl_seconds=settings.answer_cache_ttl_s,
            recorder=recorder,
        )
        broker = (
            build_broker(None, None)  # in-process (see Settings.in_process_jobs)
            if settings.in_process_jobs
            else build_broker(settings.redis_url, settings.redis_cluster_nodes)
        )
        replies = build_reply_service(
            settings,
            database=database,
            connectors=connectors,
            egress=egress,
            secrets=secret_box,
            clock=clock,
            assistant=assistant,
            enqueue_drafts=register_review_drafts_task(broker),
        )
        broker.state.review_reply_service = replies
        sync = SyncService(
            database=database,
            connectors=connectors,
            parts=IndexingParts(
                vectors=vectors,
                dense=dense,
                sparse=sparse,
                blobs=blobs,
                knowledge_changed=ResponseInvalidator(cache),
                phone_region=settings.privacy_phone_region,
                document_room=plans.documents_room,
                open_tickets_indexed=triage.on_tickets_changed,
                reviews_indexed=replies.on_reviews_indexed,
            ),
            egress=egress,
            files=files,
            clock=clock,
            takeover_after=timedelta(seconds=settings.sync_takeover_s),
            heartbeat_every=settings.sync_heartbeat_s,
        )
        jobs = JobQueue(broker, sync)
        webhooks = build_webhook_service(
            settings, database, connectors, secret_box, sync, egress, clock, broker
        )
        await jobs.start()
        exit_stack.push_async_callback(jobs.stop)

        state = Stack(
            settings=settings,
            database=database,
            clock=clock,
            vectors=vectors,
            dense=dense,
            blobs=blobs,
            cache=cache,
            connectors=connectors,
            sync=sync,
            jobs=jobs,
            router=router,
            llm_choices=llm_choices,
            assistant=assistant,
            triage=triage,
            replies=replies,
            credentials=CredentialCache(settings.auth_cache_seconds),
            plans=plans,
            widget_signer=WidgetTokenSigner(
                settings.widget_token_secret.get_secret_value().encode()
                if settings.widget_token_secret
                else secret_box.derive_key(SIGNING_KEY_PURPOSE)
            ),
        )
        state.webhooks = webhooks
        state.readiness_checks["postgres"] = database.ping
        state.readiness_checks["vectors"] = _require(vectors.healthcheck, "qdrant")
        if settings.redis_url or settings.redis_cluster_nodes:
            state.readiness_checks["redis"] = _require(cache.ping, "redis")
        if settings.s3_bucket:
            state.readiness_checks["object_store"] = _blob_check(blobs)

        if run_scheduler:
            scheduler = SyncScheduler(database, jobs, clock)
            # The reaper runs wherever jobs are consumed, even with schedules off: a sync
            # whose worker died must not wait for anyone to ask.
            loops = [
                asyncio.create_task(
                    scheduler.reap_forever(settings.sync_reaper_interval_s), name="sync-reaper"
                )
            ]
            if settings.scheduler_enabled:
                loops.append(asyncio.create_task(scheduler.run_forever(), name="sync-scheduler"))

            async def stop_loops() -> None:
                for loop_task in loops:
                    loop_task.cancel()
                await asyncio.gather(*loops, return_exceptions=True)

            exit_stack.push_async_callback(stop_loops)
        yield state


def _require(check: Callable[[], Awaitable[bool]], name: str) -> ReadinessCheck:
    async def run() -> None:
        if not await check():
            raise ConnectionError(f"{name} is not answering")

    return run


def _blob_check(blobs: BlobStore) -> ReadinessCheck:
    async def run() -> None:
        async for _ in blobs.list_keys("healthcheck/"):
            break

    return run
