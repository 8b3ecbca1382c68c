"""Your company's assistant settings over /v1 (issue 16): read and change them, and preview
a draft with settings not saved yet. Owners and admins in the console, or an API key with
the ``admin`` scope.

The settings live in ``companies.settings`` beside other features' keys; only the keys
named here are read or written through these endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.api.dependencies import KeyTenant, PlansDep, StateDep, TenantSession, access_scope
from backend.api.schemas import ERROR_RESPONSES
from backend.assistant.settings import AssistantSettings
from backend.assistant.types import Citation, TicketContext, UsageReport
from backend.db.models import Company
from backend.db.repositories.audit_log import append_audit_entry
from backend.errors import BadRequest, NotFound
from backend.llm.company_choice import DEFAULT_ROUTE, MAX_CHAIN
from backend.llm.types import Task
from backend.tenancy import service as company_service
from backend.tenancy.scope import open_rows

router = APIRouter(prefix="/v1", tags=["company"], responses=ERROR_RESPONSES)

ShortText = Annotated[str, Field(max_length=500)]
_MAX_ORIGINS: Final = 50
_MAX_LANGUAGES: Final = 30


class ToneSettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    greeting: ShortText | None = Field(default=None, examples=["Hi {name},"])
    sign_off: ShortText | None = Field(default=None, examples=["Cheers,"])
    style: ShortText | None = Field(
        default=None,
        description="Free text for a model; `friendly` and `concise` also "
        "change the built-in composer's template.",
    )
    signature: ShortText | None = None
    contact: ShortText | None = Field(
        default=None, description="Where customers reach support (review replies)."
    )


ProviderName = Annotated[str, Field(min_length=1, max_length=100)]


class LlmSettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    route: ProviderName | None = Field(
        default=None,
        description="A model provider to try first for every task: one of those the "
        "operator configured (`openai`, `anthropic`, `local`, `extractive`), or `default` "
        "for the operator's routes. Unknown names are refused (400).",
    )
    tasks: dict[Task, Annotated[list[ProviderName], Field(max_length=MAX_CHAIN)]] | None = Field(
        default=None,
        description="Per task (`answer`, `draft_reply`, `review_reply`, `summarize`), the "
        "configured providers to try in order; the built-in extractive composer always "
        "answers last. Wins over `route` for that task.",
        examples=[{"review_reply": ["local"]}],
    )
    monthly_budget_usd: float | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Your monthly model spend limit. When the operator also set one, the "
        "lower applies. Near it (the operator's economy threshold) cheaper models answer; "
        "at it only the built-in extractive composer does (answers never fail for budget).",
    )


class CompanySettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tone: ToneSettingsBody | None = None
    languages: (
        Annotated[
            list[Annotated[str, Field(min_length=2, max_length=16)]],
            Field(max_length=_MAX_LANGUAGES),
        ]
        | None
    ) = Field(
        default=None,
        description="Languages the assistant replies in (BCP 47, e.g. en, ko): a customer "
        "writing in a listed language is answered in it, any other in the first listed. "
        "Unset: the customer's language, whatever it is.",
    )
    pii_redaction: bool | None = Field(
        default=None, description="Redact personal data before text leaves for a hosted model."
    )
    widget_origins: (
        Annotated[list[Annotated[str, Field(max_length=300)]], Field(max_length=_MAX_ORIGINS)]
        | None
    ) = Field(
        default=None, description="Web origins the widget may run on (https://support.acme.com)."
    )
    audiences: Annotated[list[Literal["agent", "customer"]], Field(max_length=2)] | None = Field(
        default=None, description="Who the widget serves."
    )
    llm: LlmSettingsBody | None = None

    @field_validator("widget_origins")
    @classmethod
    def _origins(cls, value: list[str] | None) -> list[str] | None:
        for origin in value or []:
            scheme, sep, rest = origin.partition("://")
            if scheme not in ("https", "http") or not sep or not rest or "/" in rest:
                raise ValueError(f"not an origin (scheme://host[:port]): {origin!r}")
        return value


SETTING_KEYS: Final = tuple(CompanySettingsBody.model_fields)


def _read(company: Company) -> dict[str, Any]:
    stored = company.settings or {}
    return {key: stored.get(key) for key in SETTING_KEYS if key in stored}


@router.get("/company/settings", response_model=CompanySettingsBody)
async def read_company_settings(tenant: KeyTenant, session: TenantSession) -> Any:
    """Your assistant settings: tone, languages, PII redaction, LLM route and monthly
    budget, widget origins and audiences (unset ones are null). Widget tokens cannot read
    them (an API key or a console session of an owner or admin can)."""
    company = await session.get(Company, tenant.company_id)
    if company is None:
        raise NotFound("company not found", code="company_not_found")
    return CompanySettingsBody.model_validate(_read(company))


@router.patch("/company/settings", response_model=CompanySettingsBody)
async def change_company_settings(
    body: CompanySettingsBody, tenant: KeyTenant, state: StateDep
) -> Any:
    """Change the settings you send (others keep their value; send null to clear one;
    within `llm`, the fields you send, and `"llm": null` clears all of them).
    Applies to the next draft (cached answers made with the old settings are dropped);
    LLM routes and budget at once on the server that took the change and within
    `HELPDESK_PLAN_CACHE_SECONDS` on the others, as do widget origins. LLM routes may
    name only providers the operator configured (400 `unknown_llm_provider`)."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    if body.llm is not None:
        _check_providers(body.llm, state.router.providers)
    async with state.for_tenant(tenant.company_id) as scope:
        session = scope.session
        company = await session.get(Company, tenant.company_id)
        if company is None:
            raise NotFound("company not found", code="company_not_found")
        merged = dict(company.settings or {})
        for key, value in changes.items():
            if value is None:
                merged.pop(key, None)
            elif key == "llm" and isinstance(merged.get("llm"), dict):
                # Field by field: a client that knows only `route` and the budget (the
                # console) keeps the per-task routes set through the API.
                llm = {**merged["llm"], **value}
                kept = {k: v for k, v in llm.items() if v is not None}
                if kept:
                    merged["llm"] = kept
                else:
                    merged.pop("llm")
            else:
                merged[key] = value
        # The merged settings must still be valid for the assistant (400 otherwise).
        AssistantSettings.from_company_settings(merged)
        company.settings = merged
        # Answers cached under the old tone or redaction are stale now (private caches key
        # on the generation; the shared cache's epoch is voided after the commit).
        await scope.knowledge_changed()
        await append_audit_entry(
            session,
            company_id=tenant.company_id,
            actor=tenant.actor,
            action="company.settings",
            target=tenant.company_id,
            details={"changed": sorted(changes)},
        )
        await session.flush()
        result = CompanySettingsBody.model_validate(_read(company))
    state.llm_choices.forget(tenant.company_id)
    return result


def _check_providers(llm: LlmSettingsBody, configured: Mapping[str, object]) -> None:
    """Companies choose among the operator's providers by name only (the egress rule: no
    company can make the server call an address it picked)."""
    named = {name for chain in (llm.tasks or {}).values() for name in chain}
    if llm.route is not None and llm.route != DEFAULT_ROUTE:
        named.add(llm.route)
    unknown = sorted(named - set(configured))
    if unknown:
        raise BadRequest(
            f"not a configured model provider: {unknown}; configured: {sorted(configured)}",
            code="unknown_llm_provider",
        )


class PreviewTicket(BaseModel):
    subject: Annotated[str, Field(max_length=500)] = ""
    description: Annotated[str, Field(max_length=20_000)] = ""


class PreviewIn(BaseModel):
    ticket: PreviewTicket
    settings: CompanySettingsBody = Field(
        default_factory=CompanySettingsBody,
        description="Unsaved settings to draft with, over your saved ones.",
    )


class PreviewOut(BaseModel):
    """The shape of `/v1/draft-reply`; nothing is cached or recorded (no interaction id)."""

    answer: str
    citations: list[Citation]
    context: list[Citation]
    interaction_id: None = None
    provider: str
    model: str
    cached: bool
    language: str
    flagged_passages: list[str]
    usage: UsageReport
    cost_usd: float


@router.post("/assistant/preview", response_model=PreviewOut, tags=["assistant"])
async def preview_draft(
    body: PreviewIn, tenant: KeyTenant, state: StateDep, plans: PlansDep
) -> PreviewOut:
    """Draft a reply to a sample ticket with settings you are editing, before saving them.
    Not cached and not recorded; it counts as an assistant call of your plan."""
    # Read in a short transaction of its own: none stays open during the model call.
    async with open_rows(state.database, tenant.company_id) as rows:
        company = await company_service.get_company(rows)
    overrides = body.settings.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    settings = AssistantSettings.from_company_settings({**(company.settings or {}), **overrides})
    await plans.hit_assistant_call(tenant.company_id)
    ticket = TicketContext(
        id="ticket:preview",
        source="console",
        subject=body.ticket.subject,
        description=body.ticket.description,
    )
    assistant = state.assistant.assistant
    prepared = await assistant.prepare_draft_reply(
        tenant.company_id, ticket, scope=access_scope(tenant), settings=settings
    )
    result = await assistant.run(prepared)
    return PreviewOut(
        answer=result.text,
        citations=result.citations,
        context=result.context,
        provider=result.provider,
        model=result.model,
        cached=False,
        language=result.language,
        flagged_passages=result.flagged_passages,
        usage=result.usage,
        cost_usd=result.cost_usd,
    )
