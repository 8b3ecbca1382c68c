"""The request each platform documents for a reply or a private note (see
:mod:`backend.replies.outbound` for the references), built from a connector's settings and
credentials. Nothing is sent here."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from backend.adapters.freshdesk.adapter import FreshdeskCredentials, FreshdeskSettings
from backend.adapters.registry import connector_base_urls
from backend.adapters.reviews.google_business import (
    GoogleBusinessCredentials,
    GoogleBusinessSettings,
)
from backend.adapters.reviews.trustpilot import TrustpilotCredentials, TrustpilotSettings
from backend.adapters.servicenow.adapter import ServiceNowCredentials, ServiceNowSettings
from backend.adapters.zendesk.models import ZendeskCredentials, ZendeskSettings
from backend.errors import Conflict
from backend.ingest.connectors import ConnectorConfig

REVIEW_PLATFORMS = frozenset({"google_business", "trustpilot"})
HELPDESK_PLATFORMS = frozenset({"freshdesk", "zendesk", "servicenow"})
# Platform ids are path segments: nothing that could step out of the documented path.
_PATH_ID = re.compile(r"^[A-Za-z0-9_\-.]{1,128}$")
_GOOGLE_LOCATION = re.compile(r"^accounts/[A-Za-z0-9_\-]{1,64}/locations/[A-Za-z0-9_\-]{1,64}$")
SERVICENOW_TABLES = frozenset({"incident", "sc_req_item", "sc_task", "problem", "change_request"})


class PublishNotPossible(Conflict):
    """The reply or note cannot be sent as things are configured (409, nothing is sent)."""

    def __init__(self, detail: str, *, code: str = "publish_not_configured") -> None:
        super().__init__(detail, code=code)


@dataclass(frozen=True)
class PlannedCall:
    """One documented request, and the origins its connector may reach."""

    platform: str
    base_urls: list[str]
    method: str
    url: str
    json: Any
    where: str
    headers: dict[str, str] = field(default_factory=dict)
    auth: httpx.Auth | tuple[str, str] | None = None


def platform_id(external_id: str, prefix: str) -> str:
    """``review:abc`` → ``abc``; a bare id is taken as is. Refused unless path-safe."""
    value = external_id.removeprefix(f"{prefix}:")
    if not _PATH_ID.fullmatch(value):
        raise PublishNotPossible(
            f"{external_id!r} is not a platform id", code="invalid_platform_id"
        )
    return value


def review_reply_call(
    config: ConnectorConfig, *, external_id: str, metadata: dict[str, Any], text: str
) -> PlannedCall:
    """The request that publishes ``text`` as the owner's reply to one review."""
    platform = config.connector.platform
    review_id = platform_id(external_id, "review")
    base_urls = connector_base_urls(platform, config.settings)
    if platform == "google_business":
        settings = config.settings
        credentials = config.credentials
        assert isinstance(settings, GoogleBusinessSettings)
        assert isinstance(credentials, GoogleBusinessCredentials)
        location = str(metadata.get("location") or "")
        if not _GOOGLE_LOCATION.fullmatch(location):
            raise PublishNotPossible("the review does not name its Google location")
        name = f"{location}/reviews/{review_id}"
        return PlannedCall(
            platform=platform,
            base_urls=base_urls,
            method="PUT",
            url=f"{settings.reviews_base_url.rstrip('/')}/v4/{name}/reply",
            json={"comment": text},
            headers={"Authorization": f"Bearer {credentials.access_token.get_secret_value()}"},
            where=f"review:{review_id}",
        )
    if platform == "trustpilot":
        tp_settings = config.settings
        tp_credentials = config.credentials
        assert isinstance(tp_settings, TrustpilotSettings)
        assert isinstance(tp_credentials, TrustpilotCredentials)
        if tp_credentials.access_token is None or not tp_settings.business_user_id:
            raise PublishNotPossible(
                "publishing to Trustpilot needs the connector's business_user_id setting and "
                "a business user's access_token credential"
            )
        return PlannedCall(
            platform=platform,
            base_urls=base_urls,
            method="POST",
            url=f"{tp_settings.base_url.rstrip('/')}/v1/private/reviews/{review_id}/reply",
            json={"authorBusinessUserId": tp_settings.business_user_id, "message": text},
            headers={
                "Authorization": f"Bearer {tp_credentials.access_token.get_secret_value()}",
                "apikey": tp_credentials.api_key.get_secret_value(),
            },
            where=f"review:{review_id}",
        )
    raise PublishNotPossible(
        f"replies cannot be published to {platform!r} (Google Business Profile and Trustpilot can)",
        code="publish_unsupported",
    )


def _note_html(text: str) -> str:
    """Freshdesk note bodies are HTML: the draft is text, so it is escaped, lines kept."""
    return "<br>".join(html.escape(line) for line in text.splitlines())


def ticket_note_call(
    config: ConnectorConfig, *, ticket_id: str, text: str, table: str = "incident"
) -> PlannedCall:
    """The request that adds ``text`` to a ticket as a private note (agents only)."""
    platform = config.connector.platform
    base_urls = connector_base_urls(platform, config.settings)
    if platform == "freshdesk":
        fd_settings, fd_credentials = config.settings, config.credentials
        assert isinstance(fd_settings, FreshdeskSettings)
        assert isinstance(fd_credentials, FreshdeskCredentials)
        number = platform_id(ticket_id, "ticket")
        return PlannedCall(
            platform=platform,
            base_urls=base_urls,
            method="POST",
            url=f"https://{fd_settings.domain}/api/v2/tickets/{number}/notes",
            json={"body": _note_html(text), "private": True},
            auth=(fd_credentials.api_key.get_secret_value(), "X"),
            where=f"ticket:{number}",
        )
    if platform == "zendesk":
        zd_settings, zd_credentials = config.settings, config.credentials
        assert isinstance(zd_settings, ZendeskSettings)
        assert isinstance(zd_credentials, ZendeskCredentials)
        number = platform_id(ticket_id, "ticket")
        headers: dict[str, str] = {}
        auth = zd_credentials.apply(headers)
        return PlannedCall(
            platform=platform,
            base_urls=base_urls,
            method="PUT",
            url=f"{zd_settings.api_root}/api/v2/tickets/{number}.json",
            json={"ticket": {"comment": {"body": text, "public": False}}},
            headers=headers,
            auth=auth,
            where=f"ticket:{number}",
        )
    if platform == "servicenow":
        sn_settings, sn_credentials = config.settings, config.credentials
        assert isinstance(sn_settings, ServiceNowSettings)
        assert isinstance(sn_credentials, ServiceNowCredentials)
        if table not in SERVICENOW_TABLES:
            raise PublishNotPossible(
                f"work notes go to one of {sorted(SERVICENOW_TABLES)}", code="invalid_table"
            )
        sys_id = platform_id(ticket_id, "incident")
        return PlannedCall(
            platform=platform,
            base_urls=base_urls,
            method="PATCH",
            url=f"https://{sn_settings.instance}/api/now/table/{table}/{sys_id}",
            json={"work_notes": text},
            headers=sn_credentials.auth_headers(),
            auth=sn_credentials.basic_auth(),
            where=f"{table}:{sys_id}",
        )
    raise PublishNotPossible(
        f"private notes cannot be posted to {platform!r} (Freshdesk, Zendesk and ServiceNow can)",
        code="notes_unsupported",
    )
