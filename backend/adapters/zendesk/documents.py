"""Zendesk payloads (tickets with their comments, Help Center articles) → SourceDocuments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.adapters.base import AuthorRole, DocumentKind, DocumentPart, SourceDocument

SOURCE = "zendesk"

# Zendesk ticket statuses → the shared vocabulary. "hold" waits on a third party: pending.
_TICKET_STATUS = {
    "new": "open",
    "open": "open",
    "pending": "pending",
    "hold": "pending",
    "solved": "resolved",
    "closed": "closed",
}


def ticket_external_id(ticket_id: int | str) -> str:
    return f"ticket:{ticket_id}"


def article_external_id(article_id: int | str) -> str:
    return f"article:{article_id}"


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _requester(ticket: dict[str, Any]) -> str | None:
    # Email tickets carry the sender's address in via.source.from; other channels only the user id.
    source = (ticket.get("via") or {}).get("source") or {}
    address = (source.get("from") or {}).get("address")
    if isinstance(address, str) and address:
        return address.lower()
    requester_id = ticket.get("requester_id")
    return f"zendesk-user:{requester_id}" if requester_id is not None else None


def _comment_text(comment: dict[str, Any]) -> str:
    # plain_body is the rendered text without markup; body is the author's markdown source.
    text = comment.get("plain_body") or comment.get("body") or ""
    return str(text).strip()


def ticket_document(
    ticket: dict[str, Any], comments: list[dict[str, Any]], *, agent_root: str
) -> SourceDocument:
    """A ticket and its whole comment thread as one document.

    The first comment is the ticket's description. Comments with ``public: false`` are internal
    notes: kept (agents need them) but marked internal so they are never quoted to a customer.
    """
    ticket_id = ticket["id"]
    requester_id = ticket.get("requester_id")
    subject = str(ticket.get("subject") or ticket.get("raw_subject") or "").strip()
    parts: list[DocumentPart] = []
    if subject:
        parts.append(DocumentPart(text=subject, label="subject", author_role="customer"))
    for index, comment in enumerate(comments):
        text = _comment_text(comment)
        if not text:
            continue
        public = bool(comment.get("public", True))
        role: AuthorRole = "customer" if comment.get("author_id") == requester_id else "agent"
        if index == 0 and public:
            label = "description"
        elif public:
            label = "reply"
        else:
            label = "note"
        parts.append(
            DocumentPart(
                text=text,
                label=label,
                author_role=role,
                internal=not public,
                created_at=parse_time(comment.get("created_at")),
            )
        )
    if not comments and ticket.get("description"):
        # Comments could not be listed (or the ticket has none): keep at least the description.
        parts.append(
            DocumentPart(
                text=str(ticket["description"]), label="description", author_role="customer"
            )
        )
    via = ticket.get("via") or {}
    satisfaction = ticket.get("satisfaction_rating") or {}
    metadata: dict[str, Any] = {
        "priority": ticket.get("priority"),
        "type": ticket.get("type"),
        "zendesk_status": ticket.get("status"),
        "channel": via.get("channel"),
        "group_id": ticket.get("group_id"),
        "assignee_id": ticket.get("assignee_id"),
        "organization_id": ticket.get("organization_id"),
        "brand_id": ticket.get("brand_id"),
        "custom_fields": ticket.get("custom_fields") or [],
        "satisfaction": satisfaction.get("score") if isinstance(satisfaction, dict) else None,
        "comment_count": len(comments),
    }
    return SourceDocument(
        source=SOURCE,
        external_id=ticket_external_id(ticket_id),
        kind=DocumentKind.TICKET,
        title=subject or f"Ticket #{ticket_id}",
        parts=parts,
        url=f"{agent_root}/agent/tickets/{ticket_id}",
        status=_TICKET_STATUS.get(str(ticket.get("status")), ticket.get("status")),
        tags=[str(tag) for tag in ticket.get("tags") or []],
        requester=_requester(ticket),
        created_at=parse_time(ticket.get("created_at")),
        updated_at=parse_time(ticket.get("updated_at")),
        metadata={key: value for key, value in metadata.items() if value is not None},
        raw={"ticket": ticket, "comments": comments},
    )


def article_document(article: dict[str, Any]) -> SourceDocument:
    """A Help Center article; its HTML body stays HTML for ingest to normalize."""
    article_id = article["id"]
    title = str(article.get("title") or article.get("name") or f"Article {article_id}").strip()
    body = str(article.get("body") or "")
    parts = [DocumentPart(text=body, format="html", label="section")] if body.strip() else []
    locale = article.get("locale") or article.get("source_locale")
    return SourceDocument(
        source=SOURCE,
        external_id=article_external_id(article_id),
        kind=DocumentKind.ARTICLE,
        title=title,
        parts=parts,
        url=article.get("html_url"),
        status="draft" if article.get("draft") else "published",
        # Zendesk locales are BCP 47-ish ("en-us", "ko"); keep the language subtag.
        language=str(locale).split("-")[0].lower() if locale else None,
        tags=[str(label) for label in article.get("label_names") or []],
        created_at=parse_time(article.get("created_at")),
        updated_at=parse_time(article.get("updated_at")),
        metadata={
            "section_id": article.get("section_id"),
            "locale": locale,
            "promoted": bool(article.get("promoted")),
            # "outdated": the source translation changed after this one was written.
            "outdated": bool(article.get("outdated")),
            "outdated_locales": article.get("outdated_locales") or [],
            "vote_sum": article.get("vote_sum"),
        },
        raw={"article": article},
    )
