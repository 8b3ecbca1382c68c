"""Triage: suggest a ticket's category, tags, group, priority, sentiment and language.

Category, tags, group and priority are *voted* by the company's own similar solved tickets:
the ticket's text is searched (dense, so that scores are cosine similarities that mean the
same thing from one query to the next) among that company's resolved and closed tickets
through the tenant-scoped retriever; the candidates are re-scored by a blend of that
similarity and a lexical one (:func:`rank_candidates`), and the best ten vote with the real
field values stored on their document rows. Another company's tickets can never vote: the
vector store and the database both answer only for the tenant asked about.

The vote (:func:`vote_field`) weighs each neighbour by ``exp(sharpness * (s - s_top))``, so
near-ties with the best match count almost fully and distant neighbours little, and the
confidence of the winning value is its weighted share of the vote times the score of its
best supporter. Out-of-scope tickets (about nothing the company has solved before) get
both a split vote and a weak best match, so one number catches both. Below a field's
threshold the answer is "no suggestion", never a guess. The defaults were chosen on the
CLINC150 validation split (``bench/triage.py``; results in ``bench/results/triage.md``).

Sentiment and language describe the ticket itself, not its neighbours: the language comes
from the ingest language detector, the sentiment from VADER (English lexicon; other
languages get no sentiment suggestion).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final, Literal

import structlog

from backend.db.models import Document
from backend.db.repositories import triage as triage_repo
from backend.db.session import Database
from backend.embeddings.sparse import tokenize
from backend.ingest.indexer import IndexedOpenTicket
from backend.ingest.normalize import detect_language
from backend.retrieval import HybridRetriever
from backend.retrieval.filters import SOLVED_STATUSES, SearchFilters
from backend.tenancy.company_id import CompanyId
from backend.tenancy.scope import TenantRows, open_rows
from backend.vectors import SearchMode

_log = structlog.get_logger("helpdesk.triage")

TriageField = Literal["category", "tags", "group", "priority", "sentiment", "language"]
TRIAGE_FIELDS: Final[tuple[TriageField, ...]] = (
    "category",
    "tags",
    "group",
    "priority",
    "sentiment",
    "language",
)
VOTED_FIELDS: Final[tuple[TriageField, ...]] = ("category", "tags", "group", "priority")
_MAX_TAGS: Final = 5
DEFAULT_VOTE_THRESHOLD: Final = 0.22

# Where each platform keeps a field in the document metadata, first match wins:
# Freshdesk and Zendesk say "type", ServiceNow "category"; groups are ids on Freshdesk
# and Zendesk, names on ServiceNow.
_METADATA_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "category": ("category", "type", "ticket_type"),
    "group": ("group", "group_name", "assignment_group", "group_id"),
    "priority": ("priority",),
}


@dataclass(frozen=True, slots=True)
class VoteRule:
    """How neighbours are found and vote; thresholds are per field (confidence in [0, 1]).

    The defaults were chosen on the CLINC150 validation split by ``bench/triage.py`` (the
    category threshold is the one that keeps the most validation accuracy while abstaining
    on at least 70% of out-of-scope requests); the other voted fields share it.
    """

    neighbors: int = 10
    candidates: int = 30
    dense_weight: float = 0.7
    sharpness: float = 10.0
    thresholds: Mapping[str, float] = field(
        default_factory=lambda: {
            "category": DEFAULT_VOTE_THRESHOLD,
            "tags": DEFAULT_VOTE_THRESHOLD,
            "group": DEFAULT_VOTE_THRESHOLD,
            "priority": DEFAULT_VOTE_THRESHOLD,
            "sentiment": 0.6,
            "language": 0.8,
        }
    )

    def threshold(self, name: str) -> float:
        return float(self.thresholds.get(name, DEFAULT_VOTE_THRESHOLD))


@dataclass(frozen=True, slots=True)
class Neighbor:
    """A similar solved ticket and the field values it votes with."""

    document_id: str
    external_id: str | None
    title: str
    similarity: float
    fields: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class FieldSuggestion:
    """``value`` is None when no candidate reached the field's threshold ("no suggestion");
    ``values`` lists every tag suggested (tags only); ``candidates`` shows the vote."""

    value: str | None
    confidence: float
    values: tuple[str, ...] = ()
    candidates: tuple[tuple[str, float], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "values": list(self.values),
            "confidence": round(self.confidence, 4),
            "candidates": [
                {"value": value, "confidence": round(score, 4)} for value, score in self.candidates
            ],
        }


NO_SUGGESTION = FieldSuggestion(value=None, confidence=0.0)


def _weights(neighbors: Sequence[Neighbor], sharpness: float) -> list[float]:
    if not neighbors:
        return []
    top = max(n.similarity for n in neighbors)
    return [math.exp(sharpness * (n.similarity - top)) for n in neighbors]


def vote_field(
    neighbors: Sequence[Neighbor], name: str, *, sharpness: float, threshold: float
) -> FieldSuggestion:
    """One field's vote. Neighbours without a value still weigh in the total: if most
    similar tickets never had a group, a group suggestion is not trustworthy."""
    weights = _weights(neighbors, sharpness)
    total = sum(weights)
    if total <= 0:
        return NO_SUGGESTION
    support: dict[str, float] = {}
    best_similarity: dict[str, float] = {}
    for neighbor, weight in zip(neighbors, weights, strict=True):
        for value in dict.fromkeys(neighbor.fields.get(name, ())):
            support[value] = support.get(value, 0.0) + weight
            best_similarity[value] = max(best_similarity.get(value, -1.0), neighbor.similarity)
    if not support:
        return NO_SUGGESTION
    scored = sorted(
        (
            (value, (weight / total) * max(best_similarity[value], 0.0))
            for value, weight in support.items()
        ),
        key=lambda item: (-item[1], item[0]),
    )
    candidates = tuple(scored[:5])
    if name == "tags":
        chosen = tuple(value for value, score in scored if score >= threshold)[:_MAX_TAGS]
        if not chosen:
            return FieldSuggestion(value=None, confidence=scored[0][1], candidates=candidates)
        return FieldSuggestion(
            value=chosen[0], confidence=scored[0][1], values=chosen, candidates=candidates
        )
    value, confidence = scored[0]
    if confidence < threshold:
        return FieldSuggestion(value=None, confidence=confidence, candidates=candidates)
    return FieldSuggestion(value=value, confidence=confidence, candidates=candidates)


def vote(neighbors: Sequence[Neighbor], rule: VoteRule) -> dict[str, FieldSuggestion]:
    """The voted fields (category, tags, group, priority) from the neighbours."""
    return {
        name: vote_field(neighbors, name, sharpness=rule.sharpness, threshold=rule.threshold(name))
        for name in VOTED_FIELDS
    }


@dataclass(frozen=True, slots=True)
class Candidate:
    """A solved ticket found by the dense search, before lexical re-scoring."""

    document_id: str
    external_id: str | None
    title: str
    dense_similarity: float
    text: str


def _terms(text: str) -> Counter[str]:
    words = tokenize(text)
    return Counter([*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))])


def lexical_similarities(query: str, texts: Sequence[str]) -> list[float]:
    """Cosine of sublinear TF-IDF vectors (words and word pairs), the IDF taken over the
    query and the candidates themselves: a word every candidate shares says little about
    which of them fits, a word only the query and one candidate share says a lot."""
    documents = [_terms(query), *(_terms(t) for t in texts)]
    frequency: Counter[str] = Counter()
    for terms in documents:
        frequency.update(terms.keys())
    size = len(documents)

    def unit(terms: Counter[str]) -> dict[str, float]:
        weights = {
            term: (1 + math.log(count)) * (math.log((1 + size) / (1 + frequency[term])) + 1)
            for term, count in terms.items()
        }
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {term: w / norm for term, w in weights.items()}

    asked = unit(documents[0])
    return [
        sum(asked.get(term, 0.0) * w for term, w in unit(terms).items()) for terms in documents[1:]
    ]


def rank_candidates(
    query: str, candidates: Sequence[Candidate], rule: VoteRule
) -> list[tuple[Candidate, float]]:
    """The ``rule.neighbors`` best candidates by a blend of the dense similarity and the
    lexical one. Dense vectors catch paraphrases; shared rare words ("invoice", a product
    name) separate neighbouring intents the small dense model blurs (on CLINC150 the blend
    lifts kNN accuracy from 0.907 to 0.920, see bench/results/triage.md)."""
    lexical = lexical_similarities(query, [c.text for c in candidates])
    scored = [
        (c, rule.dense_weight * c.dense_similarity + (1 - rule.dense_weight) * lex)
        for c, lex in zip(candidates, lexical, strict=True)
    ]
    scored.sort(key=lambda item: -item[1])
    return scored[: rule.neighbors]


def _as_values(value: Any) -> tuple[str, ...]:
    if value is None or value == "" or isinstance(value, dict | list):
        return ()
    return (str(value).strip(),) if str(value).strip() else ()


def ticket_fields(document: Document) -> dict[str, tuple[str, ...]]:
    """The triage field values a ticket really has, from its document row."""
    metadata = document.metadata_ or {}
    fields: dict[str, tuple[str, ...]] = {}
    for name, keys in _METADATA_KEYS.items():
        for key in keys:
            values = _as_values(metadata.get(key))
            if values:
                fields[name] = values
                break
    tags = tuple(dict.fromkeys(t.strip() for t in document.tags or () if t and t.strip()))
    if tags:
        fields["tags"] = tags
    return fields


@cache
def _sentiment_analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_of(text: str, language: str | None, *, threshold: float) -> FieldSuggestion:
    """VADER's compound score → negative / neutral / positive. Confidence: how far the score
    sits inside its band (|compound| for polar texts, nearness to 0 for neutral ones)."""
    if language not in (None, "en") or not text.strip():
        return NO_SUGGESTION
    compound = float(_sentiment_analyzer().polarity_scores(text[:5000])["compound"])
    if compound >= 0.05:
        label, confidence = "positive", 0.5 + compound / 2
    elif compound <= -0.05:
        label, confidence = "negative", 0.5 - compound / 2
    else:
        label, confidence = "neutral", 1.0 - abs(compound) * 5
    if confidence < threshold:
        return FieldSuggestion(value=None, confidence=confidence)
    return FieldSuggestion(value=label, confidence=confidence)


def language_of(text: str, *, threshold: float) -> FieldSuggestion:
    """The detector's language; it answers only above ``threshold`` (its own probability)."""
    language = detect_language(text, min_confidence=threshold)
    if language is None:
        return FieldSuggestion(value=None, confidence=0.0)
    return FieldSuggestion(value=language, confidence=1.0)


@dataclass(frozen=True, slots=True)
class TriageResult:
    suggestions: dict[str, FieldSuggestion]
    neighbors: tuple[Neighbor, ...]

    def suggestions_json(self) -> dict[str, Any]:
        return {name: self.suggestions[name].to_json() for name in TRIAGE_FIELDS}

    def neighbors_json(self) -> list[dict[str, Any]]:
        return [
            {
                "document_id": n.document_id,
                "external_id": n.external_id,
                "title": n.title,
                "similarity": round(n.similarity, 4),
            }
            for n in self.neighbors
        ]


class TriageService:
    """Suggestions for one company's tickets, read and stored in the caller's
    :class:`~backend.tenancy.scope.TenantRows` (a request's scope); the ingest hook opens
    one per ticket."""

    def __init__(
        self, database: Database, retriever: HybridRetriever, rule: VoteRule | None = None
    ) -> None:
        self._database = database
        self._retriever = retriever
        self.rule = rule or VoteRule()

    async def neighbors(
        self, rows: TenantRows, text: str, *, exclude_external_id: str | None = None
    ) -> list[Neighbor]:
        """The company's most similar solved tickets, with their field values."""
        passages = await self._retriever.search(
            rows.company_id,
            text,
            filters=SearchFilters(kinds=("ticket",), statuses=SOLVED_STATUSES),
            limit=self.rule.candidates + 1,
            mode=SearchMode.DENSE,
            per_document=1,
        )
        candidates = [
            Candidate(p.document_id, p.external_id, p.title, p.score, p.text)
            for p in passages
            if p.external_id is None or p.external_id != exclude_external_id
        ]
        ranked = rank_candidates(text, candidates, self.rule)
        documents = await triage_repo.get_documents(
            rows.session, [uuid.UUID(c.document_id) for c, _ in ranked]
        )
        by_id = {str(document.id): document for document in documents}
        return [
            Neighbor(
                document_id=c.document_id,
                external_id=c.external_id,
                title=c.title,
                similarity=score,
                fields=ticket_fields(by_id[c.document_id]),
            )
            for c, score in ranked
            # A ticket deleted between the two reads simply does not vote.
            if c.document_id in by_id
        ]

    async def suggest(
        self, rows: TenantRows, text: str, *, exclude_external_id: str | None = None
    ) -> TriageResult:
        neighbors = await self.neighbors(rows, text, exclude_external_id=exclude_external_id)
        suggestions = vote(neighbors, self.rule)
        language = language_of(text, threshold=self.rule.threshold("language"))
        suggestions["language"] = language
        suggestions["sentiment"] = await asyncio.to_thread(
            sentiment_of, text, language.value, threshold=self.rule.threshold("sentiment")
        )
        return TriageResult(suggestions, tuple(neighbors))

    async def triage_ticket(
        self,
        rows: TenantRows,
        *,
        document_id: uuid.UUID,
        source: str,
        external_id: str,
        text: str,
    ) -> TriageResult:
        """Suggest for an indexed ticket and store the result with it."""
        result = await self.suggest(rows, text, exclude_external_id=external_id)
        await triage_repo.save_suggestions(
            rows.session,
            company_id=rows.company_id,
            document_id=document_id,
            external_id=external_id,
            source=source,
            suggestions=result.suggestions_json(),
            neighbors=result.neighbors_json(),
        )
        return result

    async def on_tickets_changed(
        self, company_id: CompanyId, tickets: Iterable[IndexedOpenTicket]
    ) -> None:
        """Ingest hook: triage new and updated open tickets. A failure is logged, never
        allowed to fail the sync that indexed them (suggestions are a convenience)."""
        for ticket in tickets:
            try:
                # One transaction per ticket: a failure loses that ticket's suggestions only.
                async with open_rows(self._database, company_id) as rows:
                    await self.triage_ticket(
                        rows,
                        document_id=ticket.document_id,
                        source=ticket.source,
                        external_id=ticket.external_id,
                        text=ticket.text,
                    )
            except Exception:
                _log.exception(
                    "triage on ingest failed", company_id=company_id, ticket=ticket.external_id
                )
