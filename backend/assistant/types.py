"""What the assistant takes (a ticket, a review, a question) and what it gives back."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.llm.types import LLMRequest, StreamFailed, Task, TextDelta
from backend.retrieval import RetrievedPassage

AuthorRole = Literal["customer", "agent", "system", "owner"]


class Message(BaseModel):
    """One entry of a ticket thread. ``internal`` marks private notes (never shown to the
    customer, never quoted in a reply)."""

    model_config = ConfigDict(frozen=True)

    author_role: AuthorRole
    text: str
    internal: bool = False
    created_at: datetime | None = None


class TicketContext(BaseModel):
    """The ticket an agent is looking at, as the helpdesk shows it.

    ``id`` is the external id ingest stores for the ticket (``ticket:123`` for Freshdesk and
    Zendesk, ``incident:<sys_id>`` for ServiceNow), so similar-ticket search can leave the
    ticket itself out. ``description`` is the customer's first message; ``conversation`` the
    replies and notes after it, oldest first.
    """

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    subject: str = ""
    description: str = ""
    status: str | None = None
    language: str | None = None
    requester: str | None = None
    url: str | None = None
    conversation: list[Message] = Field(default_factory=list)

    def thread(self, *, include_internal: bool) -> list[Message]:
        """Description then conversation, empty messages dropped."""
        messages = []
        if self.description.strip():
            messages.append(Message(author_role="customer", text=self.description))
        messages.extend(
            m for m in self.conversation if m.text.strip() and (include_internal or not m.internal)
        )
        return messages

    def customer_text(self) -> str:
        """What the customer wrote (public messages only): what a reply must answer."""
        return "\n\n".join(
            m.text for m in self.thread(include_internal=False) if m.author_role == "customer"
        )


class ReviewContext(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str = Field(min_length=1)
    rating: float | None = Field(default=None, ge=0)
    rating_scale: float = Field(default=5.0, gt=0)
    language: str | None = None
    author: str | None = None
    platform: str | None = None

    @model_validator(mode="after")
    def _rating_within_scale(self) -> ReviewContext:
        if self.rating is not None and self.rating > self.rating_scale:
            raise ValueError("rating must not exceed rating_scale")
        return self


class Citation(BaseModel):
    """One source a generated text relies on. `index` is the `[n]` marker in the text."""

    # Every field is always sent: the response schema says so (required), defaults or not.
    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)

    index: int = Field(ge=1)
    passage_id: str
    document_id: str
    title: str
    url: str | None = None
    kind: str
    source: str
    internal: bool = False
    snippet: str = ""
    cite_as: str | None = Field(
        default=None,
        description="For text extracted from an attachment: `attachment X of ticket #Y`.",
    )

    @classmethod
    def of(cls, index: int, passage: RetrievedPassage) -> Citation:
        return cls(
            index=index,
            passage_id=passage.id,
            document_id=passage.document_id,
            title=passage.citation_title,
            url=passage.url,
            kind=passage.kind,
            source=passage.source,
            internal=passage.internal,
            snippet=passage.snippet,
            cite_as=passage.cite_as,
        )


class UsageReport(BaseModel):
    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class AssistantResult(BaseModel):
    """A generated text with its citations and the engine that wrote it.

    ``citations`` are the passages the text cites (``[n]`` markers), in marker order;
    ``context`` every passage the generation was given (an agent may want to read more);
    ``flagged_passages`` the ids of retrieved passages left out because they tried to
    instruct the model. Serializable with ``model_dump_json`` for the response cache.
    """

    model_config = ConfigDict(frozen=True)

    task: Task
    text: str
    citations: list[Citation] = Field(default_factory=list)
    context: list[Citation] = Field(default_factory=list)
    provider: str
    model: str
    usage: UsageReport = Field(default_factory=UsageReport)
    cost_usd: float = 0.0
    language: str
    flagged_passages: list[str] = Field(default_factory=list)
    pii_redacted: bool = False


class AssistantReply(BaseModel):
    """What an assistant call answers over HTTP: the JSON body of `/answer`, `/draft-reply`
    and `/review-reply`, and the `done` event of their streams."""

    answer: str
    citations: list[Citation] = Field(
        description="The passages the text cites, in the order of its `[n]` markers."
    )
    context: list[Citation] = Field(description="Every passage the model was given.")
    interaction_id: str = Field(description="Send feedback about this answer with this id.")
    provider: str = Field(description="Who wrote it: openai, anthropic, local or extractive.")
    model: str
    cached: bool
    language: str
    flagged_passages: list[str] = Field(
        description="Retrieved passages left out because they tried to instruct the model."
    )
    usage: UsageReport = Field(
        description="Tokens the model read and wrote (`estimated` when the provider did not "
        "say); for a cached answer, those of the call that first produced it."
    )
    cost_usd: float


class StreamText(BaseModel):
    """A `token` event of an assistant stream: the next piece of text."""

    text: str


class StreamError(BaseModel):
    """The `error` event that ends an assistant stream which could not finish."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    error: str = Field(description="Stable machine-readable error code.")
    detail: Any = Field(description="Human-readable explanation.")
    provider: str | None = Field(default=None, description="The provider that failed, if any.")
    model: str | None = None


@dataclass(frozen=True, slots=True)
class AssistantCompleted:
    """The last event of a successful stream."""

    result: AssistantResult


AssistantStreamEvent = TextDelta | AssistantCompleted | StreamFailed


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    """Everything decided before a model runs: the built prompt and where it came from.

    ``passages[i]`` is ``request.passages[i]`` (the ``[i + 1]`` marker); ``flagged`` are
    passages left out as prompt injections. Compute a cache key from :meth:`cache_material`
    plus the route/model and the company's knowledge generation, before generating.
    """

    task: Task
    company_id: str
    request: LLMRequest
    passages: tuple[RetrievedPassage, ...]
    flagged: tuple[RetrievedPassage, ...]
    language: str
    pii_redacted: bool = False

    @property
    def passage_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.passages)

    @property
    def flagged_ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.flagged)

    def cache_material(self) -> dict[str, Any]:
        """The normalized inputs that decide the output (JSON-serializable, stable)."""
        req = self.request
        return {
            "task": self.task,
            "company_id": self.company_id,
            "language": self.language,
            "system": req.system,
            "messages": [[m.role, m.content] for m in req.messages],
            "passages": [[p.id, p.internal] for p in req.passages],
            # Passage ids are point ids, stable across re-indexes of unchanged text; the text
            # hash catches an edited chunk before the knowledge generation is bumped.
            "passage_text_sha256": hashlib.sha256(
                "\x1e".join(p.text for p in req.passages).encode("utf-8")
            ).hexdigest(),
            "tone": dict(sorted((req.tone or {}).items())),
            "rating": req.rating,
            "rating_scale": req.rating_scale,
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "pii_redacted": self.pii_redacted,
        }

    def cache_fingerprint(self) -> str:
        """sha256 of :meth:`cache_material` (add route/model and knowledge generation)."""
        raw = json.dumps(self.cache_material(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()
