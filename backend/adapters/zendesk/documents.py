"""Zendesk payloads (tickets with their comments, Help Center articles) → SourceDocuments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.adapters.attachments import AttachmentRef, AttachmentResults
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


Users = dict[str, dict[str, Any]]
"""User id (as text) → the user as sideloaded with ``include=users``."""


def users_by_id(users: Any) -> Users:
    listed = users if isinstance(users, list) else []
    return {
        str(user["id"]): user
        for user in listed
        if isinstance(user, dict) and user.get("id") is not None
    }


def _clean(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _author(comment: dict[str, Any], users: Users) -> tuple[str | None, str | None, str | None]:
    """(id, name, email) of a comment's author: the sideloaded user, else the email sender."""
    author_id = comment.get("author_id")
    user = users.get(str(author_id), {})
    sender = ((comment.get("via") or {}).get("source") or {}).get("from") or {}
    name = _clean(user.get("name")) or _clean(sender.get("name"))
    email = _clean(user.get("email")) or _clean(sender.get("address"))
    return (str(author_id) if author_id is not None else None), name, email


def attachment_refs(
    comments: list[dict[str, Any]], requester_id: Any, users: Users
) -> list[AttachmentRef]:
    """Files attached to comments: ``{id, file_name, content_url, content_type, size, inline}``.

    ``content_url`` may point at a file host outside the account (Zendesk says not to send
    credentials there); the adapter decides which downloads carry auth.
    """
    refs: list[AttachmentRef] = []
    for comment in comments:
        _, name, _ = _author(comment, users)
        role: AuthorRole = "customer" if comment.get("author_id") == requester_id else "agent"
        for item in comment.get("attachments") or []:
            if not isinstance(item, dict) or not _clean(item.get("file_name")):
                continue
            size = item.get("size")
            refs.append(
                AttachmentRef(
                    id=str(item["id"]) if item.get("id") is not None else None,
                    name=str(item["file_name"]).strip(),
                    url=_clean(item.get("content_url")),
                    size=size if isinstance(size, int) else None,
                    content_type=_clean(item.get("content_type")),
                    internal=not bool(comment.get("public", True)),
                    author_role=role,
                    author_name=name,
                )
            )
    return refs


def article_attachment_refs(items: list[dict[str, Any]]) -> list[AttachmentRef]:
    """``GET /api/v2/help_center/articles/{id}/attachments`` entries (``article_attachments``:
    ``id``, ``file_name``, ``content_url``, ``content_type``, ``size``, ``inline``)."""
    refs: list[AttachmentRef] = []
    for item in items:
        if not isinstance(item, dict) or not _clean(item.get("file_name")):
            continue
        size = item.get("size")
        refs.append(
            AttachmentRef(
                id=str(item["id"]) if item.get("id") is not None else None,
                name=str(item["file_name"]).strip(),
                url=_clean(item.get("content_url")),
                size=size if isinstance(size, int) else None,
                content_type=_clean(item.get("content_type")),
            )
        )
    return refs


def _comment_text(comment: dict[str, Any]) -> str:
    # plain_body is the rendered text without markup; body is the author's markdown source.
    text = comment.get("plain_body") or comment.get("body") or ""
    return str(text).strip()


def ticket_document(
    ticket: dict[str, Any],
    comments: list[dict[str, Any]],
    *,
    agent_root: str,
    users: Users | None = None,
    attachments: AttachmentResults | None = None,
) -> SourceDocument:
    """A ticket and its whole comment thread as one document.

    The first comment is the ticket's description. Comments with ``public: false`` are internal
    notes: kept (agents need them) but marked internal so they are never quoted to a customer.
    """
    ticket_id = ticket["id"]
    requester_id = ticket.get("requester_id")
    users = users or {}
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
        author_id, author_name, author_email = _author(comment, users)
        parts.append(
            DocumentPart(
                text=text,
                label=label,
                author_role=role,
                internal=not public,
                created_at=parse_time(comment.get("created_at")),
                author_id=author_id,
                author_name=author_name,
                author_email=author_email,
            )
        )
    if not comments and ticket.get("description"):
        # Comments could not be listed (or the ticket has none): keep at least the description.
        parts.append(
            DocumentPart(
                text=str(ticket["description"]), label="description", author_role="customer"
            )
        )
    if attachments is not None:
        parts.extend(attachments.parts)
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
        "requester_name": _clean(users.get(str(requester_id), {}).get("name")),
        "assignee_name": _clean(users.get(str(ticket.get("assignee_id")), {}).get("name")),
        # Task tickets have a due date; Zendesk has no escalation flag (teams use tags/SLAs).
        "due_at": ticket.get("due_at"),
        "attachments": attachments.records if attachments is not None else None,
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


def article_document(
    article: dict[str, Any],
    *,
    translation: dict[str, Any] | None = None,
    attachments: AttachmentResults | None = None,
) -> SourceDocument:
    """A Help Center article, or (``translation`` given) one of its translations.

    The language is the platform's: the translation's (or the article's) ``locale``. A
    translation into another locale than the article's ``source_locale`` becomes its own
    document (``article:{id}:{locale}``) linked by ``metadata["translation_of"]``; the
    translation in the source locale is the article itself.
    """
    article_id = article["id"]
    content = translation or article
    title = str(content.get("title") or content.get("name") or f"Article {article_id}").strip()
    body = str(content.get("body") or "")
    parts = [DocumentPart(text=body, format="html", label="section")] if body.strip() else []
    if attachments is not None:
        parts.extend(attachments.parts)
    locale = content.get("locale") or article.get("source_locale")
    source_id = article_external_id(article_id)
    is_translation = translation is not None
    return SourceDocument(
        source=SOURCE,
        external_id=f"{source_id}:{str(locale).lower()}" if is_translation else source_id,
        kind=DocumentKind.ARTICLE,
        title=title,
        parts=parts,
        url=content.get("html_url") or article.get("html_url"),
        status="draft" if content.get("draft") else "published",
        # Zendesk locales are BCP 47-ish ("en-us", "ko"); keep the language subtag.
        language=str(locale).split("-")[0].lower() if locale else None,
        tags=[str(label) for label in article.get("label_names") or []],
        created_at=parse_time(content.get("created_at")),
        updated_at=parse_time(content.get("updated_at")),
        metadata={
            "section_id": article.get("section_id"),
            "locale": locale,
            "promoted": bool(article.get("promoted")),
            # "outdated": the source translation changed after this one was written.
            "outdated": bool(content.get("outdated")),
            "outdated_locales": article.get("outdated_locales") or [],
            "vote_sum": article.get("vote_sum"),
            "translation_of": source_id if is_translation else None,
            "attachments": attachments.records if attachments is not None else [],
        },
        raw={"article": article, "translation": translation}
        if is_translation
        else {"article": article},
    )
