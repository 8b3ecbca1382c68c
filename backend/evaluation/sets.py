"""Building a company's evaluation set from its own solved tickets and feedback.

- **Solved tickets.** Ingest writes each ticket's first chunk as a question/answer pair
  ("Q: subject + the start of the customer's description", then "Resolution: the agent's
  final public reply", see :mod:`backend.ingest.chunking`). That chunk is read back through
  the vectors layer, so only public text is used: the question is what the customer first
  wrote, the reference is the agent's final public reply, and the relevant sources are the
  articles that reply links (by URL or quoted title). The ticket itself is excluded from
  retrieval when the case runs, or it would answer itself.
- **Feedback.** Answers an agent up-voted (question → that answer, its citations relevant)
  and drafts an agent inserted into a reply (the recorded request → the draft).

Every case is run as an ``answer`` (the question through ``/v1/answer``'s path); a drafted
reply's reference includes greeting and sign-off, so its F1 is lower than an answer's.
Re-running ``build`` replaces the set; runs keep the set's name.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from backend.db.repositories import documents as document_repo
from backend.db.repositories import interactions as interaction_repo
from backend.db.session import Database
from backend.retrieval.filters import SOLVED_STATUSES
from backend.tenancy.company_id import CompanyIdField, validate_company_id
from backend.vectors import VectorStore
from backend.vectors.namespace import point_id

CaseOrigin = Literal["solved_ticket", "upvoted_answer", "inserted_draft"]

_QA_RE = re.compile(
    r"^Q: (?P<subject>[^\n]*)\n?(?P<question>.*?)\n\nResolution: (?P<answer>.+)$", re.S
)
_URL_RE = re.compile(r"https?://[^\s)>\]\"']+")
_QUOTED_RE = re.compile(r"[\"'‘’“”]([^\"'‘’“”]{6,120})[\"'‘’“”]")
_MAX_DOCUMENTS = 5000


class EvalCase(BaseModel):
    id: str
    origin: CaseOrigin
    question: str
    reference: str
    relevant_document_ids: list[str] = Field(default_factory=list)
    """Documents (``documents.id``) a good retrieval returns; empty when none are known."""
    exclude_document_id: str | None = None
    """The ticket the case came from: left out of retrieval so it cannot answer itself."""


class EvalSet(BaseModel):
    company_id: CompanyIdField
    name: str
    created_at: datetime
    cases: list[EvalCase]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for case in self.cases:
            counts[case.origin] = counts.get(case.origin, 0) + 1
        return counts


async def build_set(
    database: Database,
    vectors: VectorStore,
    company_id: str,
    *,
    name: str = "default",
    max_cases: int = 500,
) -> EvalSet:
    """The company's evaluation set, newest history first, at most ``max_cases`` cases."""
    validate_company_id(company_id)
    async with database.tenant_session(company_id) as session:
        tickets = [
            t
            for t in await document_repo.list_documents(
                session,
                kind="ticket",
                source=None,
                updated_after=None,
                limit=_MAX_DOCUMENTS,
                offset=0,
            )
            if (t.status or "").casefold() in SOLVED_STATUSES
        ]
        articles = await document_repo.list_documents(
            session, kind="article", source=None, updated_after=None, limit=_MAX_DOCUMENTS, offset=0
        )
        feedback = await interaction_repo.list_feedback_examples(session, limit=max_cases)
    by_url = {a.url.rstrip("/"): str(a.id) for a in articles if a.url}
    by_title = {a.title.strip().casefold(): str(a.id) for a in articles if a.title.strip()}

    cases: list[EvalCase] = []
    ids = [point_id(company_id, t.source, t.external_id, 0) for t in tickets]
    payloads = await vectors.payloads(company_id, ids) if ids else {}
    for ticket, pid in zip(tickets, ids, strict=True):
        payload = payloads.get(pid)
        if payload is None or payload.internal:
            continue
        body = (
            payload.text.partition("\n\n")[2]
            if payload.text.startswith(payload.title)
            else payload.text
        )
        match = _QA_RE.match(body.strip())
        if match is None:
            continue
        question = match.group("question").strip() or match.group("subject").strip()
        answer = match.group("answer").strip()
        if not question or not answer:
            continue
        cases.append(
            EvalCase(
                id=f"ticket:{ticket.source}:{ticket.external_id}",
                origin="solved_ticket",
                question=question,
                reference=answer,
                relevant_document_ids=_linked_articles(answer, by_url, by_title),
                exclude_document_id=str(ticket.id),
            )
        )
    for interaction, origin in feedback:
        reference = interaction.answer.strip()
        question = interaction.question.strip()
        if not reference or not question:
            continue
        cited = [str(c.get("document_id")) for c in interaction.citations if c.get("document_id")]
        cases.append(
            EvalCase(
                id=f"interaction:{interaction.id}",
                origin=origin,
                question=question,
                reference=reference,
                relevant_document_ids=list(dict.fromkeys(cited)),
            )
        )
    return EvalSet(
        company_id=company_id, name=name, created_at=datetime.now(UTC), cases=cases[:max_cases]
    )


def _linked_articles(text: str, by_url: dict[str, str], by_title: dict[str, str]) -> list[str]:
    linked = [by_url[u.rstrip("/.,")] for u in _URL_RE.findall(text) if u.rstrip("/.,") in by_url]
    linked += [
        by_title[q.strip().casefold()]
        for q in _QUOTED_RE.findall(text)
        if q.strip().casefold() in by_title
    ]
    return list(dict.fromkeys(linked))
