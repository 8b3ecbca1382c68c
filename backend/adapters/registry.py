"""Which adapters exist, and how to build one from a connector's (user-supplied) input.

The connector API and the sync jobs call :func:`build_adapter`; input that does not validate
raises :class:`backend.errors.BadRequest` with a stable code and a field-by-field detail that
never echoes the submitted values (they may be secrets).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from backend.adapters.base import Adapter, Clock, SystemClock
from backend.adapters.files import (
    ArticleFolderAdapter,
    ArticleFolderSettings,
    FileCredentials,
    RecordExportAdapter,
    RecordExportSettings,
)
from backend.adapters.freshdesk import FreshdeskAdapter, FreshdeskCredentials, FreshdeskSettings
from backend.adapters.http import RateLimiter
from backend.adapters.reviews import (
    GoogleBusinessCredentials,
    GoogleBusinessReviewsAdapter,
    GoogleBusinessSettings,
    ReviewExportAdapter,
    ReviewExportCredentials,
    ReviewExportSettings,
    TrustpilotCredentials,
    TrustpilotReviewsAdapter,
    TrustpilotSettings,
)
from backend.adapters.servicenow import (
    ServiceNowAdapter,
    ServiceNowCredentials,
    ServiceNowSettings,
)
from backend.adapters.zendesk import ZendeskAdapter, ZendeskCredentials, ZendeskSettings
from backend.errors import BadRequest

AdapterFactory = Callable[..., Adapter[Any, Any]]
"""An adapter class: called with keyword arguments settings, credentials, client, limiter,
clock."""

BaseUrls = Callable[[Any], list[str]]
"""The base URLs a connector with these (validated) settings sends requests to: the egress
policy checks each and allows nothing else (:class:`backend.egress.EgressScope`)."""


def _no_network(_settings: Any) -> list[str]:
    return []


def _freshdesk_urls(settings: FreshdeskSettings) -> list[str]:
    return [f"https://{settings.domain}"]


def _servicenow_urls(settings: ServiceNowSettings) -> list[str]:
    return [f"https://{settings.instance}"]


def _zendesk_urls(settings: ZendeskSettings) -> list[str]:
    return [settings.api_root]


def _google_urls(settings: GoogleBusinessSettings) -> list[str]:
    return [
        settings.reviews_base_url,
        settings.account_management_base_url,
        settings.business_information_base_url,
    ]


def _trustpilot_urls(settings: TrustpilotSettings) -> list[str]:
    return [settings.base_url]


@dataclass(frozen=True)
class AdapterSpec:
    """What the registry knows about one platform."""

    platform: str
    factory: AdapterFactory
    settings_type: type[BaseModel]
    credentials_type: type[BaseModel]
    default_requests_per_minute: float
    """Local budget when the connector sets none; the platform's own rate-limit headers and
    ``Retry-After`` still slow us down further (see :class:`RateLimiter`)."""
    base_urls: BaseUrls = _no_network


ADAPTERS: dict[str, AdapterSpec] = {
    spec.platform: spec
    for spec in (
        # The smallest Freshdesk plan allows 50 calls a minute per account.
        AdapterSpec(
            "freshdesk",
            FreshdeskAdapter,
            FreshdeskSettings,
            FreshdeskCredentials,
            50.0,
            _freshdesk_urls,
        ),
        # Instances have no public fixed quota (admins set rate-limit rules): stay polite.
        AdapterSpec(
            "servicenow",
            ServiceNowAdapter,
            ServiceNowSettings,
            ServiceNowCredentials,
            120.0,
            _servicenow_urls,
        ),
        # Zendesk Support allows 200+ requests a minute depending on plan; the export
        # endpoint 10 a minute, which its headers report.
        AdapterSpec(
            "zendesk", ZendeskAdapter, ZendeskSettings, ZendeskCredentials, 200.0, _zendesk_urls
        ),
        # Business Profile APIs default to 300 requests a minute per Google Cloud project.
        AdapterSpec(
            "google_business",
            GoogleBusinessReviewsAdapter,
            GoogleBusinessSettings,
            GoogleBusinessCredentials,
            300.0,
            _google_urls,
        ),
        # No per-key budget is promised to us; 429 + Retry-After slows us further.
        AdapterSpec(
            "trustpilot",
            TrustpilotReviewsAdapter,
            TrustpilotSettings,
            TrustpilotCredentials,
            60.0,
            _trustpilot_urls,
        ),
        # Local files: the budget never binds (no HTTP is made).
        AdapterSpec(
            "review_export",
            ReviewExportAdapter,
            ReviewExportSettings,
            ReviewExportCredentials,
            60_000.0,
        ),
        AdapterSpec(
            "file_export", RecordExportAdapter, RecordExportSettings, FileCredentials, 60_000.0
        ),
        AdapterSpec(
            "article_folder", ArticleFolderAdapter, ArticleFolderSettings, FileCredentials, 60_000.0
        ),
    )
}


def adapter_spec(platform: str) -> AdapterSpec:
    spec = ADAPTERS.get(platform)
    if spec is None:
        raise BadRequest(
            f"unknown platform {platform!r}; known: {', '.join(sorted(ADAPTERS))}",
            code="unknown_platform",
        )
    return spec


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    # Only where and what: pydantic's default detail includes the input, which may be a key.
    return [
        {"field": ".".join(str(part) for part in error["loc"]) or "(root)", "message": error["msg"]}
        for error in exc.errors(include_input=False, include_url=False)
    ]


def _validate(
    model: type[BaseModel], value: Mapping[str, Any] | BaseModel, *, code: str
) -> BaseModel:
    if isinstance(value, model):
        return value
    data = value.model_dump() if isinstance(value, BaseModel) else dict(value)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(_errors(exc), code=code) from None


def validate_connector(
    platform: str,
    settings: Mapping[str, Any] | BaseModel,
    credentials: Mapping[str, Any] | BaseModel,
) -> tuple[BaseModel, BaseModel]:
    """Validated (settings, credentials) models for ``platform``, or ``BadRequest``.

    Codes: ``unknown_platform``, ``invalid_connector_settings``,
    ``invalid_connector_credentials``.
    """
    spec = adapter_spec(platform)
    return (
        _validate(spec.settings_type, settings, code="invalid_connector_settings"),
        _validate(spec.credentials_type, credentials, code="invalid_connector_credentials"),
    )


def connector_base_urls(platform: str, settings: BaseModel) -> list[str]:
    """The base URLs a connector's (validated) settings make it call; empty for files."""
    return adapter_spec(platform).base_urls(settings)


def build_adapter(
    platform: str,
    settings: Mapping[str, Any] | BaseModel,
    credentials: Mapping[str, Any] | BaseModel,
    *,
    client: httpx.AsyncClient,
    limiter: RateLimiter | None = None,
    clock: Clock | None = None,
) -> Adapter[Any, Any]:
    """An adapter for ``platform`` from raw or validated settings and credentials.

    Without a ``limiter``, one with the platform's default budget is made (pass a shared one
    when several jobs use the same account). Raises ``BadRequest`` on invalid input.
    """
    spec = adapter_spec(platform)
    valid_settings, valid_credentials = validate_connector(platform, settings, credentials)
    clock = clock if clock is not None else SystemClock()
    if limiter is None:
        limiter = RateLimiter.per_minute(spec.default_requests_per_minute, clock=clock)
    return spec.factory(
        settings=valid_settings,
        credentials=valid_credentials,
        client=client,
        limiter=limiter,
        clock=clock,
    )


__all__ = [
    "ADAPTERS",
    "AdapterFactory",
    "AdapterSpec",
    "adapter_spec",
    "build_adapter",
    "connector_base_urls",
    "validate_connector",
]
