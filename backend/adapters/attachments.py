"""Attachments of tickets and articles: download through the adapter's client, extract text.

Every platform adapter describes a file it found as an :class:`AttachmentRef` and hands it to
an :class:`AttachmentReader`, which decides by the connector's :class:`AttachmentSettings`
whether to read it (type and size limits), downloads it through the *same* injected
``httpx.AsyncClient`` the adapter uses for the platform API (so the shared egress policy,
rate limiter and retries apply to downloads too), and extracts its text in a worker thread.

Whatever happens, the attachment is recorded: its name, type, size and outcome go into the
document's ``metadata["attachments"]``, and an outcome key (``indexed``, ``image``,
``unsupported_type``, ``too_large``, ...) is counted in the sync run. Images and unknown types
are recorded, never indexed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from backend.adapters.base import AuthorRole, Clock, DocumentPart, FetchFailure
from backend.adapters.http import RateLimiter, request_with_retries
from backend.ingest.extract import TEXT_TYPES, ExtractionError, extract_text, file_type

MiB: Final = 1024 * 1024
_MAX_REDIRECTS: Final = 3


class AttachmentSettings(BaseModel):
    """Per-connector limits on which attachments are read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """Download and index attachment text; when off, attachments are still recorded."""
    max_bytes: int = Field(default=10 * MiB, ge=1, le=100 * MiB)
    """Larger files are recorded as ``too_large`` and not downloaded."""
    types: frozenset[str] = Field(default=TEXT_TYPES)
    """File types to extract: any of pdf, docx, xlsx, pptx, html, txt, eml."""
    max_text_chars: int = Field(default=200_000, ge=1_000, le=2_000_000)
    """Extracted text beyond this is cut (a 900-page manual is not one ticket's knowledge)."""
    max_inflated_bytes: int = Field(default=200 * MiB, ge=MiB, le=2048 * MiB)
    """Office files are ZIP archives: refuse ones that inflate beyond this."""
    max_per_document: int = Field(default=20, ge=0, le=200)
    """At most this many attachments of one ticket or article are downloaded."""


class AttachmentRef(BaseModel):
    """A file attached to a ticket, a message or an article, as the platform lists it."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    name: str
    url: str | None = None
    size: int | None = None
    content_type: str | None = None
    internal: bool = False
    """Attached to a private note / work note: its text is internal knowledge."""
    author_role: AuthorRole | None = None
    author_name: str | None = None


@dataclass
class AttachmentResults:
    """What one document's attachments gave: parts to index, records, counts, failures."""

    parts: list[DocumentPart] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[FetchFailure] = field(default_factory=list)

    def count_key(self, outcome: str) -> str:
        return "attachments_indexed" if outcome == "indexed" else f"attachments_skipped.{outcome}"


class AttachmentReader:
    """Reads attachments for one adapter, with that adapter's client, limiter and clock."""

    def __init__(
        self,
        settings: AttachmentSettings,
        *,
        client: httpx.AsyncClient,
        limiter: RateLimiter,
        clock: Clock,
        max_attempts: int = 3,
    ) -> None:
        self.settings = settings
        self._client = client
        self._limiter = limiter
        self._clock = clock
        self._max_attempts = max_attempts

    async def read_all(
        self,
        refs: list[AttachmentRef],
        *,
        where: str,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        credentials_host: str | None = None,
    ) -> AttachmentResults:
        """Read ``refs`` in order; ``where`` names the parent (``ticket:123``) in failures.

        ``auth`` and ``headers`` go only with downloads from ``credentials_host`` (the
        platform's own host); signed links and external file hosts get none, so credentials
        never leave for a third party.
        """
        results = AttachmentResults()
        for position, ref in enumerate(refs):
            trusted = (
                credentials_host is not None
                and bool(ref.url)
                and (urlsplit(ref.url or "").hostname == credentials_host)
            )
            outcome, text, failure = await self._read(
                ref,
                position,
                where=where,
                headers=headers if trusted else None,
                auth=auth if trusted else None,
            )
            results.records.append(
                {
                    "id": ref.id,
                    "name": ref.name,
                    "content_type": ref.content_type,
                    "size": ref.size,
                    "internal": ref.internal,
                    "outcome": outcome,
                }
            )
            results.counts[results.count_key(outcome)] += 1
            if failure is not None:
                results.failures.append(failure)
            if text:
                results.parts.append(
                    DocumentPart(
                        text=text,
                        format="text",
                        label="attachment",
                        attachment_name=ref.name,
                        internal=ref.internal,
                        author_role=ref.author_role,
                        author_name=ref.author_name,
                    )
                )
        return results

    async def _download(
        self,
        url: str,
        *,
        label: str,
        headers: dict[str, str] | None,
        auth: httpx.Auth | tuple[str, str] | None,
    ) -> httpx.Response | FetchFailure:
        """GET ``url``; platforms hand out file links that redirect to a file host (Zendesk's
        ``content_url`` answers 302 to its user-content domain). A few https redirects are
        followed, each through the same client (so the egress policy judges every host), and
        credentials are dropped as soon as the host changes."""
        origin = urlsplit(url).hostname
        for _ in range(_MAX_REDIRECTS + 1):
            response = await request_with_retries(
                self._client,
                "GET",
                url,
                limiter=self._limiter,
                clock=self._clock,
                headers=headers,
                auth=auth,
                max_attempts=self._max_attempts,
                where=label,
                file_download=True,
            )
            if isinstance(response, FetchFailure) or not response.is_redirect:
                return response
            target = response.headers.get("location", "")
            next_url = str(response.url.join(target)) if target else ""
            if not next_url.startswith("https://"):
                return FetchFailure(
                    where=label,
                    message=f"HTTP {response.status_code}: redirect to a non-https location",
                    status_code=response.status_code,
                    retryable=False,
                )
            url = next_url
            if urlsplit(url).hostname != origin:
                headers, auth = None, None
        return FetchFailure(where=label, message="too many redirects", retryable=False)

    async def _read(
        self,
        ref: AttachmentRef,
        position: int,
        *,
        where: str,
        headers: dict[str, str] | None,
        auth: httpx.Auth | tuple[str, str] | None,
    ) -> tuple[str, str | None, FetchFailure | None]:
        kind = file_type(ref.name, ref.content_type)
        if kind == "image":
            return "image", None, None
        if kind is None:
            return "unsupported_type", None, None
        if kind not in self.settings.types:
            return "type_not_enabled", None, None
        if not self.settings.enabled:
            return "disabled", None, None
        if position >= self.settings.max_per_document:
            return "over_document_limit", None, None
        if ref.size is not None and ref.size > self.settings.max_bytes:
            return "too_large", None, None
        if not ref.url:
            return "no_url", None, None
        label = f"{where}/attachment:{ref.id or ref.name}"
        response = await self._download(ref.url, label=label, headers=headers, auth=auth)
        if isinstance(response, FetchFailure):
            return "download_failed", None, response
        data = response.content
        if len(data) > self.settings.max_bytes:
            # The listing under-stated the size (or gave none): the limit holds all the same.
            return "too_large", None, None
        try:
            text = await asyncio.to_thread(
                extract_text,
                data,
                kind,
                max_chars=self.settings.max_text_chars,
                max_inflated=self.settings.max_inflated_bytes,
            )
        except ExtractionError as exc:
            failure = FetchFailure(where=label, message=f"unreadable: {exc}", retryable=False)
            return "extraction_failed", None, failure
        if not text.strip():
            # A scanned PDF has pages but no text layer (OCR is out of scope).
            return "no_text", None, None
        return "indexed", text, None


__all__ = ["AttachmentReader", "AttachmentRef", "AttachmentResults", "AttachmentSettings"]
