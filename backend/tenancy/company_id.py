"""Company ids: the tenant identifier used in every store.

A company id is a lower-case DNS-label-like slug, so it is safe inside Postgres settings,
Qdrant collection names, Redis hash tags and object-store prefixes without escaping.

:data:`CompanyId` is a distinct type (``NewType`` over ``str``) that mypy tracks: a value
only becomes one through :func:`validate_company_id` (or the pydantic field type
:data:`CompanyIdField`), which runs where a request (the auth dependency) or a job (the
worker, the CLI, the scheduler) enters. Code below that takes ``CompanyId`` and trusts it.
"""

from __future__ import annotations

import re
from typing import Annotated, NewType

from pydantic import AfterValidator

from backend.errors import InvalidCompanyId

COMPANY_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
_COMPANY_ID_RE = re.compile(COMPANY_ID_PATTERN)

# Helpdesk platforms whose tenant is the first label of the host name.
_PLATFORM_SUFFIXES = (
    ".freshdesk.com",
    ".freshservice.com",
    ".service-now.com",
    ".servicenow.com",
    ".zendesk.com",
)


CompanyId = NewType("CompanyId", str)
"""A company id that was checked once, where a request or job entered."""


def is_valid_company_id(value: str) -> bool:
    return bool(_COMPANY_ID_RE.fullmatch(value))


def validate_company_id(value: str) -> CompanyId:
    """Return ``value`` as a :data:`CompanyId` if it is well-formed, else raise
    ``InvalidCompanyId``."""
    if not isinstance(value, str) or not is_valid_company_id(value):
        raise InvalidCompanyId(
            "company id must be 1-63 characters of a-z, 0-9 and '-', "
            "starting and ending with a letter or digit"
        )
    return CompanyId(value)


def _check(value: str) -> CompanyId:
    if not is_valid_company_id(value):
        raise ValueError("must match " + COMPANY_ID_PATTERN)
    return CompanyId(value)


CompanyIdField = Annotated[CompanyId, AfterValidator(_check)]
"""A pydantic-validated company id, for request bodies and settings."""


def company_id_from_domain(domain: str) -> CompanyId:
    """Derive a company id from a helpdesk domain or URL.

    ``acme.freshdesk.com`` → ``acme``; ``https://acme.service-now.com/`` → ``acme``;
    a custom domain such as ``support.acme.co.uk`` → ``support-acme-co-uk``.
    """
    host = domain.strip().lower()
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", host)
    host = host.split("/", 1)[0].split(":", 1)[0].rstrip(".")
    if not host:
        raise InvalidCompanyId("empty domain")
    for suffix in _PLATFORM_SUFFIXES:
        if host.endswith(suffix):
            candidate = host[: -len(suffix)]
            if "." not in candidate:
                return validate_company_id(candidate)
    slug = re.sub(r"[^a-z0-9]+", "-", host).strip("-")[:63].strip("-")
    return validate_company_id(slug)
