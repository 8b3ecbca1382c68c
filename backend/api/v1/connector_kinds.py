"""What the console (or an integrator) needs to connect a platform before saving anything:
each connector kind's settings as JSON Schema, and a credentials check (issue 16).

Registered before the connector routes, so ``/v1/connectors/kinds`` is not read as a
connector id.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from backend.adapters.registry import (
    ADAPTERS,
    build_adapter,
    connector_base_urls,
    validate_connector,
)
from backend.api.dependencies import KeyTenant, StateDep, require_api_key
from backend.api.schemas import ERROR_RESPONSES
from backend.egress import EgressRefused
from backend.errors import AppError, BadRequest
from backend.ingest.file_imports import FILE_PLATFORMS

router = APIRouter(
    prefix="/v1/connectors",
    tags=["connectors"],
    responses=ERROR_RESPONSES,
    dependencies=[Depends(require_api_key)],
)

TITLES: Final[dict[str, str]] = {
    "freshdesk": "Freshdesk",
    "servicenow": "ServiceNow",
    "zendesk": "Zendesk",
    "google_business": "Google Business Profile",
    "trustpilot": "Trustpilot",
    "review_export": "Review export (file)",
    "file_export": "Ticket export (file)",
    "article_folder": "Article folder (file)",
}
# A platform that neither answers nor fails within this long is reported as unreachable.
_TEST_TIMEOUT_S: Final = 20.0
_SETTINGS_MAX_KEYS: Final = 64


class ConnectorKindOut(BaseModel):
    kind: str = Field(description="The `platform` to create a connector with.")
    title: str
    settings_schema: dict[str, Any] = Field(
        description="JSON Schema of the whole form: settings and credentials together. Send "
        "the fields named in `secret_fields` as `credentials`, the rest as `settings`."
    )
    secret_fields: list[str] = Field(description="Encrypted at rest and never shown again.")
    operator_managed: bool = Field(
        description="Reads the server's disk: the operator sets it up (`helpdesk ingest`)."
    )


def _form_schema(settings: type[BaseModel], credentials: type[BaseModel]) -> dict[str, Any]:
    form = settings.model_json_schema()
    secret = credentials.model_json_schema()
    form["properties"] = {**form.get("properties", {}), **secret.get("properties", {})}
    required = list(form.get("required", [])) + list(secret.get("required", []))
    if required:
        form["required"] = required
    defs = {**form.get("$defs", {}), **secret.get("$defs", {})}
    if defs:
        form["$defs"] = defs
    form["title"] = f"{settings.__name__} + {credentials.__name__}"
    return form


def _kinds() -> list[ConnectorKindOut]:
    return [
        ConnectorKindOut(
            kind=spec.platform,
            title=TITLES.get(spec.platform, spec.platform),
            settings_schema=_form_schema(spec.settings_type, spec.credentials_type),
            secret_fields=list(spec.credentials_type.model_fields),
            operator_managed=spec.platform in FILE_PLATFORMS,
        )
        for spec in ADAPTERS.values()
    ]


class ConnectionTestIn(BaseModel):
    kind: str = Field(max_length=64, examples=["freshdesk"])
    settings: Annotated[dict[str, Any], Field(max_length=_SETTINGS_MAX_KEYS)] = Field(
        examples=[{"domain": "acme.freshdesk.com", "api_key": "…"}],
        description="The form's values; secret fields may be here or in `credentials`.",
    )
    credentials: Annotated[dict[str, Any], Field(max_length=_SETTINGS_MAX_KEYS)] = Field(
        default_factory=dict
    )


class ConnectionTestOut(BaseModel):
    ok: bool
    detail: str = Field(description="What was checked, or why it failed (never a secret).")


@router.get("/kinds", response_model=list[ConnectorKindOut])
async def list_connector_kinds(_tenant: KeyTenant) -> Any:
    """The platforms you can connect, each with the JSON Schema of its form (build the form
    from it) and which of its fields are secrets."""
    return _kinds()


@router.post("/test", response_model=ConnectionTestOut)
async def check_connection(body: ConnectionTestIn, _tenant: KeyTenant, state: StateDep) -> Any:
    """Check settings and credentials against the platform without saving anything: the
    settings are validated (400 with the failing fields), the egress policy must allow the
    platform's address (400 `egress_refused`), then one small read is made with the
    credentials. `ok: false` says why (wrong credentials, unreachable, ...)."""
    spec = ADAPTERS.get(body.kind)
    if spec is None or body.kind in FILE_PLATFORMS:
        testable = ", ".join(sorted(set(ADAPTERS) - FILE_PLATFORMS))
        raise BadRequest(
            f"cannot test {body.kind!r}; known: {testable}",
            code="unknown_platform",
        )
    secret_names = set(spec.credentials_type.model_fields)
    settings = {k: v for k, v in body.settings.items() if k not in secret_names}
    credentials = {
        **{k: v for k, v in body.settings.items() if k in secret_names},
        **body.credentials,
    }
    valid_settings, valid_credentials = validate_connector(body.kind, settings, credentials)
    egress = state.sync.egress
    try:
        scope = egress.policy.scope(body.kind, connector_base_urls(body.kind, valid_settings))
    except EgressRefused as exc:
        raise BadRequest(exc.reason, code="egress_refused") from None
    try:
        async with asyncio.timeout(_TEST_TIMEOUT_S), egress.client(scope) as client:
            adapter = build_adapter(body.kind, valid_settings, valid_credentials, client=client)
            # Starting "now" asks for (almost) nothing: the listing call proves the
            # credentials without reading the account's history.
            page = await adapter.fetch_page(adapter.initial_checkpoint(since=state.clock.now()))
    except TimeoutError:
        return ConnectionTestOut(ok=False, detail="the platform did not answer in time")
    except AppError:
        raise
    except Exception as exc:  # a transport failure: say what kind, never the body
        return ConnectionTestOut(
            ok=False, detail=f"could not reach the platform ({type(exc).__name__})"
        )
    failure = next((f for f in page.failures if page.blocked or f.status_code in (401, 403)), None)
    if failure is not None:
        status = f" (HTTP {failure.status_code})" if failure.status_code else ""
        return ConnectionTestOut(ok=False, detail=f"{failure.message}{status}")
    return ConnectionTestOut(ok=True, detail=f"connected to {TITLES.get(body.kind, body.kind)}")
