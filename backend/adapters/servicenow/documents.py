"""ServiceNow Table API records → normalized documents.

Records are read with ``sysparm_display_value=false``: choice fields arrive as their stored
codes (incident ``state`` 1-8) and date-times in the internal UTC format
``YYYY-MM-DD HH:MM:SS``; display values would follow the API user's time zone and language.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
    "assignment_group",
    "opened_at",
    "resolved_at",
    "sys_created_on",
    "sys_updated_on",
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


def journal_part(entry: dict[str, Any], caller_user_name: str | None) -> DocumentPart | None:
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
    )


def incident_document(
    record: dict[str, Any], journal: list[dict[str, Any]], *, instance: str
) -> SourceDocument:
    sys_id = str(record["sys_id"])
    number = _text(record.get("number"))
    subject = _text(record.get("short_description"))
    caller_user_name = _text(record.get("caller_id.user_name")) or None
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
            )
        )
    ordered = sorted(journal, key=lambda e: (str(e.get("sys_created_on")), str(e.get("sys_id"))))
    for entry in ordered:
        part = journal_part(entry, caller_user_name)
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
    state = str(record.get("state") or "")
    priority = str(record.get("priority") or "")
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
        },
        raw={"incident": record, "journal": journal},
    )


def article_document(record: dict[str, Any], *, instance: str) -> SourceDocument:
    sys_id = str(record["sys_id"])
    number = _text(record.get("number"))
    title = _text(record.get("short_description")) or number or sys_id
    parts = [DocumentPart(text=title, label="subject")]
    body = _text(record.get("text"))
    if body:
        parts.append(DocumentPart(text=body, format="html", label="section"))
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
        },
        raw=record,
    )


def article_deletion(record: dict[str, Any]) -> Deletion:
    """A retired, outdated or unpublished article leaves the index."""
    state = _text(record.get("workflow_state")) or "unpublished"
    return Deletion(
        source=SOURCE, external_id=article_external_id(str(record["sys_id"])), reason=state
    )
