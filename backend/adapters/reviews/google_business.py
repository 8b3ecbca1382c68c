"""Google Business Profile reviews (and the owner's reply) → SourceDocuments.

Reviews come from the v4 API ``GET {base}/v4/accounts/{a}/locations/{l}/reviews`` (OAuth
bearer), newest update first, 50 per page with ``nextPageToken``. When the connector names no
location, the locations are listed first: accounts via the Account Management API
(``GET /v1/accounts``), then each account's locations via the Business Information API
(``GET /v1/accounts/{a}/locations?readMask=name,title``).

The API has no "updated since" filter, so syncs are incremental by walking newest-first and
stopping at the first review older than the watermark of the previous round. Google offers no
deletion feed: a review its author deleted simply stops appearing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from backend.adapters.base import (
    Checkpoint,
    Clock,
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
from backend.adapters.reviews.ratings import GOOGLE_STAR_RATINGS

SOURCE = "google_business"

# Google appends a machine translation to reviews written in another language than the
# viewer's: "(Translated by Google) <translation>\n\n(Original)\n<original>". We keep the
# original (what the customer wrote) as the text and the translation as metadata.
_TRANSLATED_MARK = "(Translated by Google)"
_ORIGINAL_MARK = "(Original)"


class GoogleBusinessSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    account: str | None = None
    """Account id (digits) or ``accounts/{id}``; with ``location``, nothing is listed."""
    location: str | None = None
    """Location id or ``locations/{id}``; without it every location of the account(s) syncs."""
    page_size: int = Field(default=50, ge=1, le=50)
    reviews_base_url: str = "https://mybusiness.googleapis.com"
    account_management_base_url: str = "https://mybusinessaccountmanagement.googleapis.com"
    business_information_base_url: str = "https://mybusinessbusinessinformation.googleapis.com"
    max_attempts: int = Field(default=5, ge=1, le=10)
    push_service_account: str | None = Field(
        default=None,
        min_length=3,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="Webhooks: the service account of the Pub/Sub push subscription. With "
        "push_audience, every push must carry Google's OIDC token for it (besides ?token=).",
    )
    push_audience: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="Webhooks: the audience set on the push subscription (Google's default "
        "is the push endpoint URL). Set together with push_service_account.",
    )

    @model_validator(mode="after")
    def _push_identity_whole(self) -> Self:
        # An audience cannot be guessed (it is whatever the subscription was given), and a
        # service account alone would accept a token minted for any of its subscriptions.
        if (self.push_service_account is None) != (self.push_audience is None):
            raise ValueError("set push_service_account and push_audience together, or neither")
        return self


class GoogleBusinessCredentials(BaseModel):
    """An OAuth 2.0 access token with the ``business.manage`` scope (refreshed by the caller)."""

    model_config = ConfigDict(frozen=True)

    access_token: SecretStr


class GoogleReviewsCheckpoint(Checkpoint):
    """Location by location, newest review first.

    ``locations`` is ``None`` until they are resolved. ``watermarks`` holds, per location, the
    newest ``updateTime`` of the last finished round; ``round_newest`` the newest seen so far in
    the location being walked.

    A finished checkpoint (``has_more=False``) passed back to ``fetch_page`` starts the next
    round: every location is walked again, newest first, down to its watermark. Reviews updated
    exactly at the watermark come back as unchanged re-emissions (ingest skips them by hash).
    """

    locations: list[str] | None = None
    location_index: int = 0
    page_token: str | None = None
    watermarks: dict[str, UtcDatetime] = Field(default_factory=dict)
    round_newest: UtcDatetime | None = None
    since: UtcDatetime | None = None
    """Lower bound for locations without a watermark (from ``initial_checkpoint(since)``)."""


def _strip_prefix(value: str, prefix: str) -> str:
    return value.strip().strip("/").removeprefix(prefix)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def split_translation(comment: str) -> tuple[str, str | None]:
    """(original text, Google's translation or None) of a review comment."""
    if _ORIGINAL_MARK not in comment:
        return comment.strip(), None
    translated, original = comment.split(_ORIGINAL_MARK, 1)
    translation = translated.replace(_TRANSLATED_MARK, "").strip()
    return original.strip(), translation or None


def review_document(
    review: dict[str, Any], *, location: str, summary: dict[str, Any]
) -> SourceDocument:
    review_id = str(review["reviewId"])
    reviewer = review.get("reviewer") or {}
    anonymous = bool(reviewer.get("isAnonymous"))
    name = None if anonymous else (reviewer.get("displayName") or None)
    star_enum = review.get("starRating")
    # STAR_RATING_UNSPECIFIED (or a missing field) means no rating, not a low one.
    stars = GOOGLE_STAR_RATINGS.get(str(star_enum)) if star_enum else None
    created = _parse_time(review.get("createTime"))
    updated = _parse_time(review.get("updateTime")) or created
    parts: list[DocumentPart] = []
    translation: str | None = None
    comment = review.get("comment")
    if isinstance(comment, str) and comment.strip():
        original, translation = split_translation(comment)
        parts.append(
            DocumentPart(text=original, label="review", author_role="customer", created_at=created)
        )
    reply = review.get("reviewReply") or {}
    if isinstance(reply.get("comment"), str) and reply["comment"].strip():
        parts.append(
            DocumentPart(
                text=reply["comment"].strip(),
                label="owner_reply",
                author_role="owner",
                created_at=_parse_time(reply.get("updateTime")),
            )
        )
    who = name or "a Google user"
    title = f"{stars}-star Google review by {who}" if stars else f"Google review by {who}"
    metadata: dict[str, Any] = {
        "platform": "google",
        "location": location,
        "star_rating": star_enum,
        "rating_scale": 5,
        "reviewer_anonymous": anonymous,
        "has_text": any(part.label == "review" for part in parts),
        "has_reply": bool(reply.get("comment")),
        "location_average_rating": summary.get("averageRating"),
        "location_review_count": summary.get("totalReviewCount"),
    }
    if translation:
        metadata["google_translation"] = translation
    return SourceDocument(
        source=SOURCE,
        external_id=f"review:{review_id}",
        kind=DocumentKind.REVIEW,
        title=title,
        parts=parts,
        status="replied" if metadata["has_reply"] else "unreplied",
        rating=float(stars) if stars else None,
        requester=name,
        created_at=created,
        updated_at=updated,
        metadata={key: value for key, value in metadata.items() if value is not None},
        raw={"review": review, "location": location},
    )


class GoogleBusinessReviewsAdapter:
    """Reviews of one location, or of every location an account manages."""

    source: ClassVar[str] = SOURCE
    checkpoint_type: type[GoogleReviewsCheckpoint] = GoogleReviewsCheckpoint

    def __init__(
        self,
        *,
        settings: GoogleBusinessSettings,
        credentials: GoogleBusinessCredentials,
        client: httpx.AsyncClient,
        limiter: RateLimiter,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.client = client
        self.limiter = limiter
        self.clock = clock
        self._headers = {
            "Accept": "application/json",
            "Authorization": f"Bearer {credentials.access_token.get_secret_value()}",
        }

    async def fetch_item(self, item_ref: str) -> FetchedItem:
        """One review by its resource name (``accounts/a/locations/l/reviews/r``, as the
        Pub/Sub notification names it): ``GET /v4/<name>``. Only reviews of this
        connector's account (and location, when set) are read; a 404 is a deletion."""
        parts = item_ref.split("/")
        valid = (
            len(parts) == 6
            and (parts[0], parts[2], parts[4]) == ("accounts", "locations", "reviews")
            and all(part and part.replace("-", "").replace("_", "").isalnum() for part in parts)
        )
        settings = self.settings
        mine = valid and (
            (not settings.account or parts[1] == _strip_prefix(settings.account, "accounts/"))
            and (
                not settings.location or parts[3] == _strip_prefix(settings.location, "locations/")
            )
        )
        if not mine:
            failure = FetchFailure(
                where="review", message="not a review of this connector", retryable=False
            )
            return FetchedItem(failures=[failure])
        location = "/".join(parts[:4])
        url = f"{settings.reviews_base_url.rstrip('/')}/v4/{item_ref}"
        result = await self._get(url, {}, where=f"review:{parts[5]}")
        if isinstance(result, FetchFailure):
            return unreadable_item(result, source=SOURCE, external_id=f"review:{parts[5]}")
        review, _ = result
        try:
            document = review_document(review, location=location, summary={})
        except (AttributeError, KeyError, TypeError, ValueError, ValidationError) as exc:
            failure = FetchFailure(
                where=f"review:{parts[5]}", message=f"unexpected payload: {exc}", retryable=False
            )
            return FetchedItem(failures=[failure])
        return FetchedItem(documents=[document])

    def initial_checkpoint(self, since: datetime | None = None) -> GoogleReviewsCheckpoint:
        return GoogleReviewsCheckpoint(since=since)

    async def fetch_page(
        self, checkpoint: GoogleReviewsCheckpoint
    ) -> Page[GoogleReviewsCheckpoint]:
        if not checkpoint.has_more:
            # A finished round: walk every location again down to its watermark.
            checkpoint = checkpoint.model_copy(
                update={"has_more": True, "location_index": 0, "page_token": None}
            )
        locations = checkpoint.locations
        if locations is None:
            resolved = await self._resolve_locations()
            if isinstance(resolved, FetchFailure):
                return Page(failures=[resolved], checkpoint=checkpoint, blocked=True)
            locations = resolved
            checkpoint = checkpoint.model_copy(update={"locations": locations})
        if checkpoint.location_index >= len(locations):
            return Page(checkpoint=checkpoint.model_copy(update={"has_more": False}))
        return await self._fetch_reviews(checkpoint, locations)

    async def _get(self, url: str, params: dict[str, Any], where: str) -> Any:
        return await get_json(
            self.client,
            url,
            limiter=self.limiter,
            clock=self.clock,
            where=where,
            params=params,
            headers=self._headers,
            max_attempts=self.settings.max_attempts,
        )

    async def _resolve_locations(self) -> list[str] | FetchFailure:
        """``accounts/{a}/locations/{l}`` names, from settings or by listing them."""
        settings = self.settings
        account = _strip_prefix(settings.account, "accounts/") if settings.account else None
        if settings.location:
            if account is None:
                return FetchFailure(
                    where="locations",
                    message="a location needs its account: set account as well",
                    retryable=False,
                )
            location = _strip_prefix(settings.location, "locations/")
            return [f"accounts/{account}/locations/{location}"]
        if account is not None:
            accounts = [account]
        else:
            listed = await self._list(
                f"{settings.account_management_base_url.rstrip('/')}/v1/accounts",
                "accounts",
                {"pageSize": 20},
            )
            if isinstance(listed, FetchFailure):
                return listed
            accounts = [_strip_prefix(str(item["name"]), "accounts/") for item in listed]
        names: list[str] = []
        for account_id in accounts:
            listed = await self._list(
                f"{settings.business_information_base_url.rstrip('/')}"
                f"/v1/accounts/{account_id}/locations",
                "locations",
                # readMask is required by the Business Information API.
                {"readMask": "name,title", "pageSize": 100},
            )
            if isinstance(listed, FetchFailure):
                return listed
            for item in listed:
                # Business Information names locations "locations/{id}"; the v4 reviews API
                # wants them under their account.
                location = _strip_prefix(str(item["name"]), "locations/")
                names.append(f"accounts/{account_id}/locations/{location}")
        return names

    async def _list(
        self, url: str, key: str, params: dict[str, Any]
    ) -> list[dict[str, Any]] | FetchFailure:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query = dict(params, pageToken=token) if token else params
            result = await self._get(url, query, where=key)
            if isinstance(result, FetchFailure):
                return result
            body, _ = result
            page = body.get(key, []) if isinstance(body, dict) else None
            if not isinstance(page, list) or not all(
                isinstance(item, dict) and "name" in item for item in page
            ):
                return FetchFailure(
                    where=key, message=f"unexpected payload: no '{key}' list", retryable=False
                )
            items.extend(page)
            token = body.get("nextPageToken")
            if not token:
                return items

    async def _fetch_reviews(
        self, checkpoint: GoogleReviewsCheckpoint, locations: list[str]
    ) -> Page[GoogleReviewsCheckpoint]:
        location = locations[checkpoint.location_index]
        url = f"{self.settings.reviews_base_url.rstrip('/')}/v4/{location}/reviews"
        params: dict[str, Any] = {"pageSize": self.settings.page_size, "orderBy": "updateTime desc"}
        if checkpoint.page_token:
            params["pageToken"] = checkpoint.page_token
        result = await self._get(url, params, where=location)
        if isinstance(result, FetchFailure):
            return Page(failures=[result], checkpoint=checkpoint, blocked=True)
        body, _ = result
        reviews = body.get("reviews", []) if isinstance(body, dict) else None
        if not isinstance(reviews, list):
            return Page(
                failures=[
                    FetchFailure(
                        where=location, message="unexpected payload: no 'reviews'", retryable=False
                    )
                ],
                checkpoint=checkpoint,
                blocked=True,
            )
        watermark = checkpoint.watermarks.get(location, checkpoint.since)
        newest = checkpoint.round_newest
        documents: list[SourceDocument] = []
        failures: list[FetchFailure] = []
        reached_watermark = False
        for review in reviews:
            try:
                document = review_document(review, location=location, summary=body)
            except (KeyError, TypeError, ValueError, ValidationError) as exc:
                where = f"review:{review.get('reviewId')}" if isinstance(review, dict) else location
                failures.append(
                    FetchFailure(where=where, message=f"unexpected payload: {exc}", retryable=False)
                )
                continue
            updated = document.updated_at
            if watermark is not None and updated is not None and updated < watermark:
                # Newest-first: everything from here on was seen in an earlier round.
                reached_watermark = True
                break
            documents.append(document)
            if updated is not None and (newest is None or updated > newest):
                newest = updated
        next_token = body.get("nextPageToken")
        if next_token and not reached_watermark:
            advanced = checkpoint.model_copy(
                update={"page_token": next_token, "round_newest": newest}
            )
        else:
            watermarks = dict(checkpoint.watermarks)
            finished = newest or watermark
            if finished is not None:
                watermarks[location] = finished
            index = checkpoint.location_index + 1
            advanced = checkpoint.model_copy(
                update={
                    "location_index": index,
                    "page_token": None,
                    "round_newest": None,
                    "watermarks": watermarks,
                    "has_more": index < len(locations),
                }
            )
        return Page(documents=documents, failures=failures, checkpoint=advanced)
