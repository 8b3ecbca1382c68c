"""Each platform's webhook: how a request proves it came from the platform, and which items
it says changed.

Nothing in a pushed body is indexed: a webhook only names items (``ticket:123``,
``article:45``), which are then re-read through the connector's adapter (see
:mod:`backend.webhooks.service`). So a body is parsed only for those names and for an event
id (replays), and is refused when it is not the documented shape.

Schemes, per platform's documentation:

- **Zendesk** — https://developer.zendesk.com/documentation/webhooks/verifying/ :
  ``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(signing secret,
  ``X-Zendesk-Webhook-Signature-Timestamp`` + raw body)). The signing secret is Zendesk's
  (``GET /api/v2/webhooks/{id}/signing_secret``); the admin gives it to us once. The signed
  timestamp must lie within the replay window. Bodies: event-subscription webhooks
  (``{"id", "type": "zen:event-type:ticket.…", "subject": "zen:ticket:123", "detail": {"id"}}``),
  Help Center article events
  (https://developer.zendesk.com/api-reference/webhooks/event-types/article-events/:
  ``{"id", "type": "zen:event-type:article.published|unpublished|…", "subject":
  "zen:article:<id>", "detail": {"id", "brand_id"}}``; only ``published`` and ``unpublished``
  change what is indexed, the others are accepted and name nothing), or a trigger webhook
  whose JSON body carries ``"ticket_id": "{{ticket.id}}"``.
- **Freshdesk** — automation-rule "Trigger webhook" action
  (https://support.freshdesk.com/support/solutions/articles/132589-using-webhooks-in-automation-rules):
  no signature of its own. The admin puts our secret in a custom header
  ``X-Helpdesk-Webhook-Secret`` (or as the password of the rule's basic authentication) and
  the body ``{"ticket_id": "{{ticket.id}}"}``. Automation rules act on tickets only: there is
  no article webhook, so solution articles change at the next scheduled sync.
- **ServiceNow** — outbound REST (``sn_ws.RESTMessageV2``) from an after business rule on
  ``incident`` or ``kb_knowledge`` (https://docs.servicenow.com/ outbound REST web service):
  ``Authorization: Bearer <secret>`` (or basic authentication with the secret as password),
  body ``{"table": "incident" | "kb_knowledge", "sys_id": …, "sys_mod_count": …}``.
- **Google Business Profile** — notifications go to a Pub/Sub topic
  (https://developers.google.com/my-business/reference/notifications/rest/v1/NotificationSetting);
  a push subscription posts ``{"message": {"data": base64(json), "messageId", "publishTime"},
  "subscription"}`` (https://cloud.google.com/pubsub/docs/push). Here we check the shared
  token in the push endpoint's query (``?token=<secret>``): it binds the request to this
  connector. A connector that names its push subscription's service account and audience
  (``push_service_account``, ``push_audience``) also needs the push's OIDC token
  (``Authorization: Bearer <JWT>``, Google-signed;
  https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions), checked by
  :mod:`backend.webhooks.google_push` against Google's keys fetched through the egress policy.
- **Trustpilot** — service review webhooks (Business app → Integrations → Webhooks;
  https://support.trustpilot.com/hc/en-us/articles/115015822068) post ``{"events":
  [{"eventName": "service-review-created|updated|deleted", "eventData": {"id", …}}]}`` to a
  subscription URL. Trustpilot documents no signature, so the secret travels in that URL:
  basic authentication (``https://trustpilot:<secret>@host/...``) or ``?token=<secret>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from backend.adapters.servicenow import documents as servicenow_documents
from backend.adapters.zendesk import documents as zendesk_documents
from backend.errors import AppError, Unauthorized

SECRET_HEADER = "x-helpdesk-webhook-secret"  # noqa: S105 - a header name, not a secret
ZENDESK_SIGNATURE = "x-zendesk-webhook-signature"
ZENDESK_TIMESTAMP = "x-zendesk-webhook-signature-timestamp"

WEBHOOK_PLATFORMS = frozenset(
    {"zendesk", "freshdesk", "servicenow", "google_business", "trustpilot"}
)

_DIGITS = re.compile(r"^[0-9]{1,20}$")
_SYS_ID = re.compile(r"^[0-9a-f]{32}$")
_REVIEW_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
_GOOGLE_REVIEW = re.compile(
    r"^accounts/[A-Za-z0-9_-]{1,64}/locations/[A-Za-z0-9_-]{1,64}/reviews/[A-Za-z0-9_-]{1,256}$"
)
_ZENDESK_ARTICLE_EVENT = "zen:event-type:article."
# The article events after which what the sync would index may differ: the article went
# live, or left the help center. Votes, comments, subscriptions and author changes leave the
# indexed article as it was.
_ZENDESK_ARTICLE_CHANGES = frozenset(
    {"zen:event-type:article.published", "zen:event-type:article.unpublished"}
)
_MAX_ITEMS = 100
"""Items one request may name (Trustpilot batches events); more is refused, not truncated."""


@dataclass(frozen=True)
class InboundWebhook:
    """The parts of a request a platform's scheme may use."""

    headers: Mapping[str, str]
    """Case-insensitive (Starlette's ``Headers``), or lower-case keys."""
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class ChangedItem:
    item_ref: str
    """What the adapter's ``fetch_item`` re-reads (``ticket:123``, a Google review name)."""
    event_id: str | None
    """The platform's id of this event, for idempotency; ``None`` where it sends none."""


def bad_signature() -> Unauthorized:
    # One answer for every way of failing, so a caller learns nothing about which part was wrong.
    return Unauthorized(
        "the webhook signature or secret is not valid", code="invalid_webhook_signature"
    )


def bad_payload(detail: str) -> AppError:
    return AppError(detail, code="invalid_webhook_payload", status_code=400)


def _matches(presented: str | None, secrets: Sequence[str]) -> bool:
    if not presented:
        return False
    candidate = presented.encode()
    # Compare with every valid secret (current and, during a rotation, the previous one).
    return any(hmac.compare_digest(candidate, secret.encode()) for secret in secrets)


def _basic_password(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


def _bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise bad_payload("the body is not JSON") from None


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def verify_and_parse(
    platform: str,
    request: InboundWebhook,
    secrets: Sequence[str],
    *,
    now: datetime,
    replay_window: timedelta,
) -> list[ChangedItem]:
    """Check the request against ``secrets`` (401 ``invalid_webhook_signature``), then name
    the items it says changed (400 ``invalid_webhook_payload`` for another shape)."""
    match platform:
        case "zendesk":
            return _zendesk(request, secrets, now=now, replay_window=replay_window)
        case "freshdesk":
            presented = request.headers.get(SECRET_HEADER) or _basic_password(request.headers)
            if not _matches(presented, secrets):
                raise bad_signature()
            return _freshdesk(_json(request.body))
        case "servicenow":
            presented = _bearer(request.headers) or _basic_password(request.headers)
            if not _matches(presented, secrets):
                raise bad_signature()
            return _servicenow(_json(request.body))
        case "google_business":
            if not _matches(request.query.get("token"), secrets):
                raise bad_signature()
            return _google(_json(request.body))
        case "trustpilot":
            presented = _basic_password(request.headers) or request.query.get("token")
            if not _matches(presented, secrets):
                raise bad_signature()
            return _trustpilot(_json(request.body))
    raise AppError(
        f"{platform} connectors take no webhooks", code="webhooks_unsupported", status_code=404
    )


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    """base64(HMAC-SHA256(secret, timestamp + body)), Zendesk's documented signature."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _zendesk(
    request: InboundWebhook, secrets: Sequence[str], *, now: datetime, replay_window: timedelta
) -> list[ChangedItem]:
    signature = request.headers.get(ZENDESK_SIGNATURE) or ""
    timestamp = request.headers.get(ZENDESK_TIMESTAMP) or ""
    if not signature or not timestamp:
        raise bad_signature()
    if not any(
        hmac.compare_digest(
            signature.encode(), zendesk_signature(s, timestamp, request.body).encode()
        )
        for s in secrets
    ):
        raise bad_signature()
    signed_at = _parse_time(timestamp)
    if signed_at is None or abs(now - signed_at) > replay_window:
        # A captured request replayed later: its signed timestamp gives it away.
        raise Unauthorized(
            "the webhook timestamp is outside the accepted window", code="stale_webhook"
        )
    body = _json(request.body)
    if not isinstance(body, dict):
        raise bad_payload("expected a JSON object")
    if str(body.get("type", "")).startswith(_ZENDESK_ARTICLE_EVENT):
        return _zendesk_article(body)
    subject = body.get("subject")
    detail = body.get("detail")
    if isinstance(subject, str) and subject.startswith("zen:ticket:"):
        ticket_id = subject.removeprefix("zen:ticket:")
    elif (
        isinstance(detail, dict)
        and "id" in detail
        and str(body.get("type", "")).startswith("zen:event-type:ticket.")
    ):
        ticket_id = str(detail["id"])
    else:
        ticket_id = str(body.get("ticket_id", ""))
    if not _DIGITS.match(ticket_id):
        raise bad_payload("no ticket id (subject zen:ticket:<id> or ticket_id)")
    event_id = body.get("id")
    # A trigger webhook has no event id: the signature (over timestamp + body) tells a
    # retry of one delivery from a new one.
    return [
        ChangedItem(
            f"ticket:{ticket_id}", str(event_id) if isinstance(event_id, str) else signature
        )
    ]


def _zendesk_article(body: dict[str, Any]) -> list[ChangedItem]:
    """A Help Center article event: ``subject`` ``zen:article:<id>``, ``detail.id`` the same
    id as text, ``id`` the event's id."""
    subject = body.get("subject")
    detail = body.get("detail")
    if isinstance(subject, str) and subject.startswith("zen:article:"):
        article_id = subject.removeprefix("zen:article:")
    elif isinstance(detail, dict):
        article_id = str(detail.get("id", ""))
    else:
        article_id = ""
    event_id = body.get("id")
    if not _DIGITS.match(article_id) or not isinstance(event_id, str) or not event_id:
        raise bad_payload("an article event needs an id and subject zen:article:<id>")
    if body["type"] not in _ZENDESK_ARTICLE_CHANGES:
        return []  # accepted (an admin may subscribe to every article event), nothing to fetch
    return [ChangedItem(zendesk_documents.article_external_id(article_id), event_id)]


def _freshdesk(body: Any) -> list[ChangedItem]:
    ticket_id = str(body.get("ticket_id", "")) if isinstance(body, dict) else ""
    if not _DIGITS.match(ticket_id):
        raise bad_payload('expected {"ticket_id": "{{ticket.id}}"}')
    # Freshdesk sends no event id: every delivery counts (a retry costs one coalesced fetch).
    return [ChangedItem(f"ticket:{ticket_id}", None)]


_SERVICENOW_TABLES = {
    "incident": servicenow_documents.incident_external_id,
    "kb_knowledge": servicenow_documents.article_external_id,
}


def _servicenow(body: Any) -> list[ChangedItem]:
    # A body without "table" is taken for an incident, as before kb_knowledge was accepted.
    table = body.get("table", "incident") if isinstance(body, dict) else None
    external_id = _SERVICENOW_TABLES.get(table) if isinstance(table, str) else None
    if external_id is None:
        raise bad_payload(
            'expected {"table": "incident" or "kb_knowledge", "sys_id": …, "sys_mod_count": …}'
        )
    sys_id = str(body.get("sys_id", ""))
    if not _SYS_ID.match(sys_id):
        raise bad_payload("sys_id must be a 32-character ServiceNow sys_id")
    mod_count = body.get("sys_mod_count")
    # sys_mod_count grows with every update of the record: (sys_id, count) names one change
    # (sys_ids are unique across tables, so incidents' and articles' ids never collide).
    event_id = f"{sys_id}:{mod_count}" if _DIGITS.match(str(mod_count)) else None
    return [ChangedItem(external_id(sys_id), event_id)]


def _google(body: Any) -> list[ChangedItem]:
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("data"), str):
        raise bad_payload("expected a Pub/Sub push message")
    try:
        notification = json.loads(base64.b64decode(message["data"], validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad_payload("message.data is not base64-encoded JSON") from None
    if not isinstance(notification, dict):
        raise bad_payload("message.data is not a notification")
    review = next(
        (
            notification[key]
            for key in ("review", "reviewName", "review_name")
            if isinstance(notification.get(key), str)
        ),
        None,
    )
    if review is None:
        # Other notification types (GOOGLE_UPDATE, questions, ...) name no review: accepted,
        # nothing to fetch.
        return []
    if not _GOOGLE_REVIEW.match(review):
        raise bad_payload("not a review resource name")
    message_id = message.get("messageId") or message.get("message_id")
    return [ChangedItem(review, str(message_id) if message_id else None)]


def _trustpilot(body: Any) -> list[ChangedItem]:
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list) or len(events) > _MAX_ITEMS:
        raise bad_payload(f'expected {{"events": [...]}} with at most {_MAX_ITEMS} events')
    items: list[ChangedItem] = []
    for event in events:
        data = event.get("eventData") if isinstance(event, dict) else None
        review_id = str(data.get("id", "")) if isinstance(data, dict) else ""
        if not isinstance(data, dict) or not _REVIEW_ID.match(review_id):
            raise bad_payload("an event without a review id")
        name = str(event.get("eventName", ""))
        if not name.startswith("service-review-"):
            continue  # product reviews and other events are not indexed
        # Trustpilot sends no event id; the review's own timestamps tell its versions apart.
        stamp = data.get("updatedAt") or data.get("createdAt")
        event_id = f"{name}:{review_id}:{stamp}" if isinstance(stamp, str) else None
        items.append(ChangedItem(f"review:{review_id}", event_id))
    return items
