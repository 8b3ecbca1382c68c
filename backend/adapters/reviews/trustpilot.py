"""Trustpilot service reviews of one business unit (and the company's reply) → SourceDocuments.

``GET {base}/v1/business-units/{businessUnitId}/reviews?page=N&perPage=100&orderBy=createdat.desc``
with the API key in the ``apikey`` header. The response lists ``reviews`` and HATEOAS ``links``;
a link with ``rel: "next-page"`` means there is another page.

The endpoint sorts only by creation time (or stars), so syncs are incremental on ``createdAt``:
newest first, stopping below the previous round's watermark minus a look-back window, because
a company reply or an edit changes an older review without moving it to the front.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from backend.adapters.base import (
    Checkpoint,
    Clock,
    Deletion,
    DocumentKind,
    DocumentPart,
    FetchedItem,
    FetchFailure,
    Page,
    SourceDocument,
    UtcDatetime,
    as_utc,
    unreadable_item,
)
from backend.adapters.http import RateLimiter, get_json

SOURCE = "trustpilot"


class TrustpilotSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    business_unit_id: str = Field(min_length=1)
    base_url: str = "https://api.trustpilot.com"
    per_page: int = Field(default=100, ge=1, le=100)
    language: str | None = None
    """Only reviews in this language (ISO 639-1), when set; ``None`` for all."""
    lookback_days: int = Field(default=30, ge=0)
    """How far below the last watermark a sync re-reads to catch new replies and edits."""
    max_attempts: int = Field(default=5, ge=1, le=10)
    business_user_id: str | None = Field(default=None, max_length=100)
    """The business user replies are posted as (``authorBusinessUserId``); needed only to
    publish review replies (backend/replies)."""


class TrustpilotCredentials(BaseModel):
    model_config = ConfigDict(frozen=True)

    api_key: SecretStr
    access_token: SecretStr | None = None
    """A business user's OAuth access token: the private reply endpoint needs it, reading
    reviews does not."""


class TrustpilotCheckpoint(Checkpoint):
    """Page number within the current round, newest review first.

    ``watermark`` is the newest ``createdAt`` of the last finished round; ``round_newest`` the
    newest seen in this round so far.

    A finished checkpoint (``has_more=False``) passed back to ``fetch_page`` starts the next
    round from page 1, down to ``watermark`` minus ``lookback_days``: the listing is by creation
    time, so recent reviews are read again to catch replies and removals (deletions). Those
    re-reads are re-emissions, unchanged unless the review changed (ingest skips by hash).
    """

    page: int = Field(default=1, ge=1)
    watermark: UtcDatetime | None = None
    round_newest: UtcDatetime | None = None


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def review_document(review: dict[str, Any], *, business_unit_id: str) -> SourceDocument:
    review_id = str(review["id"])
    consumer = review.get("consumer") or {}
    name = consumer.get("displayName") or None
    stars = review.get("stars")
    rating = float(stars) if isinstance(stars, int | float) and 1 <= stars <= 5 else None
    created = _parse_time(review.get("createdAt"))
    parts: list[DocumentPart] = []
    text = str(review.get("text") or "").strip()
    if text:
        parts.append(
            DocumentPart(text=text, label="review", author_role="customer", created_at=created)
        )
    reply = review.get("companyReply") or {}
    reply_text = str(reply.get("text") or "").strip()
    if reply_text:
        parts.append(
            DocumentPart(
                text=reply_text,
                label="owner_reply",
                author_role="owner",
                created_at=_parse_time(reply.get("updatedAt") or reply.get("createdAt")),
            )
        )
    title = str(review.get("title") or "").strip() or f"Trustpilot review by {name or 'a customer'}"
    updated = max(
        (
            t
            for t in (
                created,
                _parse_time(review.get("updatedAt")),
                _parse_time(reply.get("updatedAt") or reply.get("createdAt")),
            )
            if t
        ),
        default=None,
    )
    metadata: dict[str, Any] = {
        "platform": "trustpilot",
        "business_unit_id": business_unit_id,
        "rating_scale": 5,
        "verified": review.get("isVerified"),
        "verification_level": review.get("reviewVerificationLevel"),
        "experienced_at": review.get("experiencedAt"),
        "likes": review.get("numberOfLikes"),
        "has_text": bool(text),
        "has_reply": bool(reply_text),
        "consumer_location": consumer.get("displayLocation"),
    }
    return SourceDocument(
        source=SOURCE,
        external_id=f"review:{review_id}",
        kind=DocumentKind.REVIEW,
        title=title,
        parts=parts,
        url=f"https://www.trustpilot.com/reviews/{review_id}",
        status="replied" if reply_text else "unreplied",
        language=review.get("language") or None,
        rating=rating,
        requester=name,
        created_at=created,
        updated_at=updated,
        metadata={key: value for key, value in metadata.items() if value is not None},
        raw={"review": review},
    )


def has_next_page(body: dict[str, Any]) -> bool:
    links = body.get("links")
    return isinstance(links, list) and any(
        isinstance(link, dict) and link.get("rel") == "next-page" for link in links
    )


class TrustpilotReviewsAdapter:
    """Public service reviews of one Trustpilot business unit."""

    source: ClassVar[str] = SOURCE
    checkpoint_type: type[TrustpilotCheckpoint] = TrustpilotCheckpoint

    def __init__(
        self,
        *,
        settings: TrustpilotSettings,
        credentials: TrustpilotCredentials,
        client: httpx.AsyncClient,
        limiter: RateLimiter,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.client = client
        self.limiter = limiter
        self.clock = clock
        # The key may also go in the query string; a header keeps it out of logged URLs.
        self._headers = {
            "Accept": "application/json",
            "apikey": credentials.api_key.get_secret_value(),
        }

    async def fetch_item(self, item_ref: str) -> FetchedItem:
        """One service review (``review:<id>``): ``GET /v1/reviews/<id>``. A 404 and a
        review that is no longer active come back as deletions; a review of another
        business unit is refused (a webhook cannot pull foreign reviews into this index)."""
        kind, _, review_id = item_ref.partition(":")
        if kind != "review" or not review_id.isalnum():
            failure = FetchFailure(where=item_ref, message="not a review", retryable=False)
            return FetchedItem(failures=[failure])
        settings = self.settings
        result = await get_json(
            self.client,
            f"{settings.base_url.rstrip('/')}/v1/reviews/{review_id}",
            limiter=self.limiter,
            clock=self.clock,
            where=item_ref,
            headers=self._headers,
            max_attempts=settings.max_attempts,
        )
        if isinstance(result, FetchFailure):
            return unreadable_item(result, source=SOURCE, external_id=item_ref)
        review, _ = result
        unit = review.get("businessUnit") if isinstance(review, dict) else None
        if not isinstance(review, dict) or (
            isinstance(unit, dict) and unit.get("id") not in (None, settings.business_unit_id)
        ):
            failure = FetchFailure(
                where=item_ref, message="not a review of this business unit", retryable=False
            )
            return FetchedItem(failures=[failure])
        try:
            document = review_document(review, business_unit_id=settings.business_unit_id)
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            failure = FetchFailure(
                where=item_ref, message=f"unexpected payload: {exc}", retryable=False
            )
            return FetchedItem(failures=[failure])
        status = review.get("status")
        if status and status != "active":
            deletion = Deletion(source=SOURCE, external_id=item_ref, reason=str(status))
            return FetchedItem(deletions=[deletion])
        return FetchedItem(documents=[document])

    def initial_checkpoint(self, since: datetime | None = None) -> TrustpilotCheckpoint:
        return TrustpilotCheckpoint(watermark=since)

    async def fetch_page(self, checkpoint: TrustpilotCheckpoint) -> Page[TrustpilotCheckpoint]:
        if not checkpoint.has_more:
            checkpoint = checkpoint.model_copy(update={"has_more": True, "page": 1})
        settings = self.settings
        params: dict[str, Any] = {
            "page": checkpoint.page,
            "perPage": settings.per_page,
            "orderBy": "createdat.desc",
        }
        if settings.language:
            params["language"] = settings.language
        url = (
            f"{settings.base_url.rstrip('/')}/v1/business-units/{settings.business_unit_id}/reviews"
        )
        result = await get_json(
            self.client,
            url,
            limiter=self.limiter,
            clock=self.clock,
            where=f"business-unit:{settings.business_unit_id}:page:{checkpoint.page}",
            params=params,
            headers=self._headers,
            max_attempts=settings.max_attempts,
        )
        if isinstance(result, FetchFailure):
            return Page(failures=[result], checkpoint=checkpoint, blocked=True)
        body, _ = result
        reviews = body.get("reviews") if isinstance(body, dict) else None
        if not isinstance(reviews, list):
            failure = FetchFailure(
                where=url, message="unexpected payload: no 'reviews' list", retryable=False
            )
            return Page(failures=[failure], checkpoint=checkpoint, blocked=True)

        floor = (
            checkpoint.watermark - timedelta(days=settings.lookback_days)
            if checkpoint.watermark is not None
            else None
        )
        newest = checkpoint.round_newest
        documents: list[SourceDocument] = []
        deletions: list[Deletion] = []
        failures: list[FetchFailure] = []
        below_floor = False
        for review in reviews:
            try:
                document = review_document(review, business_unit_id=settings.business_unit_id)
            except (KeyError, TypeError, ValueError, ValidationError) as exc:
                where = f"review:{review.get('id')}" if isinstance(review, dict) else url
                failures.append(
                    FetchFailure(where=where, message=f"unexpected payload: {exc}", retryable=False)
                )
                continue
            created = document.created_at
            if floor is not None and created is not None and created < floor:
                below_floor = True
                break
            if created is not None and (newest is None or created > newest):
                newest = created
            status = review.get("status")
            if status and status != "active":
                # Reviews taken down (reported and removed, archived) must leave the index.
                deletions.append(
                    Deletion(source=SOURCE, external_id=document.external_id, reason=str(status))
                )
                continue
            documents.append(document)

        if has_next_page(body) and not below_floor:
            advanced = checkpoint.model_copy(
                update={"page": checkpoint.page + 1, "round_newest": newest}
            )
        else:
            advanced = checkpoint.model_copy(
                update={
                    "page": 1,
                    "round_newest": None,
                    "watermark": newest or checkpoint.watermark,
                    "has_more": False,
                }
            )
        return Page(
            documents=documents, deletions=deletions, failures=failures, checkpoint=advanced
        )
