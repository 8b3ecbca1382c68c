"""Zendesk connector input (settings, credentials) and its resumable cursor."""

from __future__ import annotations

import re
from typing import Literal, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from backend.adapters.attachments import AttachmentSettings
from backend.adapters.base import Checkpoint

# Zendesk subdomains are DNS labels: ``acme`` in ``acme.zendesk.com``.
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

ZendeskPhase = Literal["tickets", "articles"]


class ZendeskSettings(BaseModel):
    """What to sync from one Zendesk account."""

    model_config = ConfigDict(frozen=True)

    subdomain: str
    base_url: str | None = None
    """Defaults to ``https://{subdomain}.zendesk.com``; tests point it at a replay server."""
    include_tickets: bool = True
    include_articles: bool = True
    include_draft_articles: bool = False
    """Drafts are unpublished knowledge; by default a draft leaves the index (as a Deletion)."""
    include_translations: bool = True
    """Read each changed article's translations (``/help_center/articles/{id}/translations``):
    one document per locale other than the article's source locale."""
    attachments: AttachmentSettings = Field(default_factory=AttachmentSettings)
    """Which comment attachments are downloaded and indexed."""
    tickets_per_page: int = Field(default=100, ge=1, le=1000)
    """``per_page`` of the incremental ticket export (Zendesk allows up to 1000)."""
    comments_page_size: int = Field(default=100, ge=1, le=100)
    """``page[size]`` of the ticket comments endpoint (Zendesk allows up to 100)."""
    max_attempts: int = Field(default=5, ge=1, le=10)

    @field_validator("subdomain")
    @classmethod
    def _check_subdomain(cls, value: str) -> str:
        value = value.strip().lower()
        # Accept a pasted host name: "acme.zendesk.com" → "acme".
        value = value.removeprefix("https://").removeprefix("http://").split(".zendesk.com")[0]
        if not _SUBDOMAIN_RE.fullmatch(value):
            raise ValueError("subdomain must be the first label of <subdomain>.zendesk.com")
        return value

    @property
    def api_root(self) -> str:
        return (self.base_url or f"https://{self.subdomain}.zendesk.com").rstrip("/")

    @property
    def agent_root(self) -> str:
        """Where agents open tickets in the browser (never the replay server)."""
        return f"https://{self.subdomain}.zendesk.com"


class ZendeskCredentials(BaseModel):
    """Either an agent's email with an API token, or an OAuth access token."""

    model_config = ConfigDict(frozen=True)

    email: str | None = None
    api_token: SecretStr | None = None
    oauth_token: SecretStr | None = None

    @model_validator(mode="after")
    def _one_method(self) -> Self:
        token_pair = self.email is not None and self.api_token is not None
        if token_pair == (self.oauth_token is not None):
            raise ValueError("give either email and api_token, or oauth_token")
        return self

    def apply(self, headers: dict[str, str]) -> httpx.Auth | None:
        """Add bearer auth to ``headers`` or return basic auth for the request."""
        if self.oauth_token is not None:
            headers["Authorization"] = f"Bearer {self.oauth_token.get_secret_value()}"
            return None
        if self.email is None or self.api_token is None:  # excluded by the validator
            raise ValueError("email and api_token are required without oauth_token")
        # Zendesk API tokens authenticate as "{email}/token" with the token as the password.
        return httpx.BasicAuth(f"{self.email}/token", self.api_token.get_secret_value())


class ZendeskCheckpoint(Checkpoint):
    """Where a Zendesk sync stands: tickets first, then Help Center articles.

    ``ticket_cursor`` is the incremental export's ``after_cursor``; before the first export it is
    ``None`` and ``ticket_start_time`` (epoch seconds) is used. ``article_start_time`` is the
    ``end_time`` of the last article page. A finished round (``has_more=False``) keeps both, so
    the next sync passes it back and picks up only what changed since: tickets (and their
    deletions, which the export reports as ``status: deleted``) after the saved cursor, articles
    from the saved ``start_time``. The article export is inclusive of that second, so articles
    changed exactly then may come back as unchanged re-emissions (ingest skips them by hash).

    Same-second updates (audited): nothing here de-duplicates on ``(id, updated_at)``. The ticket
    cursor export lists a ticket again after every change, after the saved cursor, whatever its
    timestamp; the article export re-reads its inclusive start second and every row it returns
    is emitted (ingest compares content hashes). So a change stamped with the watermark's second
    is never skipped.
    """

    phase: ZendeskPhase = "tickets"
    ticket_cursor: str | None = None
    ticket_start_time: int = 0
    article_start_time: int = 0
