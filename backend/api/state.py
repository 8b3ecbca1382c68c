"""What the lifespan wires once per process and handlers reach through dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from backend.clock import Clock
from backend.config import Settings
from backend.db.session import Database

if TYPE_CHECKING:
    from backend.assistant.service import AssistantService
    from backend.blobs import BlobStore
    from backend.cache import CacheBackend
    from backend.embeddings.dense import DenseEncoder
    from backend.ingest.connectors import ConnectorService
    from backend.ingest.jobs import JobQueue
    from backend.ingest.sync import SyncService
    from backend.insight.triage import TriageService
    from backend.llm.router import LLMRouter
    from backend.replies.service import ReviewReplyService
    from backend.tenancy.credential_cache import CredentialCache
    from backend.tenancy.lifecycle import CompanyLifecycle
    from backend.tenancy.plans import PlanService
    from backend.tenancy.widget_tokens import WidgetTokenSigner
    from backend.vectors import VectorStore
    from backend.webhooks.service import WebhookService

ReadinessCheck = Callable[[], Awaitable[None]]


@dataclass
class AppState:
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


def company_lifecycle(state: AppState) -> CompanyLifecycle:
    """Suspension and deletion, wired to this process's stores and caches."""
    from backend.tenancy.lifecycle import CompanyLifecycle

    return CompanyLifecycle(
        database=state.database,
        vectors=state.vectors,
        blobs=state.blobs,
        cache=state.cache,
        clock=state.clock,
        credentials=state.credentials,
        pending_records=state.assistant.recorder,
    )
