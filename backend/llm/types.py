"""The vocabulary shared by the router, the providers and their callers.

A request says what to write (``task``), for whom (``company_id``), from what (``system``,
``messages`` and the retrieved ``passages``) and how (``language``, ``tone``). A result says
what was written and by whom: every :class:`LLMResult` names the provider and model that
produced it, so an answer can always be traced back to the engine behind it.

Citation convention, the same for every provider: a marker ``[n]`` in generated text refers
to ``request.passages[n - 1]``; ``LLMResult.cited_passage_ids`` lists the ids of the passages
the text cites, in order of first citation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from backend.tenancy.company_id import validate_company_id

Task: TypeAlias = Literal["answer", "draft_reply", "review_reply", "summarize"]
TASKS: tuple[Task, ...] = ("answer", "draft_reply", "review_reply", "summarize")

# Tasks whose output is sent to a customer (or published under a review): text from private
# notes must never reach them.
CUSTOMER_FACING_TASKS: frozenset[Task] = frozenset({"draft_reply", "review_reply"})

Role: TypeAlias = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrieved piece of a company's knowledge, quoted as grounding.

    ``internal`` marks content from private notes: usable for agent-facing tasks, never
    quoted in text written for a customer.
    """

    id: str
    title: str
    text: str
    url: str | None = None
    kind: str = "article"
    internal: bool = False
    language: str | None = None
    # Who wrote the passage when it is one message of a thread ("customer", "agent"):
    # summaries say who did what, and only agents' words can answer a question.
    author_role: str | None = None
    # The source document's status (a ticket's "resolved"): a solved ticket's reply is a
    # tested answer, an open one's is not yet.
    status: str | None = None


@dataclass(frozen=True, slots=True)
class LLMRequest:
    """What one model call must produce.

    ``system`` and ``messages`` are the fully built prompt (retrieved text already delimited
    in it by the caller); ``passages`` are the same retrieved passages as structured data, so
    citations can be resolved and the extractive composer can work without a model.
    ``rating``/``rating_scale`` describe the review being answered (``review_reply`` only).
    """

    task: Task
    company_id: str
    system: str = ""
    messages: Sequence[ChatMessage] = ()
    passages: Sequence[Passage] = ()
    language: str = "en"
    max_tokens: int = 512
    temperature: float = 0.2
    tone: Mapping[str, str] | None = None
    rating: float | None = None
    rating_scale: float = 5.0
    # The customer's first name for the greeting (draft replies), when it is known.
    customer_name: str | None = None
    # The ticket's status (summaries: what state the thread is in).
    ticket_status: str | None = None

    def __post_init__(self) -> None:
        validate_company_id(self.company_id)
        if self.max_tokens <= 0:
            raise ValueError("max_tokens must be positive")
        if self.rating is not None and not 0 <= self.rating <= self.rating_scale:
            raise ValueError("rating must lie between 0 and rating_scale")

    @property
    def customer_facing(self) -> bool:
        return self.task in CUSTOMER_FACING_TASKS

    @property
    def query_text(self) -> str:
        """The user's side of the conversation: the question, or the ticket/review text."""
        return "\n".join(m.content for m in self.messages if m.role == "user")


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class LLMResult:
    text: str
    provider: str
    model: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    finish_reason: str = "stop"
    cited_passage_ids: tuple[str, ...] = ()
    # True when the usage figures were estimated because the server reported none.
    usage_estimated: bool = False


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of generated text, in order."""

    text: str


@dataclass(frozen=True, slots=True)
class Completed:
    """The stream finished; ``result.text`` is the concatenation of all deltas."""

    result: LLMResult


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The stream broke after text was already sent, so it cannot fall back silently.

    Only the router emits this (providers raise :class:`~backend.llm.errors.ProviderError`);
    ``partial_text`` is what the client has already received.
    """

    code: str
    detail: str
    provider: str
    model: str
    partial_text: str


StreamEvent: TypeAlias = TextDelta | Completed | StreamFailed
