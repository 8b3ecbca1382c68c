"""The assistant: answers, ticket and review reply drafts, similar tickets, summaries.

Built on :mod:`backend.retrieval` (grounding) and :mod:`backend.llm` (generation); every
result carries its citations. See :mod:`backend.assistant.assistant` for the rules.
"""

from backend.assistant.assistant import Assistant
from backend.assistant.injection import injection_reason, looks_like_injection
from backend.assistant.redaction import RedactionReport, luhn_valid, redact_pii
from backend.assistant.settings import (
    AssistantSettings,
    CompanySettingsLoader,
    CompanySettingsSource,
    ToneSettings,
    company_settings_from_database,
)
from backend.assistant.types import (
    AssistantCompleted,
    AssistantResult,
    AssistantStreamEvent,
    Citation,
    Message,
    PreparedRequest,
    ReviewContext,
    TicketContext,
    UsageReport,
)

__all__ = [
    "Assistant",
    "AssistantCompleted",
    "AssistantResult",
    "AssistantSettings",
    "AssistantStreamEvent",
    "Citation",
    "CompanySettingsLoader",
    "CompanySettingsSource",
    "Message",
    "PreparedRequest",
    "RedactionReport",
    "ReviewContext",
    "TicketContext",
    "ToneSettings",
    "UsageReport",
    "company_settings_from_database",
    "injection_reason",
    "looks_like_injection",
    "luhn_valid",
    "redact_pii",
]
