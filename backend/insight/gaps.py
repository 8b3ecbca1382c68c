"""Knowledge gaps: what customers and agents keep asking that the knowledge base does not
cover, found in the company's own recent questions, tickets and reviews.

A *signal* is one recent item that suggests missing knowledge:

- an agent's question (an ``answer`` interaction) that got no article to cite, or that an
  agent rated down;
- a ticket whose text finds no article close to it (weak retrieval support: the best
  article's cosine similarity is below ``support_threshold``), or whose agents' replies
  cite no article of the help center;
- a low-rated review (1-2 stars): recurring complaints are gaps too.

Signals are embedded with the company's dense encoder and grouped greedily (each joins the
nearest group whose centroid is at least ``cluster_similarity`` away in cosine, else opens
a new one). Groups are ranked by volume, then by trend (the second half of the window
against the first). Each comes with its representative questions (nearest the centroid),
the agents' resolutions, and an extractive draft article that cites its source tickets.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import structlog

from backend.assistant.prompts import CITATION_RULE, UNTRUSTED_DATA_RULE, passages_block
from backend.db.repositories import gaps as gaps_repo
from backend.db.session import Database
from backend.embeddings.dense import DenseEncoder
from backend.llm.router import LLMRouter
from backend.llm.types import ChatMessage, LLMRequest, Passage
from backend.retrieval import HybridRetriever
from backend.retrieval.filters import SearchFilters
from backend.tenancy.company_id import CompanyId
from backend.vectors import SearchMode

_log = structlog.get_logger("helpdesk.gaps")

SignalKind = Literal["question", "ticket", "review"]
SignalReason = Literal["weak_support", "negative_feedback", "no_article_cited", "low_rating"]
_MAX_RESOLUTION_CHARS: Final = 600


@dataclass(frozen=True, slots=True)
class GapSignal:
    kind: SignalKind
    ref: str
    """The ticket's platform id, the review's, or the interaction id."""
    text: str
    reasons: tuple[SignalReason, ...]
    at: datetime
    resolution: str | None = None
    url: str | None = None


@dataclass
class GapCluster:
    members: list[GapSignal]
    centroid: list[float]
    vectors: list[list[float]] = field(default_factory=list)

    @property
    def volume(self) -> int:
        return len(self.members)


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(_dot(vector, vector)) or 1.0
    return [x / norm for x in vector]


def cluster_signals(
    signals: Sequence[GapSignal],
    vectors: Sequence[Sequence[float]],
    *,
    similarity: float,
) -> list[GapCluster]:
    """Greedy centroid clustering, oldest signal first (deterministic for a given input)."""
    clusters: list[GapCluster] = []
    sums: list[list[float]] = []
    for signal, vector in sorted(
        zip(signals, vectors, strict=True), key=lambda item: (item[0].at, item[0].ref)
    ):
        unit = _unit(vector)
        best, best_score = -1, similarity
        for index, cluster in enumerate(clusters):
            score = _dot(unit, cluster.centroid)
            if score >= best_score:
                best, best_score = index, score
        if best < 0:
            clusters.append(GapCluster(members=[signal], centroid=unit, vectors=[unit]))
            sums.append(list(unit))
            continue
        cluster = clusters[best]
        cluster.members.append(signal)
        cluster.vectors.append(unit)
        sums[best] = [a + b for a, b in zip(sums[best], unit, strict=True)]
        cluster.centroid = _unit(sums[best])
    return clusters


def trend(cluster: GapCluster, *, since: datetime, until: datetime) -> float:
    """(second-half count − first-half count) / max(first-half count, 1)."""
    middle = since + (until - since) / 2
    early = sum(1 for m in cluster.members if m.at < middle)
    late = cluster.volume - early
    return (late - early) / max(early, 1)


def rank_clusters(
    clusters: Sequence[GapCluster], *, since: datetime, until: datetime, min_volume: int
) -> list[tuple[GapCluster, float]]:
    kept = [(c, trend(c, since=since, until=until)) for c in clusters if c.volume >= min_volume]
    kept.sort(key=lambda item: (-item[0].volume, -item[1], item[0].members[0].ref))
    return kept


def _representatives(cluster: GapCluster, count: int) -> list[GapSignal]:
    scored = sorted(
        zip(cluster.members, cluster.vectors, strict=True),
        key=lambda item: -_dot(item[1], cluster.centroid),
    )
    return [member for member, _ in scored[:count]]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else ""


def draft_article(cluster: GapCluster) -> dict[str, Any]:
    """An extractive draft: the most central question as its title, the agents' most
    central resolutions as its body, every source ticket cited."""
    representatives = _representatives(cluster, len(cluster.members))
    title = _first_line(representatives[0].text)
    resolutions = [m for m in representatives if m.resolution][:3]
    sources = [m.ref for m in cluster.members if m.kind == "ticket"]
    if resolutions:
        body = "\n\n".join(
            f"{m.resolution.strip()[:_MAX_RESOLUTION_CHARS]} [{m.ref}]"
            for m in resolutions
            if m.resolution
        )
    else:
        body = (
            "No agent resolution was recorded for these requests yet. Customers ask:\n"
            + "\n".join(f"- {_first_line(m.text)} [{m.ref}]" for m in representatives[:5])
        )
    return {"title": title, "body": body, "cites": sources, "provider": "extractive"}


def describe(cluster: GapCluster, trend_value: float) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for member in cluster.members:
        kinds[member.kind] = kinds.get(member.kind, 0) + 1
        for reason in member.reasons:
            reasons[reason] = reasons.get(reason, 0) + 1
    representatives = _representatives(cluster, 3)
    return {
        "volume": cluster.volume,
        "trend": round(trend_value, 3),
        "kinds": kinds,
        "reasons": reasons,
        "review_complaints": kinds.get("review", 0),
        "representative_questions": [_first_line(m.text) for m in representatives],
        "resolutions": [
            {"ref": m.ref, "text": m.resolution[:_MAX_RESOLUTION_CHARS]}
            for m in _representatives(cluster, len(cluster.members))
            if m.resolution
        ][:3],
        "sources": [{"kind": m.kind, "ref": m.ref, "url": m.url} for m in cluster.members][:50],
        "draft_article": draft_article(cluster),
    }


async def article_support(retriever: HybridRetriever, company_id: CompanyId, text: str) -> float:
    """The cosine similarity of the company's closest article (0 when it has none)."""
    passages = await retriever.search(
        company_id,
        text,
        filters=SearchFilters(kinds=("article",)),
        limit=1,
        mode=SearchMode.DENSE,
    )
    return passages[0].score if passages else 0.0


@dataclass(frozen=True, slots=True)
class GapSettings:
    support_threshold: float = 0.5
    cluster_similarity: float = 0.5
    min_volume: int = 2
    max_items: int = 400


class GapFinder:
    def __init__(
        self,
        database: Database,
        retriever: HybridRetriever,
        dense: DenseEncoder,
        settings: GapSettings | None = None,
        router: LLMRouter | None = None,
    ) -> None:
        self._database = database
        self._retriever = retriever
        self._dense = dense
        self._router = router
        self.settings = settings or GapSettings()

    async def article_support(self, company_id: CompanyId, text: str) -> float:
        return await article_support(self._retriever, company_id, text)

    async def signals(self, company_id: CompanyId, *, since: datetime) -> list[GapSignal]:
        limit = self.settings.max_items
        async with self._database.tenant_session(company_id) as session:
            questions = await gaps_repo.recent_questions(session, since=since, limit=limit)
            tickets = await gaps_repo.recent_tickets(session, since=since, limit=limit)
            reviews = await gaps_repo.low_rated_reviews(session, since=since, limit=limit)
            article_urls = await gaps_repo.article_urls(session)
        found: list[GapSignal] = []
        for question in questions:
            reasons: list[SignalReason] = []
            if not any(c.get("kind") == "article" for c in question["citations"] or []):
                reasons.append("weak_support")
            if question["disliked"]:
                reasons.append("negative_feedback")
            if reasons and question["question"].strip():
                found.append(
                    GapSignal(
                        kind="question",
                        ref=str(question["id"]),
                        text=question["question"],
                        reasons=tuple(reasons),
                        at=question["created_at"],
                    )
                )
        for ticket in tickets:
            text = f"{ticket['title']}\n\n{ticket['description']}".strip()
            if not text:
                continue
            reasons = []
            if await self.article_support(company_id, text) < self.settings.support_threshold:
                reasons.append("weak_support")
            resolution = ticket["resolution"]
            if resolution and not any(url in resolution for url in article_urls):
                reasons.append("no_article_cited")
            if reasons:
                found.append(
                    GapSignal(
                        kind="ticket",
                        ref=ticket["external_id"],
                        text=text,
                        reasons=tuple(reasons),
                        at=ticket["at"],
                        resolution=resolution or None,
                        url=ticket["url"],
                    )
                )
        found.extend(
            GapSignal(
                kind="review",
                ref=review["external_id"],
                text=review["text"],
                reasons=("low_rating",),
                at=review["at"],
                url=review["url"],
            )
            for review in reviews
            if review["text"].strip()
        )
        return found

    async def gaps(
        self, company_id: CompanyId, *, since: datetime, until: datetime, limit: int
    ) -> list[dict[str, Any]]:
        signals = await self.signals(company_id, since=since)
        if not signals:
            return []
        vectors = await self._dense.embed_documents([s.text[:2000] for s in signals])
        clusters = cluster_signals(signals, vectors, similarity=self.settings.cluster_similarity)
        ranked = rank_clusters(
            clusters, since=since, until=until, min_volume=self.settings.min_volume
        )
        found = []
        for cluster, trend_value in ranked[:limit]:
            gap = {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, cluster.members[0].ref)),
                **describe(cluster, trend_value),
            }
            written = await self.model_draft(company_id, cluster)
            if written is not None:
                gap["draft_article"] = written
            found.append(gap)
        return found

    async def model_draft(
        self, company_id: CompanyId, cluster: GapCluster
    ) -> dict[str, Any] | None:
        """A draft written by the company's configured model for the ``answer`` task, from the
        cluster's questions and resolutions as delimited data; None when the route is the
        extractive composer (the extractive draft stands) or the model call fails."""
        if self._router is None:
            return None
        plan = await self._router.plan(LLMRequest(task="answer", company_id=company_id))
        if not plan.chain or plan.chain[0] == "extractive":
            return None
        members = _representatives(cluster, min(len(cluster.members), 8))
        passages = [
            Passage(
                id=m.ref,
                title=_first_line(m.text),
                text=f"Question: {m.text}\n\nResolution: {m.resolution or '(none recorded)'}",
                kind=m.kind,
            )
            for m in members
        ]
        system = "\n\n".join(
            [
                f"You write help-center articles for the company '{company_id}'. Draft one "
                "article that answers the recurring question the passages share, using only "
                "what the agents' resolutions say. Start with a one-line title.",
                CITATION_RULE,
                UNTRUSTED_DATA_RULE,
                passages_block(passages),
            ]
        )
        try:
            result = await self._router.complete(
                LLMRequest(
                    task="answer",
                    company_id=company_id,
                    system=system,
                    messages=(ChatMessage("user", "Write the article."),),
                    passages=passages,
                    max_tokens=700,
                )
            )
        except Exception:
            _log.exception("gap article draft failed", company_id=company_id)
            return None
        title, _, body = result.text.strip().partition("\n")
        return {
            "title": title.strip("# ").strip() or _first_line(members[0].text),
            "body": body.strip() or result.text.strip(),
            "cites": [m.ref for m in cluster.members if m.kind == "ticket"],
            "provider": result.provider,
            "model": result.model,
        }


def window(now: datetime, days: int) -> tuple[datetime, datetime]:
    return now - timedelta(days=days), now
