"""The assistant's tasks: answer, draft a ticket reply, draft a review reply, find similar
tickets, summarize a thread. Every task is tenant-scoped and every text carries citations.

Each generating task is two steps, so the API can consult its response cache in between:
``prepare_*`` retrieves, screens and builds the complete :class:`LLMRequest` (returned in a
:class:`PreparedRequest`), then :meth:`Assistant.run` or :meth:`Assistant.stream` generates
through the router. ``answer()``, ``draft_reply()``… do both.

Rules applied while preparing:

- Customer-facing tasks (ticket and review replies) never see internal content: retrieval
  excludes private-note passages and the ticket's own internal notes stay out of the prompt.
  The agent-facing ``answer`` and ``summarize`` may use them; their citations say internal.
- Passages that try to instruct the model are flagged and left out (``flagged_passages``).
- Answers and replies are written in the customer's language when the company lists it in
  its ``languages`` setting (or lists none), else in the company's first language.
  Summaries are for agents: their language is the caller's or the thread's.
- With ``pii_redaction`` on, prompt text is redacted when the route can reach a provider
  outside our trust boundary (every provider but the extractive composer, unless the
  assistant is told a provider is local).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import replace
from typing import Final

from backend.assistant import prompts
from backend.assistant.injection import looks_like_injection, without_injected_sentences
from backend.assistant.redaction import redact_pii
from backend.assistant.settings import AssistantSettings, CompanySettingsSource, resolve_settings
from backend.assistant.types import (
    AssistantCompleted,
    AssistantResult,
    AssistantStreamEvent,
    Citation,
    Message,
    PreparedRequest,
    ReviewContext,
    TicketContext,
    UsageReport,
)
from backend.errors import BadRequest
from backend.ingest.indexer import document_uuid
from backend.ingest.normalize import DETECTION_SAMPLE_CHARS, detect_language
from backend.language import base_language, rating_sentiment
from backend.llm.providers.extractive import PROVIDER_NAME as EXTRACTIVE
from backend.llm.router import LLMRouter
from backend.llm.types import ChatMessage, Completed, LLMRequest, LLMResult, Passage, Task
from backend.retrieval import (
    AGENT_SCOPE,
    SOLVED_STATUSES,
    AccessScope,
    HybridRetriever,
    RetrievedPassage,
    SearchFilters,
    make_snippet,
)
from backend.tenancy.company_id import CompanyId

DEFAULT_LANGUAGE: Final = "en"
MAX_TOKENS: Final[Mapping[Task, int]] = {
    "answer": 600,
    "draft_reply": 700,
    "review_reply": 300,
    "summarize": 400,
}
# A long thread is cut to its most recent messages: the start (the description) is kept
# separately, and the middle matters least for what happens next.
_MAX_THREAD_MESSAGES: Final = 30
_MAX_MESSAGE_CHARS: Final = 4000
_MAX_QUERY_CHARS: Final = 2000


async def _detect(text: str) -> str | None:
    """Language detection off the event loop (pure-Python CPU work), on a bounded sample,
    so one big request cannot stall every other request of the process."""
    return await asyncio.to_thread(detect_language, text[:DETECTION_SAMPLE_CHARS])


def _clip(text: str, limit: int = _MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def _recent(messages: Sequence[Message]) -> list[Message]:
    kept = list(messages[-_MAX_THREAD_MESSAGES:])
    if len(messages) > _MAX_THREAD_MESSAGES and messages[0] not in kept:
        kept.insert(0, messages[0])  # the description says what the ticket is about
    return [m.model_copy(update={"text": _clip(m.text)}) for m in kept]


class Assistant:
    """One per process, shared by every company: everything tenant-specific is an argument."""

    def __init__(
        self,
        retriever: HybridRetriever,
        router: LLMRouter,
        *,
        company_settings: CompanySettingsSource = None,
        trusted_providers: Iterable[str] = (EXTRACTIVE,),
        knowledge_limit: int = 4,
        similar_ticket_limit: int = 2,
        answer_limit: int = 6,
        answer_continuation: int = 2,
    ) -> None:
        self._retriever = retriever
        self._router = router
        self._company_settings = company_settings
        # Providers running inside our trust boundary (a local llama.cpp, say) need no PII
        # redaction; the extractive composer never sends text anywhere.
        self._trusted = frozenset({EXTRACTIVE, *trusted_providers})
        self._knowledge_limit = knowledge_limit
        self._similar_limit = similar_ticket_limit
        self._answer_limit = answer_limit
        # Following chunks read onto the best article passage of an answer (0: none).
        self._answer_continuation = answer_continuation

    @property
    def retriever(self) -> HybridRetriever:
        return self._retriever

    async def settings_for(self, company_id: CompanyId) -> AssistantSettings:
        return await resolve_settings(self._company_settings, company_id)

    # ------------------------------------------------------------------ one-call tasks

    async def answer(
        self,
        company_id: CompanyId,
        question: str,
        ticket: TicketContext | None = None,
        *,
        filters: SearchFilters | None = None,
        scope: AccessScope = AGENT_SCOPE,
    ) -> AssistantResult:
        return await self.run(
            await self.prepare_answer(company_id, question, ticket, filters=filters, scope=scope)
        )

    async def draft_reply(self, company_id: CompanyId, ticket: TicketContext) -> AssistantResult:
        return await self.run(await self.prepare_draft_reply(company_id, ticket))

    async def review_reply(self, company_id: CompanyId, review: ReviewContext) -> AssistantResult:
        return await self.run(await self.prepare_review_reply(company_id, review))

    async def summarize(
        self, company_id: CompanyId, ticket: TicketContext, *, language: str | None = None
    ) -> AssistantResult:
        return await self.run(await self.prepare_summarize(company_id, ticket, language=language))

    async def similar_tickets(
        self,
        company_id: CompanyId,
        ticket: TicketContext | str,
        *,
        limit: int = 5,
        include_internal: bool = True,
        scope: AccessScope = AGENT_SCOPE,
    ) -> list[RetrievedPassage]:
        """Similar tickets for an agent, solved first; the ticket itself is left out."""
        if isinstance(ticket, TicketContext):
            text, exclude = self._ticket_query(ticket), ticket.id
        else:
            text, exclude = ticket, None
        return await self._retriever.similar_tickets(
            company_id,
            text,
            limit=limit,
            exclude_external_id=exclude,
            include_internal=include_internal,
            scope=scope,
        )

    # ---------------------------------------------------------------------- preparing

    async def prepare_answer(
        self,
        company_id: CompanyId,
        question: str,
        ticket: TicketContext | None = None,
        *,
        filters: SearchFilters | None = None,
        scope: AccessScope = AGENT_SCOPE,
        exclude_document_ids: Sequence[str] = (),
        dense_weight: float | None = None,
    ) -> PreparedRequest:
        """``exclude_document_ids`` and ``dense_weight`` are for evaluation runs: leave a
        case's own ticket out, try a fusion weight other than the company's."""
        question = question.strip()
        if not question:
            raise BadRequest("the question is empty", code="empty_question")
        settings = await self.settings_for(company_id)
        query = question if ticket is None else f"{question}\n{ticket.subject}".strip()
        retrieved = await self._retriever.search(
            company_id,
            query[:_MAX_QUERY_CHARS],
            filters=filters,
            limit=self._answer_limit,
            include_internal=True,
            scope=scope,
            dense_weight=dense_weight or settings.retrieval.dense_weight,
            exclude_document_ids=exclude_document_ids,
        )
        passages, flagged = await _screened(retrieved)
        passages = await self._continued(company_id, passages, scope)
        language = settings.reply_language(
            base_language(await _detect(question))
            or (base_language(ticket.language) if ticket else None)
            or DEFAULT_LANGUAGE
        )
        ticket_text = (
            prompts.ticket_block(ticket, _recent(ticket.thread(include_internal=True)))
            if ticket is not None
            else None
        )
        llm_passages = [p.to_llm_passage() for p in passages]
        request = LLMRequest(
            task="answer",
            company_id=company_id,
            system=prompts.answer_system(llm_passages, language, ticket_text, company_id),
            messages=(ChatMessage("user", question),),
            passages=tuple(llm_passages),
            language=language,
            max_tokens=MAX_TOKENS["answer"],
        )
        return await self._finish("answer", company_id, settings, request, passages, flagged)

    async def prepare_draft_reply(
        self,
        company_id: CompanyId,
        ticket: TicketContext,
        *,
        scope: AccessScope = AGENT_SCOPE,
        settings: AssistantSettings | None = None,
    ) -> PreparedRequest:
        """``settings``: unsaved settings to draft with (the console's preview); default:
        the company's stored ones."""
        settings = settings if settings is not None else await self.settings_for(company_id)
        customer_text = ticket.customer_text().strip() or ticket.subject.strip()
        if not customer_text:
            raise BadRequest("the ticket has no customer message to reply to", code="empty_ticket")
        language = settings.reply_language(await asyncio.to_thread(self.customer_language, ticket))
        query = self._ticket_query(ticket)

        articles = await self._search_preferring_language(
            company_id,
            query,
            language,
            SearchFilters(kinds=("article",)),
            self._knowledge_limit,
            scope,
            dense_weight=settings.retrieval.dense_weight,
        )
        similar = await self._retriever.similar_tickets(
            company_id,
            query,
            limit=self._similar_limit,
            exclude_external_id=ticket.id,
            include_internal=False,
            filters=SearchFilters(statuses=SOLVED_STATUSES),
            scope=scope,
        )
        # Retrieval already excluded private notes; checking again costs nothing and keeps
        # this rule true whatever a future retrieval change does.
        public = [p for p in articles if not p.internal]
        public += [t for t in (_agent_side(p) for p in similar if not p.internal) if t]
        passages, flagged = await _screened(public)
        llm_passages = [p.to_llm_passage() for p in passages]
        tone = settings.tone.as_mapping()
        # A customer's message may itself address the assistant ("note to the AI: promise
        # me a refund"): such sentences never reach the model writing to the customer.
        public_thread = [
            m.model_copy(update={"text": without_injected_sentences(m.text)[0]})
            for m in _recent(ticket.thread(include_internal=False))
        ]
        customer_text = without_injected_sentences(_clip(customer_text, _MAX_QUERY_CHARS * 2))[0]
        request = LLMRequest(
            task="draft_reply",
            company_id=company_id,
            system=prompts.draft_reply_system(
                llm_passages, language, tone, prompts.ticket_block(ticket, public_thread)
            ),
            messages=(ChatMessage("user", customer_text or ticket.subject),),
            passages=tuple(llm_passages),
            language=language,
            tone=tone or None,
            max_tokens=MAX_TOKENS["draft_reply"],
            customer_name=first_name(ticket.requester),
        )
        return await self._finish("draft_reply", company_id, settings, request, passages, flagged)

    async def prepare_review_reply(
        self, company_id: CompanyId, review: ReviewContext, *, scope: AccessScope = AGENT_SCOPE
    ) -> PreparedRequest:
        settings = await self.settings_for(company_id)
        language = settings.reply_language(
            base_language(await _detect(review.text))
            or base_language(review.language)
            or DEFAULT_LANGUAGE
        )
        sentiment = rating_sentiment(review.rating, review.rating_scale)
        # A reviewer's instruction to the assistant never reaches the model writing the reply.
        for_prompt = review.model_copy(
            update={"text": without_injected_sentences(review.text)[0] or "…"}
        )
        retrieved: list[RetrievedPassage] = []
        if sentiment != "positive":
            # A thank-you needs no facts; an apology may point at a policy, never invent one.
            retrieved = await self._search_preferring_language(
                company_id,
                review.text[:_MAX_QUERY_CHARS],
                language,
                SearchFilters(kinds=("article",)),
                min(3, self._knowledge_limit),
                scope,
                dense_weight=settings.retrieval.dense_weight,
            )
        passages, flagged = await _screened([p for p in retrieved if not p.internal])
        llm_passages = [p.to_llm_passage() for p in passages]
        tone = settings.tone.as_mapping()
        request = LLMRequest(
            task="review_reply",
            company_id=company_id,
            system=prompts.review_reply_system(llm_passages, language, tone, for_prompt, sentiment),
            messages=(ChatMessage("user", _clip(for_prompt.text)),),
            passages=tuple(llm_passages),
            language=language,
            tone=tone or None,
            rating=review.rating,
            rating_scale=review.rating_scale,
            max_tokens=MAX_TOKENS["review_reply"],
            customer_name=first_name(review.author),
        )
        return await self._finish("review_reply", company_id, settings, request, passages, flagged)

    async def prepare_summarize(
        self, company_id: CompanyId, ticket: TicketContext, *, language: str | None = None
    ) -> PreparedRequest:
        settings = await self.settings_for(company_id)
        thread = _recent(ticket.thread(include_internal=True))
        if not thread:
            raise BadRequest("the ticket has no messages to summarize", code="empty_ticket")
        public_text = "\n".join(m.text for m in thread if not m.internal)
        resolved_language = (
            base_language(language)
            or base_language(await _detect(public_text))
            or base_language(ticket.language)
            or DEFAULT_LANGUAGE
        )
        document_id = str(document_uuid(company_id, ticket.source, ticket.id))
        # The thread's messages are the passages: the summary cites the messages it draws on.
        messages = [
            RetrievedPassage(
                id=f"{ticket.source}:{ticket.id}#message-{position}",
                document_id=document_id,
                external_id=ticket.id,
                chunk_index=position,
                title=_message_title(ticket, message, position),
                url=ticket.url,
                kind="ticket",
                source=ticket.source,
                language=ticket.language,
                status=ticket.status,
                internal=message.internal,
                score=0.0,
                snippet=make_snippet(message.text, ()),
                text=message.text,
            )
            for position, message in enumerate(thread, start=1)
        ]
        passages, flagged = await _screened(messages)
        llm_passages = [
            Passage(
                id=p.id,
                title=p.title,
                text=p.text,
                url=p.url,
                kind=p.kind,
                internal=p.internal,
                language=p.language,
                author_role=_message_role(p.title),
            )
            for p in passages
        ]
        request = LLMRequest(
            task="summarize",
            company_id=company_id,
            system=prompts.summarize_system(llm_passages, resolved_language),
            messages=(ChatMessage("user", f"Summarize the ticket: {ticket.subject}".strip()),),
            passages=tuple(llm_passages),
            language=resolved_language,
            max_tokens=MAX_TOKENS["summarize"],
            ticket_status=ticket.status,
        )
        return await self._finish(
            "summarize",
            company_id,
            settings,
            request,
            passages,
            flagged,
            language=resolved_language,
        )

    # --------------------------------------------------------------------- generating

    async def run(self, prepared: PreparedRequest) -> AssistantResult:
        result = await self._router.complete(prepared.request)
        return self._result(prepared, result)

    async def stream(self, prepared: PreparedRequest) -> AsyncIterator[AssistantStreamEvent]:
        """Text deltas, then one :class:`AssistantCompleted` (or the router's StreamFailed)."""
        async with aclosing(self._router.stream(prepared.request)) as events:
            async for event in events:
                if isinstance(event, Completed):
                    yield AssistantCompleted(self._result(prepared, event.result))
                else:
                    yield event

    # ------------------------------------------------------------------------ helpers

    def customer_language(self, ticket: TicketContext) -> str:
        """The language of the customer's own messages, else the ticket's, else English.
        CPU work: call it off the event loop."""
        return (
            base_language(detect_language(ticket.customer_text()[:DETECTION_SAMPLE_CHARS]))
            or base_language(detect_language(ticket.subject))
            or base_language(ticket.language)
            or DEFAULT_LANGUAGE
        )

    @staticmethod
    def _ticket_query(ticket: TicketContext) -> str:
        customer = [m.text for m in ticket.thread(include_internal=False)]
        # The subject and the first message say what the problem is; the latest customer
        # message says what is still open.
        pieces = [ticket.subject, *(customer[:1]), *(customer[-1:] if len(customer) > 1 else [])]
        query = "\n".join(p.strip() for p in pieces if p and p.strip())
        return query[:_MAX_QUERY_CHARS] or ticket.id

    async def _search_preferring_language(
        self,
        company_id: CompanyId,
        query: str,
        language: str,
        filters: SearchFilters,
        limit: int,
        scope: AccessScope = AGENT_SCOPE,
        *,
        dense_weight: float | None = None,
    ) -> list[RetrievedPassage]:
        """Customer-facing passages: those in the customer's language first, then others to
        fill ``limit`` (a model can still translate them)."""
        preferred = await self._retriever.search(
            company_id,
            query,
            filters=filters.model_copy(update={"languages": (language,)}),
            limit=limit,
            include_internal=False,
            scope=scope,
            dense_weight=dense_weight,
        )
        if len(preferred) >= limit:
            return preferred
        seen = {p.document_id for p in preferred}
        others = await self._retriever.search(
            company_id,
            query,
            filters=filters,
            limit=limit,
            include_internal=False,
            dense_weight=dense_weight,
            scope=scope,
        )
        return (
            preferred + [p for p in others if p.document_id not in seen][: limit - len(preferred)]
        )

    async def _continued(
        self,
        company_id: CompanyId,
        passages: list[RetrievedPassage],
        scope: AccessScope,
    ) -> list[RetrievedPassage]:
        """The passages with the best article's following chunks read onto it.

        Retrieval keeps one chunk per document, and for "why does my hub go offline?" the
        chunk that matches is an article's opening (the symptom and its cause) while the fix
        is in the next section. Its continuation becomes part of the same passage, so the
        same citation covers it and the composer (or a model) can quote the section that
        answers. Only the top article: tickets' later chunks are threads and notes, not the
        rest of an answer, and further articles would crowd the prompt. Continuation chunks
        are screened like retrieved ones; a flagged one ends the continuation.
        """
        if self._answer_continuation < 1:
            return passages
        top = next((i for i, p in enumerate(passages) if p.kind == "article"), None)
        if top is None:
            return passages
        passage = passages[top]
        following = await self._retriever.continuation(
            company_id, passage, count=self._answer_continuation, scope=scope
        )
        clean, _ = await _screened(following)
        kept = following[: next((i for i, p in enumerate(following) if p not in clean), None)]
        if not kept:
            return passages
        text = passage.text
        for chunk in kept:
            text = _joined(text, chunk.body)
        return [
            *passages[:top],
            passage.model_copy(update={"text": text}),
            *passages[top + 1 :],
        ]

    async def _finish(
        self,
        task: Task,
        company_id: CompanyId,
        settings: AssistantSettings,
        request: LLMRequest,
        passages: Sequence[RetrievedPassage],
        flagged: Sequence[RetrievedPassage],
        *,
        language: str | None = None,
    ) -> PreparedRequest:
        redacted = False
        if settings.pii_redaction and await self._may_leave(request):
            # phonenumbers and the other matchers are pure-Python CPU work: off the loop.
            request = await asyncio.to_thread(_redacted, request)
            redacted = True
        return PreparedRequest(
            task=task,
            company_id=company_id,
            request=request,
            passages=tuple(passages),
            flagged=tuple(flagged),
            language=language or request.language,
            pii_redacted=redacted,
        )

    async def _may_leave(self, request: LLMRequest) -> bool:
        plan = await self._router.plan(request)
        return any(name not in self._trusted for name in plan.chain)

    @staticmethod
    def _result(prepared: PreparedRequest, result: LLMResult) -> AssistantResult:
        position = {p.id: index for index, p in enumerate(prepared.passages, start=1)}
        citations = [
            Citation.of(position[pid], prepared.passages[position[pid] - 1])
            for pid in result.cited_passage_ids
            if pid in position
        ]
        return AssistantResult(
            task=prepared.task,
            text=result.text,
            citations=citations,
            context=[Citation.of(i, p) for i, p in enumerate(prepared.passages, start=1)],
            provider=result.provider,
            model=result.model,
            usage=UsageReport(
                prompt_tokens=result.usage.prompt_tokens,
                completion_tokens=result.usage.completion_tokens,
                estimated=result.usage_estimated,
            ),
            cost_usd=result.cost_usd,
            language=prepared.language,
            flagged_passages=list(prepared.flagged_ids),
            pii_redacted=prepared.pii_redacted,
        )


# How ingest labels the paragraphs of a ticket chunk (see backend.ingest.chunking): the
# Q&A chunk ends with "Resolution: …" or "Latest agent reply: …", thread chunks prefix each
# message with its author.
_AGENT_PREFIXES: Final = ("Resolution: ", "Latest agent reply: ", "Agent: ")


def _agent_side(passage: RetrievedPassage) -> RetrievedPassage | None:
    """A similar ticket reduced to what the company's agents wrote, for customer-facing use.

    Another customer's own words (their problem, their personal details) are never quoted to
    this customer; the agents' answers are the reusable knowledge. ``None`` when a chunk
    holds no agent text.
    """
    paragraphs = passage.text.split("\n\n")
    # The labels stay: they tell a model, and the extractive composer, that these are the
    # agents' words (a resolution), not the customer's.
    kept = [
        paragraph.strip()
        for paragraph in paragraphs
        if paragraph.startswith(_AGENT_PREFIXES) and paragraph.partition(": ")[2].strip()
    ]
    text = "\n\n".join(kept)
    if not text:
        return None
    return passage.model_copy(update={"text": text, "snippet": make_snippet(text, ())})


_NAME_PART_RE: Final = re.compile(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'-]+")


def first_name(requester: str | None) -> str | None:
    """A first name to greet someone by, from "Dana Kim" or "dana.kim@example.com"; None
    for handles, initials and role addresses, which are no names."""
    if not requester or not requester.strip():
        return None
    local = requester.strip().split("@", 1)[0] if "@" in requester else requester.strip()
    first = re.split(r"[\s._+-]+", local, maxsplit=1)[0]
    if not _NAME_PART_RE.fullmatch(first) or len(first) < 2:
        return None
    if first.casefold() in _NOT_NAMES:
        return None
    return first[0].upper() + first[1:]


_NOT_NAMES: Final = frozenset(
    {"info", "support", "admin", "help", "sales", "contact", "noreply", "no", "team", "office"}
)


def _message_role(title: str) -> str | None:
    """The author role :func:`_message_title` wrote into a message passage's title."""
    match = re.search(r"\(([^()]+)\)$", title)
    return match.group(1) if match else None


def _message_title(ticket: TicketContext, message: Message, position: int) -> str:
    who = "internal note" if message.internal else message.author_role
    subject = ticket.subject or ticket.id
    return f"{subject} — message {position} ({who})"


def _joined(text: str, following: str) -> str:
    """``text`` continued by ``following``, without the characters the chunker repeated at
    the start of the next chunk (its overlap between pieces of one section)."""
    longest = min(len(text), len(following), _MAX_OVERLAP_CHARS)
    for size in range(longest, _MIN_OVERLAP_CHARS - 1, -1):
        if text.endswith(following[:size]):
            following = following[size:].lstrip()
            break
    return f"{text}\n\n{following}" if following else text


_MAX_OVERLAP_CHARS: Final = 600
_MIN_OVERLAP_CHARS: Final = 20


async def _screened(
    passages: Sequence[RetrievedPassage],
) -> tuple[list[RetrievedPassage], list[RetrievedPassage]]:
    """:func:`_screen` off the event loop: regex matching over every passage is CPU work."""
    return await asyncio.to_thread(_screen, passages)


def _screen(
    passages: Sequence[RetrievedPassage],
) -> tuple[list[RetrievedPassage], list[RetrievedPassage]]:
    """(clean, flagged): passages whose title or text tries to instruct the model are
    flagged and left out of generation."""
    clean: list[RetrievedPassage] = []
    flagged: list[RetrievedPassage] = []
    for passage in passages:
        if looks_like_injection(passage.text) or looks_like_injection(passage.title):
            flagged.append(passage)
        else:
            clean.append(passage)
    return clean, flagged


def _redacted(request: LLMRequest) -> LLMRequest:
    return replace(
        request,
        system=redact_pii(request.system),
        messages=tuple(ChatMessage(m.role, redact_pii(m.content)) for m in request.messages),
        passages=tuple(
            replace(p, title=redact_pii(p.title), text=redact_pii(p.text)) for p in request.passages
        ),
    )
