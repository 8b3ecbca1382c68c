"""Every call replies make to another system, through the egress policy, with retries.

One request per call, sent by :func:`backend.adapters.http.request_with_retries` through an
egress-scoped client: ``429`` waits its ``Retry-After`` (up to a bound), ``408/425/5xx`` and
transport errors back off with jitter, any other ``4xx`` fails at once. The answer is kept as
a :class:`PlatformAnswer`: the status, when it came, and for a success an excerpt of the body
(the platform's record of the reply). A failure keeps the fixed text of its status only,
never the upstream body (the egress rule: upstream bodies are never echoed to a tenant).

The documented calls (each fake in ``tests/replies`` answers with these payloads):

- Google Business Profile ``accounts.locations.reviews.updateReply``:
  ``PUT https://mybusiness.googleapis.com/v4/{accounts/*/locations/*/reviews/*}/reply``
  with ``{"comment": text}``, OAuth bearer; answers the ``ReviewReply``
  (``{"comment", "updateTime"}``). A PUT replaces the reply: sending it twice posts once.
  https://developers.google.com/my-business/reference/rest/v4/accounts.locations.reviews/updateReply
- Trustpilot Service Reviews API "Reply to a review":
  ``POST https://api.trustpilot.com/v1/private/reviews/{reviewId}/reply`` with
  ``{"authorBusinessUserId", "message"}``, a business user's OAuth bearer token; answers
  ``201``. https://developers.trustpilot.com/service-reviews-api#reply-to-a-review
- Freshdesk "Create a Note": ``POST https://{domain}/api/v2/tickets/{id}/notes`` with
  ``{"body": html, "private": true}``, basic auth ``api_key:X``; answers ``201`` and the note.
  https://developers.freshdesk.com/api/#add_note_to_a_ticket
- Zendesk "Update Ticket" with a private comment: ``PUT /api/v2/tickets/{id}.json`` with
  ``{"ticket": {"comment": {"body", "public": false}}}``.
  https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-ticket
- ServiceNow Table API: ``PATCH https://{instance}/api/now/table/{table}/{sys_id}`` with
  ``{"work_notes": text}`` (a journal field: each write appends one work note).
  https://docs.servicenow.com/bundle/latest/page/integrate/inbound-rest/concept/c_TableAPI.html
- An alert webhook (Slack incoming webhook, or anything that takes its JSON):
  ``POST {url}`` with ``{"text": ...}``. https://api.slack.com/messaging/webhooks
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from backend.adapters.base import FetchFailure
from backend.adapters.http import RateLimiter, request_with_retries, status_reason
from backend.clock import Clock
from backend.egress import Egress, EgressScope


@dataclass(frozen=True, slots=True)
class PlatformAnswer:
    """What the other side said to one call (after retries)."""

    ok: bool
    status: int | None
    excerpt: str
    """A success: the start of the body. A failure: the fixed reason, never the body."""
    answered_at: datetime
    retryable: bool = False


MAX_BACKOFF_S = 60.0
"""The longest backoff between two attempts (``request_with_retries``' ``max_delay``)."""


@dataclass(frozen=True, slots=True)
class RetryRule:
    max_attempts: int
    max_retry_after_s: float
    excerpt_chars: int
    requests_per_second: float = 1.0


class OutboundCaller:
    """Sends one request through the egress policy with the retry rule; never raises for
    what the other side answers."""

    def __init__(
        self,
        egress: Egress,
        clock: Clock,
        rule: RetryRule,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.egress = egress
        self.clock = clock
        self.rule = rule
        self._rng = rng

    async def send(
        self,
        scope: EgressScope,
        method: str,
        url: str,
        *,
        json: Any,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        where: str,
    ) -> PlatformAnswer:
        limiter = RateLimiter(self.rule.requests_per_second, clock=self.clock)
        async with self.egress.client(scope) as client:
            result = await request_with_retries(
                client,
                method,
                url,
                limiter=limiter,
                clock=self.clock,
                max_attempts=self.rule.max_attempts,
                headers={"Accept": "application/json", **(headers or {})},
                auth=auth,
                json=json,
                max_retry_after=self.rule.max_retry_after_s,
                max_delay=MAX_BACKOFF_S,
                rng=self._rng,
                where=where,
            )
            if isinstance(result, FetchFailure):
                return PlatformAnswer(
                    ok=False,
                    status=result.status_code,
                    excerpt=result.message,
                    answered_at=self.clock.now(),
                    retryable=result.retryable,
                )
            try:
                body = await result.aread()
            except httpx.HTTPError as exc:
                return PlatformAnswer(
                    ok=False,
                    status=result.status_code,
                    excerpt=f"the answer could not be read: {type(exc).__name__}",
                    answered_at=self.clock.now(),
                    retryable=True,
                )
            text = body.decode("utf-8", errors="replace")
            return PlatformAnswer(
                ok=True,
                status=result.status_code,
                excerpt=text[: self.rule.excerpt_chars]
                or f"HTTP {result.status_code}: {status_reason(result.status_code)}",
                answered_at=self.clock.now(),
            )
