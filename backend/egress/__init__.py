"""Outbound calls a tenant can influence: one policy (:mod:`.policy`), one transport
(:mod:`.transport`). LLM and embedding endpoints are operator configuration and do not go
through here."""

from backend.egress.policy import (
    DEFAULT_MAX_RESPONSE_BYTES,
    PLATFORM_FILE_HOSTS,
    PLATFORM_HOSTS,
    EgressPolicy,
    EgressRefused,
    EgressScope,
    HostRule,
    Origin,
    ResponseTooLarge,
    address_refusal,
    parse_allowed_hosts,
)
from backend.egress.transport import (
    CHECKED_ADDRESS,
    FILE_DOWNLOAD,
    Egress,
    EgressTransport,
    PinnedTransport,
    Resolver,
    StaticResolver,
    SystemResolver,
)

__all__ = [
    "CHECKED_ADDRESS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "FILE_DOWNLOAD",
    "PLATFORM_FILE_HOSTS",
    "PLATFORM_HOSTS",
    "Egress",
    "EgressPolicy",
    "EgressRefused",
    "EgressScope",
    "EgressTransport",
    "HostRule",
    "Origin",
    "PinnedTransport",
    "Resolver",
    "ResponseTooLarge",
    "StaticResolver",
    "SystemResolver",
    "address_refusal",
    "parse_allowed_hosts",
]
