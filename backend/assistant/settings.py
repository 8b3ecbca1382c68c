"""Per-company assistant settings: reply tone, reply languages and PII redaction.

They live in the ``companies.settings`` JSON column::

    {"tone": {"greeting": "Hi {name},", "sign_off": "Cheers,", "style": "friendly",
              "signature": "The Acme team", "contact": "support@acme.example"},
     "languages": ["en", "ko"],
     "pii_redaction": true,
     "retrieval": {"dense_weight": 4.0, "tuned_by_run": "20261205T031500Z-1a2b3c"}}

Unknown keys are ignored (the column holds other features' settings too).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.db.repositories import companies as company_repo
from backend.db.session import Database
from backend.errors import BadRequest, NotFound
from backend.language import base_language


class ToneSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    greeting: str | None = None
    sign_off: str | None = None
    style: str | None = None
    """Free text for a model ("warm and concise"); ``friendly`` and ``concise`` also change
    the extractive composer's template."""
    signature: str | None = None
    contact: str | None = None
    """Where a reviewer or customer can reach support ("support@acme.example", a phone
    number): review replies without a model point there."""

    def as_mapping(self) -> dict[str, str]:
        """The non-empty fields, as :class:`~backend.llm.types.LLMRequest` ``tone`` wants."""
        return {
            key: value.strip()
            for key, value in self.model_dump().items()
            if isinstance(value, str) and value.strip()
        }


class RetrievalSettings(BaseModel):
    """Retrieval knobs tuned for one company from its evaluation set (``helpdesk eval
    tune``); ``tuned_by_run`` names the stored run that chose them."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    dense_weight: float | None = Field(default=None, gt=0, le=100)
    tuned_by_run: str | None = None


class AssistantSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    tone: ToneSettings = ToneSettings()
    languages: tuple[str, ...] | None = None
    """Languages replies are written in; ``None`` or empty: whatever the customer wrote."""
    pii_redaction: bool = False
    retrieval: RetrievalSettings = RetrievalSettings()

    def reply_language(self, detected: str) -> str:
        """``detected`` (a base language code) if the company replies in it, else the
        company's first language; ``detected`` when the company listed none."""
        listed = [code for code in (base_language(raw) for raw in self.languages or ()) if code]
        if not listed or detected in listed:
            return detected
        return listed[0]

    @classmethod
    def from_company_settings(cls, raw: Mapping[str, Any] | None) -> AssistantSettings:
        try:
            return cls.model_validate(dict(raw or {}))
        except ValidationError as exc:
            raise BadRequest(
                f"invalid assistant settings: {exc.errors(include_url=False)}",
                code="invalid_company_settings",
            ) from exc


CompanySettingsLoader: TypeAlias = Callable[[str], Awaitable[Mapping[str, Any]]]
"""``company_id`` → that company's raw settings mapping."""

CompanySettingsSource: TypeAlias = (
    CompanySettingsLoader | Mapping[str, Mapping[str, Any]] | AssistantSettings | None
)
"""A loader, a static ``{company_id: settings}`` mapping, one settings object for every
company, or ``None`` (defaults)."""


def company_settings_from_database(database: Database) -> CompanySettingsLoader:
    """A loader reading ``companies.settings`` through the tenant session (RLS applies)."""

    async def load(company_id: str) -> Mapping[str, Any]:
        # Assistant calls carry the request's company id as a plain ``str`` (the prompt
        # builders predate CompanyId); the tenant session checks it again.
        async with database.tenant_session(company_id) as session:
            company = await company_repo.get_company(session, company_id)
        if company is None:
            raise NotFound(f"company {company_id!r} does not exist", code="company_not_found")
        return company.settings or {}

    return load


async def resolve_settings(source: CompanySettingsSource, company_id: str) -> AssistantSettings:
    if source is None:
        return AssistantSettings()
    if isinstance(source, AssistantSettings):
        return source
    if isinstance(source, Mapping):
        return AssistantSettings.from_company_settings(source.get(company_id))
    return AssistantSettings.from_company_settings(await source(company_id))
