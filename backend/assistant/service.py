"""Serving assistant tasks: cache, generate, record — for the HTTP API and its streams.

For each call: decide the route (which providers/models would answer, budget included),
look the response up in the company's cache, otherwise retrieve, generate and cache it;
then record the interaction (question, task, model, citations, latency, tokens, cost, cache
hit) so it can receive feedback.

Cache keys. A response is keyed by the task, the normalised request (question, ticket,
review) and the route, and stored under the company's cache epoch, which every change to
its knowledge voids (see :mod:`backend.llm.cache`). The retrieved passages are a
deterministic function of those inputs between two changes, so the key determines them
too; their ids are stored with the entry (and in the interaction). Keying on the inputs
rather than on the passages lets a cached answer skip retrieval (a query embedding and a
vector search) entirely: with Redis, a hit costs one round trip to it and no database
read. Interactions are written in batches by :class:`InteractionRecorder`.

Handlers describe a call as data — a :class:`TaskCall` whose ``work`` is an
:class:`AnswerWork`, :class:`DraftReplyWork`, :class:`ReviewReplyWork` or
:class:`SummarizeWork` — and this service decides how to prepare it; it never calls back into
the API layer. What handlers need beyond that (search, similar tickets, flushing queued
records before reading interactions back) are methods here, so no handler reaches through
the service to the assistant, its retriever or its recorder.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import BaseModel

from backend.assistant.assistant import Assistant
from backend.assistant.recorder import InteractionRecorder
from backend.assistant.settings import AssistantSettings
from backend.assistant.types import (
    AssistantCompleted,
    AssistantReply,
    PreparedRequest,
    ReviewContext,
    StreamError,
    StreamText,
    TicketContext,
)
from backend.cache import CacheBackend
from backend.db.repositories import companies as company_repo
from backend.db.session import Database
from backend.errors import AppError
from backend.llm.cache import CacheLookup, ResponseCache, response_key
from backend.llm.router import LLMRouter
from backend.llm.types import LLMRequest, StreamFailed, Task, TextDelta
from backend.retrieval import RetrievedPassage, SearchFilters
from backend.retrieval.access import AccessScope
from backend.tenancy.service import Tenant
from backend.vectors import SearchMode

_log = structlog.get_logger("helpdesk.assistant")

# Cached text is re-streamed in pieces of this many characters, so clients have one code path.
_CACHED_CHUNK = 24


@dataclass(frozen=True)
class AnswerWork:
    """Answer a question (optionally about a ticket) from the company's knowledge."""

    question: str
    ticket: TicketContext | None
    filters: SearchFilters
    scope: AccessScope


@dataclass(frozen=True)
class DraftReplyWork:
    ticket: TicketContext
    scope: AccessScope


@dataclass(frozen=True)
class ReviewReplyWork:
    review: ReviewContext
    scope: AccessScope


@dataclass(frozen=True)
class SummarizeWork:
    ticket: TicketContext


TaskWork = AnswerWork | DraftReplyWork | ReviewReplyWork | SummarizeWork
"""What to prepare: plain data; the service, not the caller, decides how."""


@dataclass(frozen=True)
class TaskCall:
    """One assistant call: what to key and record it by, and the work it asks for."""

    task: Task
    inputs: dict[str, Any]
    question: str
    ticket_ref: str | None
    work: TaskWork
    use_cache: bool = True


def _sse(event: str, data: BaseModel) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (event.encode(), data.model_dump_json().encode())


class AssistantService:
    def __init__(
        self,
        *,
        assistant: Assistant,
        router: LLMRouter,
        database: Database,
        cache: CacheBackend,
        cache_ttl_seconds: int,
        recorder: InteractionRecorder,
    ) -> None:
        self.assistant = assistant
        self.router = router
        self.database = database
        self.cache_backend = cache
        self.cache_ttl_seconds = cache_ttl_seconds
        self.recorder = recorder

    async def flush_records(self) -> None:
        """Write queued interaction records now (before reading interactions back)."""
        await self.recorder.flush()

    async def search(
        self,
        tenant: Tenant,
        query: str,
        *,
        filters: SearchFilters,
        limit: int,
        mode: SearchMode | str,
        include_internal: bool,
        material: dict[str, Any],
    ) -> dict[str, Any]:
        """A search's JSON body (``{"results": [...]}``), from the company's cache when an
        equal request (``material``) was answered since its knowledge last changed."""
        material = {**material, **(await self._private_cache_material(tenant))}
        key = response_key(material, route=())
        cache = self._cache(tenant)
        found = await cache.lookup("search", key)
        if found.value is not None:
            return found.value
        passages = await self.assistant.retriever.search(
            tenant.company_id,
            query,
            filters=filters,
            limit=limit,
            mode=mode,
            include_internal=include_internal,
            scope=AccessScope(audience=tenant.audience, ticket_id=tenant.ticket_id),
        )
        value = {"results": [passage_body(p) for p in passages]}
        if found.epoch is not None:
            await cache.put("search", key, value, epoch=found.epoch)
        return value

    async def similar_tickets(
        self, tenant: Tenant, subject: TicketContext | str, *, limit: int
    ) -> list[RetrievedPassage]:
        return await self.assistant.similar_tickets(
            tenant.company_id,
            subject,
            limit=limit,
            scope=AccessScope(audience=tenant.audience, ticket_id=tenant.ticket_id),
        )

    async def _prepare(self, tenant: Tenant, work: TaskWork) -> PreparedRequest:
        assistant, company_id = self.assistant, tenant.company_id
        match work:
            case AnswerWork():
                return await assistant.prepare_answer(
                    company_id,
                    work.question,
                    work.ticket,
                    filters=work.filters,
                    scope=work.scope,
                )
            case DraftReplyWork():
                return await assistant.prepare_draft_reply(
                    company_id, work.ticket, scope=work.scope
                )
            case ReviewReplyWork():
                return await assistant.prepare_review_reply(
                    company_id, work.review, scope=work.scope
                )
            case SummarizeWork():
                return await assistant.prepare_summarize(company_id, work.ticket)

    def _cache(self, tenant: Tenant) -> ResponseCache:
        return ResponseCache(
            self.cache_backend, tenant.company_id, ttl_seconds=self.cache_ttl_seconds
        )

    async def _private_cache_material(self, tenant: Tenant) -> dict[str, Any]:
        """What an in-process cache must also key on (see backend.llm.cache): the knowledge
        generation and the settings, read from Postgres. A shared cache needs neither: its
        epoch is voided by every change, in every process."""
        if self.cache_backend.shared:
            return {}
        async with self.database.tenant_session(tenant.company_id) as session:
            company = await company_repo.get_company(session, tenant.company_id)
        settings = AssistantSettings.from_company_settings(company.settings if company else None)
        return {
            "generation": company.knowledge_generation if company else 0,
            # A company deleted and created again under the same id starts over at
            # generation 0: its creation time keeps it from meeting the old entries that
            # another process's private cache may still hold.
            "created": company.created_at.isoformat() if company else None,
            "settings": settings.model_dump(mode="json"),
        }

    async def _cache_key(self, tenant: Tenant, call: TaskCall) -> str:
        plan = await self.router.plan(LLMRequest(task=call.task, company_id=tenant.company_id))
        providers = self.router.providers
        route = [
            f"{name}:{providers[name].model}" if name in providers else name for name in plan.chain
        ]
        material = {
            "task": call.task,
            "inputs": call.inputs,
            **(await self._private_cache_material(tenant)),
        }
        return response_key(material, route=route)

    def _record(
        self,
        tenant: Tenant,
        call: TaskCall,
        result: dict[str, Any],
        *,
        started: float,
        cache_hit: bool,
    ) -> uuid.UUID:
        usage = result.get("usage") or {}
        return self.recorder.record(
            company_id=tenant.company_id,
            task=call.task,
            question=call.question[:10_000],
            ticket_ref=call.ticket_ref,
            answer=result["text"],
            citations=result["citations"],
            provider=result["provider"],
            model=result["model"],
            latency_ms=int((time.perf_counter() - started) * 1000),
            prompt_tokens=0 if cache_hit else int(usage.get("prompt_tokens", 0)),
            completion_tokens=0 if cache_hit else int(usage.get("completion_tokens", 0)),
            cost_usd=0.0 if cache_hit else float(result.get("cost_usd", 0.0)),
            cache_hit=cache_hit,
            api_key_id=tenant.api_key_id,
        )

    @staticmethod
    def body(result: dict[str, Any], interaction_id: uuid.UUID, *, cached: bool) -> AssistantReply:
        """The response from a result's JSON form (``AssistantResult.model_dump``)."""
        return AssistantReply(
            answer=result["text"],
            citations=result["citations"],
            context=result["context"],
            interaction_id=str(interaction_id),
            provider=result["provider"],
            model=result["model"],
            cached=cached,
            language=result["language"],
            flagged_passages=result["flagged_passages"],
            usage=result["usage"],
            cost_usd=result["cost_usd"],
        )

    async def _lookup(self, tenant: Tenant, call: TaskCall) -> tuple[str, CacheLookup]:
        key = await self._cache_key(tenant, call)
        found = await self._cache(tenant).lookup(ResponseCache.namespace_for(call.task), key)
        if not call.use_cache:
            # A regenerated answer still replaces the cached one (under the current epoch).
            return key, CacheLookup(None, found.epoch)
        return key, found

    async def _store(
        self, tenant: Tenant, call: TaskCall, key: str, epoch: str | None, result: dict[str, Any]
    ) -> None:
        if epoch is not None:
            await self._cache(tenant).put(
                ResponseCache.namespace_for(call.task), key, result, epoch=epoch
            )

    async def complete(self, tenant: Tenant, call: TaskCall) -> AssistantReply:
        started = time.perf_counter()
        key, found = await self._lookup(tenant, call)
        if found.value is not None:
            interaction_id = self._record(
                tenant, call, found.value, started=started, cache_hit=True
            )
            return self.body(found.value, interaction_id, cached=True)
        prepared = await self._prepare(tenant, call.work)
        result = (await self.assistant.run(prepared)).model_dump(mode="json")
        await self._store(tenant, call, key, found.epoch, result)
        interaction_id = self._record(tenant, call, result, started=started, cache_hit=False)
        return self.body(result, interaction_id, cached=False)

    async def stream(self, tenant: Tenant, call: TaskCall) -> AsyncIterator[bytes]:
        """Server-Sent Events: ``token`` events, then ``done`` (citations and metadata) or
        ``error``. Cached answers stream too. If the client goes away, the generator is
        closed, which closes the provider's stream and stops generation."""
        started = time.perf_counter()
        try:
            key, found = await self._lookup(tenant, call)
            if found.value is not None:
                cached = found.value
                text: str = cached["text"]
                for i in range(0, len(text), _CACHED_CHUNK):
                    yield _sse("token", StreamText(text=text[i : i + _CACHED_CHUNK]))
                interaction_id = self._record(tenant, call, cached, started=started, cache_hit=True)
                yield _sse("done", self.body(cached, interaction_id, cached=True))
                return
            prepared = await self._prepare(tenant, call.work)
            async for event in self.assistant.stream(prepared):
                if isinstance(event, TextDelta):
                    yield _sse("token", StreamText(text=event.text))
                elif isinstance(event, AssistantCompleted):
                    result = event.result.model_dump(mode="json")
                    await self._store(tenant, call, key, found.epoch, result)
                    interaction_id = self._record(
                        tenant, call, result, started=started, cache_hit=False
                    )
                    yield _sse("done", self.body(result, interaction_id, cached=False))
                elif isinstance(event, StreamFailed):
                    yield _sse(
                        "error",
                        StreamError(
                            error=event.code,
                            detail=event.detail,
                            provider=event.provider,
                            model=event.model,
                        ),
                    )
        except AppError as exc:  # the caller's mistake (an empty ticket…): no server error
            yield _sse("error", StreamError.model_validate(exc.to_body()))
        except Exception:  # reported to the client as the stream's last event
            _log.exception("assistant stream failed", task=call.task)
            yield _sse(
                "error",
                StreamError(error="internal_error", detail="an unexpected error occurred"),
            )


def passage_body(p: RetrievedPassage) -> dict[str, Any]:
    """A passage as the search response's ``PassageOut`` (also the cached form of a search)."""
    return {
        "document_id": p.document_id,
        "passage_id": p.id,
        "external_id": p.external_id,
        "title": p.title,
        "url": p.url,
        "kind": p.kind,
        "source": p.source,
        "language": p.language,
        "status": p.status,
        "internal": p.internal,
        "snippet": p.snippet,
        "score": p.score,
        "updated_at": p.updated_at,
    }
