"""Freshdesk v2 payloads → normalized documents.

Field names and codes follow the public API reference (developers.freshdesk.com/api):
tickets carry ``status`` 2-5 (custom statuses above), ``priority`` 1-4 and ``source`` codes;
conversations carry ``private`` (a private note) and ``incoming`` (sent by the customer side);
solution articles carry ``status`` 1 (draft) or 2 (published).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.adapters.attachments import AttachmentRef, AttachmentResults
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


def _text_or_none(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def people_names(ticket: dict[str, Any]) -> dict[str, str]:
    """User id → display name, from what the ticket payload says about its people.

    ``include=requester`` gives the requester's name; the legacy (v1-style) listings carry
    ``requester_name`` and ``responder_name`` beside the ids. Agents' names are otherwise only
    in ``/api/v2/agents``, which this adapter does not read.
    """
    names: dict[str, str] = {}
    requester = ticket.get("requester")
    requester_name = (
        _text_or_none(requester.get("name")) if isinstance(requester, dict) else None
    ) or _text_or_none(ticket.get("requester_name"))
    if requester_name and ticket.get("requester_id") is not None:
        names[str(ticket["requester_id"])] = requester_name
    responder_name = _text_or_none(ticket.get("responder_name"))
    if responder_name and ticket.get("responder_id") is not None:
        names[str(ticket["responder_id"])] = responder_name
    return names


def conversation_part(
    conversation: dict[str, Any], names: dict[str, str] | None = None
) -> DocumentPart | None:
    """One conversation entry: a reply, or a note (``private`` notes are internal)."""
    private = bool(conversation.get("private"))
    # `incoming` marks entries that came from outside the helpdesk (the customer's emails and
    # portal replies); everything else was written by an agent.
    role: AuthorRole = "customer" if conversation.get("incoming") else "agent"
    label: PartLabel = "note" if private or conversation.get("source") == 2 else "reply"
    part = _body_part(
        conversation.get("body"),
        conversation.get("body_text"),
        label=label,
        role=role,
        internal=private,
        at=conversation.get("created_at"),
    )
    if part is None:
        return None
    user_id = conversation.get("user_id")
    author_id = str(user_id) if user_id is not None else None
    return part.model_copy(
        update={
            "author_id": author_id,
            # from_email is the sender's address on email-born entries (the customer's on
            # incoming mail, the support mailbox on agent replies); notes have none.
            "author_email": _text_or_none(conversation.get("from_email")),
            "author_name": (names or {}).get(author_id or ""),
        }
    )


def attachment_refs(
    ticket: dict[str, Any], conversations: list[dict[str, Any]], names: dict[str, str]
) -> list[AttachmentRef]:
    """The files of a ticket (its description's) and of each conversation entry.

    Freshdesk lists ``attachments`` as ``{id, name, content_type, size, attachment_url}``;
    ``attachment_url`` is a signed, expiring link to the file store (not the helpdesk host),
    fetched without the API key.
    """
    refs: list[AttachmentRef] = []

    def add(items: Any, *, internal: bool, role: AuthorRole, author_id: Any) -> None:
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or not _text_or_none(item.get("name")):
                continue
            size = item.get("size")
            refs.append(
                AttachmentRef(
                    id=str(item["id"]) if item.get("id") is not None else None,
                    name=str(item["name"]).strip(),
                    url=_text_or_none(item.get("attachment_url")),
                    size=size if isinstance(size, int) else None,
                    content_type=_text_or_none(item.get("content_type")),
                    internal=internal,
                    author_role=role,
                    author_name=names.get(str(author_id)) if author_id is not None else None,
                )
            )

    add(
        ticket.get("attachments"),
        internal=False,
        role="customer",
        author_id=ticket.get("requester_id"),
    )
    for conversation in sorted(conversations, key=lambda c: (str(c.get("created_at")), c["id"])):
        add(
            conversation.get("attachments"),
            internal=bool(conversation.get("private")),
            role="customer" if conversation.get("incoming") else "agent",
            author_id=conversation.get("user_id"),
        )
    return refs


def ticket_document(
    ticket: dict[str, Any],
    conversations: list[dict[str, Any]],
    *,
    domain: str,
    attachments: AttachmentResults | None = None,
) -> SourceDocument:
    ticket_id = ticket["id"]
    subject = str(ticket.get("subject") or "").strip()
    names = people_names(ticket)
    requester = ticket.get("requester")
    requester_email = requester.get("email") if isinstance(requester, dict) else None
    requester_id = ticket.get("requester_id")
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
        parts.append(
            description.model_copy(
                update={
                    "author_id": str(requester_id) if requester_id is not None else None,
                    "author_email": _text_or_none(requester_email),
                    "author_name": names.get(str(requester_id)),
                }
            )
        )
    for conversation in sorted(conversations, key=lambda c: (str(c.get("created_at")), c["id"])):
        part = conversation_part(conversation, names)
        if part is not None:
            parts.append(part)
    if attachments is not None:
        parts.extend(attachments.parts)

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
            # Legacy (v1-style) listings call it ticket_type.
            "type": ticket.get("type") or ticket.get("ticket_type"),
            "group_id": ticket.get("group_id"),
            "responder_id": ticket.get("responder_id"),
            "responder_name": names.get(str(ticket.get("responder_id"))),
            "company_id": ticket.get("company_id"),
            "requester_id": requester_id,
            "requester_name": names.get(str(requester_id)),
            "product_id": ticket.get("product_id"),
            # Service-level dates and flags: what an agent filters on ("overdue", "escalated").
            "due_by": _time_text(ticket.get("due_by")),
            "fr_due_by": _time_text(ticket.get("fr_due_by") or ticket.get("frDueBy")),
            "nr_due_by": _time_text(ticket.get("nr_due_by")),
            "is_escalated": _flag(ticket.get("is_escalated", ticket.get("isescalated"))),
            "fr_escalated": _flag(ticket.get("fr_escalated")),
            "nr_escalated": _flag(ticket.get("nr_escalated")),
            "custom_fields": ticket.get("custom_fields") or {},
            "attachments": attachments.records if attachments is not None else [],
        },
        raw={"ticket": ticket, "conversations": conversations},
    )


def _time_text(value: Any) -> str | None:
    """An ISO 8601 UTC time as text (metadata is JSON), or None."""
    parsed = parse_time(value)
    return parsed.isoformat() if parsed is not None else None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def ticket_deletion(ticket: dict[str, Any], reason: str) -> Deletion:
    return Deletion(source=SOURCE, external_id=ticket_external_id(ticket["id"]), reason=reason)


def article_document(
    article: dict[str, Any],
    *,
    domain: str,
    folder_name: str | None,
    category_name: str | None,
    language: str | None = None,
    primary_language: str | None = None,
    attachments: AttachmentResults | None = None,
) -> SourceDocument:
    """A solution article, or (``language`` given) its translation into ``language``.

    Freshdesk keeps one id for an article and all its translations; a translation becomes its
    own document (``article:{id}:{language}``) linked to the source by
    ``metadata["translation_of"]``. The language is the platform's: the article's own
    ``language`` field where the payload has one, else the language the translation was
    requested in, else the account's primary language (Freshdesk's default endpoints serve
    the primary language). Detection is never used for these.
    """
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
    if attachments is not None:
        parts.extend(attachments.parts)
    status = article.get("status")
    own_language = _text_or_none(article.get("language"))
    article_language = own_language or language or primary_language
    is_translation = language is not None and language != primary_language
    source_id = article_external_id(article_id)
    path = f"/{article_language}" if is_translation and article_language else ""
    return SourceDocument(
        source=SOURCE,
        external_id=f"{source_id}:{language}" if is_translation else source_id,
        kind=DocumentKind.ARTICLE,
        title=title,
        parts=parts,
        url=f"https://{domain}{path}/support/solutions/articles/{article_id}",
        status=ARTICLE_STATUSES.get(status) if isinstance(status, int) else None,
        language=article_language.lower() if article_language else None,
        tags=[str(tag) for tag in article.get("tags") or []],
        created_at=parse_time(article.get("created_at")),
        updated_at=parse_time(article.get("updated_at")),
        metadata={
            "category_id": article.get("category_id"),
            "category": category_name,
            "folder_id": article.get("folder_id"),
            "folder": folder_name,
            "agent_id": article.get("agent_id"),
            "translation_of": source_id if is_translation else None,
            "attachments": attachments.records if attachments is not None else [],
        },
        raw=article,
    )


def article_attachment_refs(article: dict[str, Any]) -> list[AttachmentRef]:
    """Files attached to a solution article (same shape as ticket attachments)."""
    refs = attachment_refs({"attachments": article.get("attachments")}, [], {})
    return [ref.model_copy(update={"author_role": None}) for ref in refs]
