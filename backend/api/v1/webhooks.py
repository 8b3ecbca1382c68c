"""Webhooks in: platforms tell us an item changed; the connector's webhook secret."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request, Response, status
from pydantic import BaseModel, Field

from backend.api.dependencies import KeyTenant, SettingsDep, StateDep, require_api_key
from backend.api.schemas import ERROR_RESPONSES
from backend.errors import AppError, Unavailable
from backend.webhooks.platforms import InboundWebhook
from backend.webhooks.service import WebhookService

# No API key here: each platform proves itself with the connector's webhook secret.
inbound = APIRouter(prefix="/v1", tags=["webhooks"], responses=ERROR_RESPONSES)
# Managing the secret: API keys only, never a widget token.
manage = APIRouter(
    prefix="/v1",
    tags=["webhooks"],
    responses=ERROR_RESPONSES,
    dependencies=[Depends(require_api_key)],
)


class WebhookAccepted(BaseModel):
    items: int = Field(description="Items the delivery named.")
    duplicates: int = Field(description="Events already received (ignored).")
    queued: int = Field(description="Items queued for a re-fetch (joined if already queued).")


class WebhookSecretIn(BaseModel):
    signing_secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=256,
        description="Zendesk only: the webhook's signing secret as Zendesk shows it. Other "
        "platforms get a secret generated here.",
    )


class WebhookSecretOut(BaseModel):
    webhook_path: str = Field(description="Where the platform posts: this path on your API host.")
    secret: str | None = Field(
        description="The new secret, shown only now (null when you gave Zendesk's). The "
        "previous one stays valid for HELPDESK_WEBHOOK_ROTATION_GRACE_S seconds."
    )


def _service(state: StateDep) -> WebhookService:
    if state.webhooks is None:  # pragma: no cover - open_stack always sets it
        raise Unavailable("webhooks are not available", code="webhooks_unavailable")
    return state.webhooks


async def _bounded_body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise AppError(
                f"a webhook body may have at most {limit} bytes",
                code="payload_too_large",
                status_code=413,
            )
    return bytes(body)


@inbound.post(
    "/webhooks/{connector_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookAccepted,
)
async def receive_webhook(
    connector_id: Annotated[
        str, Path(max_length=64, description="The connector's id (the path you were given).")
    ],
    request: Request,
    state: StateDep,
    settings: SettingsDep,
) -> WebhookAccepted:
    """Receive a platform's "this item changed" notification for one connector.

    Accepted: Zendesk ticket events or trigger bodies and Help Center article events
    (`article.published`, `article.unpublished`), Freshdesk ticket automation rules (tickets
    only), ServiceNow business rules on `incident` and `kb_knowledge`, Google Business
    Profile and Trustpilot review events.
    Point the platform's webhook here (see the README, "Webhooks in", for each platform's
    setup): Zendesk signs with its signing secret, Freshdesk and ServiceNow send the
    connector's webhook secret in a header, Google Business Profile (Pub/Sub push) and
    Trustpilot in the URL. The named items are re-read from the platform through the
    connector (pushed content is never indexed) and are searchable by keyword within about
    a second, by meaning as soon as the embedding model has encoded them; deletions leave
    the index. Duplicate deliveries are ignored. A Google Business Profile
    connector with `push_service_account` and `push_audience` set also needs the push's
    Google-signed OIDC token (`Authorization: Bearer …`, Pub/Sub authenticated push).
    Errors: 401 `invalid_webhook_signature` (unknown connector, no secret set, wrong
    signature, or a missing or invalid push token), 401 `stale_webhook` (signed timestamp
    outside the replay window), 400 `invalid_webhook_payload`, 413 over the size limit, 503
    `webhook_verification_unavailable` (Google's signing keys cannot be fetched now; Pub/Sub
    retries the push).
    """
    body = await _bounded_body(request, settings.webhook_max_body_bytes)
    received = await _service(state).receive(
        connector_id,
        InboundWebhook(headers=request.headers, query=request.query_params, body=body),
    )
    return WebhookAccepted(
        items=received.items, duplicates=received.duplicates, queued=received.queued
    )


@manage.post(
    "/connectors/{connector_id}/webhook-secret",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookSecretOut,
)
async def set_webhook_secret(
    connector_id: uuid.UUID,
    tenant: KeyTenant,
    state: StateDep,
    payload: Annotated[WebhookSecretIn | None, Body()] = None,
) -> WebhookSecretOut:
    """Create or rotate the connector's webhook secret.

    The generated secret is returned once and stored encrypted; calling this again rotates
    it (the previous secret keeps working for a grace period). For Zendesk, pass the
    webhook's own `signing_secret` instead. 404 `connector_not_found`, 400
    `webhooks_unsupported` for connectors that take no webhooks (file imports).
    """
    secret = await _service(state).set_secret(
        tenant.company_id,
        connector_id,
        payload.signing_secret if payload else None,
        actor=tenant.actor,
    )
    return WebhookSecretOut(webhook_path=f"/v1/webhooks/{connector_id}", secret=secret)


@manage.delete(
    "/connectors/{connector_id}/webhook-secret",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def delete_webhook_secret(
    connector_id: uuid.UUID, tenant: KeyTenant, state: StateDep
) -> Response:
    """Stop accepting webhooks for this connector (its scheduled syncs continue)."""
    await _service(state).remove_secret(tenant.company_id, connector_id, actor=tenant.actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


__all__: list[Any] = ["inbound", "manage"]
