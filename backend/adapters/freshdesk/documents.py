"""Freshdesk v2 payloads → normalized documents.

Field names and codes follow the public API reference (developers.freshdesk.com/api):
tickets carry ``status`` 2-5 (custom statuses above), ``priority`` 1-4 and ``source`` codes;
conversations carry ``private`` (a private note) and ``incoming`` (sent by the customer side);
solution articles carry ``status`` 1 (draft) or 2 (published).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.adapters.base import (
    AuthorRole,
    Deletion,
    DocumentKind,
    DocumentPart,
    PartLabel,
    SourceDocument,
    as_utc,
)

SOURCE = "freshdesk"

TICKET_STATUSES: dict[int, str] = {2: "open", 3: "pending", 4: "resolved", 5: "closed"}
TICKET_PRIORITIES: dict[int, str] = {1: "low", 2: "medium", 3: "high", 4: "urgent"}
TICKET_CHANNELS: dict[int, str] = {
    1: "email",
    2: "portal",
    3: "phone",
    7: "chat",
    9: "feedback_widget",
    10: "outbound_email",
}
ARTICLE_STATUSES: dict[int, str] = {1: "draft", 2: "published"}


def parse_time(value: Any) -> datetime | None:
    """Freshdesk timestamps are ISO 8601 in UTC with a ``Z`` suffix."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def ticket_external_id(ticket_id: int | str) -> str:
    return f"ticket:{ticket_id}"


def article_external_id(article_id: int | str) -> str:
    return f"article:{article_id}"


def normalize_ticket_status(code: Any) -> str | None:
    if not isinstance(code, int):
        return None
    # Statuses above 5 are account-defined ("Waiting on customer", ...): the ticket is neither
    # new nor finished, which is what "pending" means to retrieval filters.
    return TICKET_STATUSES.get(code, "pending")


def _label(labels: dict[int, str], code: Any) -> Any:
    return labels.get(code, code) if isinstance(code, int) else code


def _body_part(
    html: Any, text: Any, *, label: PartLabel, role: AuthorRole | None, internal: bool, at: Any
) -> DocumentPart | None:
    # Prefer the HTML body: it keeps lists, tables and quoted blocks that the ingest normalizer
    # turns into clean text; body_text is Freshdesk's own flattening, the fallback.
    if isinstance(html, str) and html.strip():
        return DocumentPart(
            text=html,
            format="html",
            label=label,
            author_role=role,
            internal=internal,
            created_at=parse_time(at),
        )
    if isinstance(text, str) and text.strip():
        return DocumentPart(
            text=text,
            format="text",
            label=label,
            author_role=role,
            internal=internal,
            created_at=parse_time(at),
        )
    return None


def conversation_part(conversation: dict[str, Any]) -> DocumentPart | None:
    """One conversation entry: a reply, or a note (``private`` notes are internal)."""
    private = bool(conversation.get("private"))
    # `incoming` marks entries that came from outside the helpdesk (the customer's emails and
    # portal replies); everything else was written by an agent.
    role: AuthorRole = "customer" if conversation.get("incoming") else "agent"
    label: PartLabel = "note" if private or conversation.get("source") == 2 else "reply"
    return _body_part(
        conversation.get("body"),
        conversation.get("body_text"),
        label=label,
        role=role,
        internal=private,
        at=conversation.get("created_at"),
    )


def ticket_document(
    ticket: dict[str, Any], conversations: list[dict[str, Any]], *, domain: str
) -> SourceDocument:
    ticket_id = ticket["id"]
    subject = str(ticket.get("subject") or "").strip()
    parts: list[DocumentPart] = []
    if subject:
        parts.append(DocumentPart(text=subject, label="subject", author_role="customer"))
    description = _body_part(
        ticket.get("description"),
        ticket.get("description_text"),
        label="description",
        role="customer",
        internal=False,
        at=ticket.get("created_at"),
    )
    if description is not None:
        parts.append(description)
    for conversation in sorted(conversations, key=lambda c: (str(c.get("created_at")), c["id"])):
        part = conversation_part(conversation)
        if part is not None:
            parts.append(part)

    requester = ticket.get("requester")
    requester_email = requester.get("email") if isinstance(requester, dict) else None
    requester_id = ticket.get("requester_id")
    status_code = ticket.get("status")
    priority = ticket.get("priority")
    channel = ticket.get("source")
    return SourceDocument(
        source=SOURCE,
        external_id=ticket_external_id(ticket_id),
        kind=DocumentKind.TICKET,
        title=subject or f"Ticket #{ticket_id}",
        parts=parts,
        url=f"https://{domain}/a/tickets/{ticket_id}",
        status=normalize_ticket_status(status_code),
        tags=[str(tag) for tag in ticket.get("tags") or []],
        # Contacts are referenced by id; the email comes with include=requester. Either way the
        # value identifies one requester for GDPR deletion.
        requester=requester_email
        or (f"freshdesk-contact:{requester_id}" if requester_id is not None else None),
        created_at=parse_time(ticket.get("created_at")),
        updated_at=parse_time(ticket.get("updated_at")),
        metadata={
            "status_code": status_code,
            "priority": TICKET_PRIORITIES.get(priority, priority)
            if isinstance(priority, int)
            else priority,
            "channel": TICKET_CHANNELS.get(channel, channel)
            if isinstance(channel, int)
            else channel,
            "type": ticket.get("type"),
            "group_id": ticket.get("group_id"),
            "responder_id": ticket.get("responder_id"),
            "company_id": ticket.get("company_id"),
            "requester_id": requester_id,
            "custom_fields": ticket.get("custom_fields") or {},
        },
        raw={"ticket": ticket, "conversations": conversations},
    )


def ticket_deletion(ticket: dict[str, Any], reason: str) -> Deletion:
    return Deletion(source=SOURCE, external_id=ticket_external_id(ticket["id"]), reason=reason)


def article_document(
    article: dict[str, Any],
    *,
    domain: str,
    folder_name: str | None,
    category_name: str | None,
) -> SourceDocument:
    article_id = article["id"]
    title = str(article.get("title") or "").strip() or f"Article {article_id}"
    parts = [DocumentPart(text=title, label="subject")]
    body = _body_part(
        article.get("description"),
        article.get("description_text"),
        label="section",
        role=None,
        internal=False,
        at=article.get("created_at"),
    )
    if body is not None:
        parts.append(body)
    status = article.get("status")
    return SourceDocument(
        source=SOURCE,
        external_id=article_external_id(article_id),
        kind=DocumentKind.ARTICLE,
        title=title,
        parts=parts,
        url=f"https://{domain}/support/solutions/articles/{article_id}",
        status=ARTICLE_STATUSES.get(status) if isinstance(status, int) else None,
        tags=[str(tag) for tag in article.get("tags") or []],
        created_at=parse_time(article.get("created_at")),
        updated_at=parse_time(article.get("updated_at")),
        metadata={
            "category_id": article.get("category_id"),
            "category": category_name,
            "folder_id": article.get("folder_id"),
            "folder": folder_name,
            "agent_id": article.get("agent_id"),
        },
        raw=article,
    )
