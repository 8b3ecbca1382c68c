"""ServiceNow Table API records → normalized documents.

Records are read with ``sysparm_display_value=false``: choice fields arrive as their stored
codes (incident ``state`` 1-8) and date-times in the internal UTC format
``YYYY-MM-DD HH:MM:SS``; display values would follow the API user's time zone and language.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from backend.adapters.attachments import AttachmentRef, AttachmentResults
from backend.adapters.base import (
    AuthorRole,
    Deletion,
    DocumentKind,
    DocumentPart,
    SourceDocument,
)

SOURCE = "servicenow"

# Incident.state choices of the base system.
INCIDENT_STATES: dict[str, str] = {
    "1": "open",  # New
    "2": "open",  # In Progress
    "3": "pending",  # On Hold
    "6": "resolved",
    "7": "closed",
    "8": "closed",  # Canceled
}
INCIDENT_PRIORITIES: dict[str, str] = {
    "1": "critical",
    "2": "high",
    "3": "moderate",
    "4": "low",
    "5": "planning",
}
# kb_knowledge.workflow_state values that are live on the portal.
PUBLISHED_KB_STATES = frozenset({"published", "pending_retirement"})

INCIDENT_FIELDS = (
    "sys_id",
    "number",
    "short_description",
    "description",
    "state",
    "priority",
    "urgency",
    "impact",
    "category",
    "subcategory",
    "close_code",
    "close_notes",
    "caller_id",
    # Dot-walked reference fields: the caller's email and user name come with the record
    # instead of costing one sys_user request per incident.
    "caller_id.email",
    "caller_id.user_name",
    "caller_id.name",
    "assigned_to",
    "assigned_to.name",
    "assigned_to.user_name",
    "assignment_group",
    "contact_type",
    # Service-level facts agents filter on: the due date and the escalation level.
    "due_date",
    "escalation",
    "made_sla",
    "opened_at",
    "resolved_at",
    "sys_created_on",
    "sys_updated_on",
    # The incident's version counter, so that it is part of the listing digest: a comment or
    # work note is written through the incident's journal fields, which is an update of the
    # incident (sys_mod_count + 1) even when sys_updated_on (one-second resolution) stays the
    # same. Without it, a journal entry added within the second the incident was last read
    # would leave the listed row unchanged and be missed. (An entry inserted straight into
    # sys_journal_field by a script does not touch the incident at all: no incident listing
    # can see it, whatever the second.)
    "sys_mod_count",
)
KB_FIELDS = (
    "sys_id",
    "number",
    "short_description",
    "text",
    "workflow_state",
    "kb_category",
    "kb_knowledge_base",
    "language",
    "article_type",
    "meta",
    "sys_created_on",
    "sys_updated_on",
)
ATTACHMENT_FIELDS = (
    "sys_id",
    "file_name",
    "content_type",
    "size_bytes",
    "table_name",
    "table_sys_id",
    "sys_created_by",
    "sys_created_on",
)
# incident.escalation choices of the base system.
ESCALATIONS: dict[str, str] = {"0": "normal", "1": "moderate", "2": "high", "3": "overdue"}
JOURNAL_FIELDS = (
    "sys_id",
    "element",
    "element_id",
    "name",
    "value",
    "sys_created_on",
    "sys_created_by",
)

SERVICENOW_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, SERVICENOW_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(SERVICENOW_TIME_FORMAT)


def incident_external_id(sys_id: str) -> str:
    return f"incident:{sys_id}"


def article_external_id(sys_id: str) -> str:
    return f"article:{sys_id}"


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def attachment_refs(records: list[dict[str, Any]], *, instance: str) -> list[AttachmentRef]:
    """``sys_attachment`` rows → files read from ``/api/now/attachment/{sys_id}/file``.

    sys_attachment does not say whether a file came with a comment or a work note; files on
    the record are shown to the caller in the portal, so they count as customer-visible.
    """
    refs: list[AttachmentRef] = []
    for record in sorted(
        records, key=lambda r: (str(r.get("sys_created_on")), str(r.get("sys_id")))
    ):
        name = _text(record.get("file_name"))
        sys_id = _text(record.get("sys_id"))
        if not name or not sys_id:
            continue
        size = _text(record.get("size_bytes"))
        refs.append(
            AttachmentRef(
                id=sys_id,
                name=name,
                url=f"https://{instance}/api/now/attachment/{sys_id}/file",
                size=int(size) if size.isdigit() else None,
                content_type=_text(record.get("content_type")) or None,
                author_name=_text(record.get("sys_created_by")) or None,
            )
        )
    return refs


def journal_part(
    entry: dict[str, Any], caller_user_name: str | None, names: dict[str, str] | None = None
) -> DocumentPart | None:
    """A journal entry: ``comments`` are customer-visible, ``work_notes`` are internal."""
    text = _text(entry.get("value"))
    if not text:
        return None
    author = entry.get("sys_created_by")
    internal = entry.get("element") == "work_notes"
    role: AuthorRole = "customer" if caller_user_name and author == caller_user_name else "agent"
    return DocumentPart(
        text=text,
        format="text",
        label="note" if internal else "reply",
        author_role="agent" if internal else role,
        internal=internal,
        created_at=parse_time(entry.get("sys_created_on")),
        # sys_created_by is the author's user_name; the display name is known for the caller
        # and the assignee (dot-walked on the incident).
        author_id=_text(author) or None,
        author_name=(names or {}).get(_text(author)),
    )


def incident_document(
    record: dict[str, Any],
    journal: list[dict[str, Any]],
    *,
    instance: str,
    attachments: AttachmentResults | None = None,
) -> SourceDocument:
    sys_id = str(record["sys_id"])
    number = _text(record.get("number"))
    subject = _text(record.get("short_description"))
    caller_user_name = _text(record.get("caller_id.user_name")) or None
    caller_name = _text(record.get("caller_id.name")) or None
    assignee_name = _text(record.get("assigned_to.name")) or None
    names = {
        user: name
        for user, name in (
            (caller_user_name, caller_name),
            (_text(record.get("assigned_to.user_name")), assignee_name),
        )
        if user and name
    }
    parts: list[DocumentPart] = []
    if subject:
        parts.append(DocumentPart(text=subject, label="subject", author_role="customer"))
    description = _text(record.get("description"))
    if description:
        parts.append(
            DocumentPart(
                text=description,
                label="description",
                author_role="customer",
                created_at=parse_time(record.get("opened_at") or record.get("sys_created_on")),
                author_id=caller_user_name,
                author_name=caller_name,
                author_email=_text(record.get("caller_id.email")) or None,
            )
        )
    ordered = sorted(journal, key=lambda e: (str(e.get("sys_created_on")), str(e.get("sys_id"))))
    for entry in ordered:
        part = journal_part(entry, caller_user_name, names)
        if part is not None:
            parts.append(part)
    close_notes = _text(record.get("close_notes"))
    if close_notes:
        parts.append(
            DocumentPart(
                text=close_notes,
                label="resolution",
                author_role="agent",
                created_at=parse_time(record.get("resolved_at")),
            )
        )
    if attachments is not None:
        parts.extend(attachments.parts)
    state = str(record.get("state") or "")
    priority = str(record.get("priority") or "")
    escalation = _text(record.get("escalation"))
    return SourceDocument(
        source=SOURCE,
        external_id=incident_external_id(sys_id),
        kind=DocumentKind.TICKET,
        title=subject or number or sys_id,
        parts=parts,
        url=f"https://{instance}/nav_to.do?uri=incident.do%3Fsys_id%3D{sys_id}",
        status=INCIDENT_STATES.get(state, "open" if state else None),
        requester=_text(record.get("caller_id.email")) or caller_user_name,
        created_at=parse_time(record.get("sys_created_on")),
        updated_at=parse_time(record.get("sys_updated_on")),
        metadata={
            "number": number,
            "state_code": state or None,
            "priority": INCIDENT_PRIORITIES.get(priority, priority or None),
            "urgency": record.get("urgency"),
            "impact": record.get("impact"),
            "category": record.get("category"),
            "subcategory": record.get("subcategory"),
            "close_code": record.get("close_code"),
            "assignment_group": record.get("assignment_group"),
            "caller_name": caller_name,
            "assigned_to": _text(record.get("assigned_to")) or None,
            "assignee_name": assignee_name,
            "channel": _text(record.get("contact_type")) or None,
            "due_date": _iso(record.get("due_date")),
            "escalation": ESCALATIONS.get(escalation, escalation or None),
            "made_sla": _boolean(record.get("made_sla")),
            "attachments": attachments.records if attachments is not None else [],
        },
        raw={"incident": record, "journal": journal},
    )


def _iso(value: Any) -> str | None:
    parsed = parse_time(value)
    return parsed.isoformat() if parsed is not None else None


def _boolean(value: Any) -> bool | None:
    # Stored booleans arrive as the strings "true"/"false" with sysparm_display_value=false.
    return {"true": True, "false": False}.get(_text(value).lower())


def article_document(
    record: dict[str, Any], *, instance: str, attachments: AttachmentResults | None = None
) -> SourceDocument:
    sys_id = str(record["sys_id"])
    number = _text(record.get("number"))
    title = _text(record.get("short_description")) or number or sys_id
    parts = [DocumentPart(text=title, label="subject")]
    body = _text(record.get("text"))
    if body:
        parts.append(DocumentPart(text=body, format="html", label="section"))
    if attachments is not None:
        parts.extend(attachments.parts)
    keywords = _text(record.get("meta"))
    return SourceDocument(
        source=SOURCE,
        external_id=article_external_id(sys_id),
        kind=DocumentKind.ARTICLE,
        title=title,
        parts=parts,
        url=f"https://{instance}/kb_view.do?sysparm_article={number}" if number else None,
        status="published",
        language=_text(record.get("language")) or None,
        tags=[word.strip() for word in keywords.split(",") if word.strip()],
        created_at=parse_time(record.get("sys_created_on")),
        updated_at=parse_time(record.get("sys_updated_on")),
        metadata={
            "number": number,
            "kb_category": record.get("kb_category"),
            "kb_knowledge_base": record.get("kb_knowledge_base"),
            "article_type": record.get("article_type"),
            "attachments": attachments.records if attachments is not None else [],
        },
        raw=record,
    )


def article_deletion(record: dict[str, Any]) -> Deletion:
    """A retired, outdated or unpublished article leaves the index."""
    state = _text(record.get("workflow_state")) or "unpublished"
    return Deletion(
        source=SOURCE, external_id=article_external_id(str(record["sys_id"])), reason=state
    )
