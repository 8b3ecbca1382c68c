"""The egress policy: which outbound addresses a tenant-configured connector may reach.

Everything a tenant can point the server at (a connector's host, base URL or a paging link
the platform hands back) is checked here, and only here, against one set of rules:

- ``https`` only, on the default port, with no user info, query or fragment in a base URL;
- the host must be one of its platform's own (``*.freshdesk.com``, ``*.service-now.com``,
  ``*.zendesk.com``, the fixed Google and Trustpilot API hosts, Google's key host for push
  tokens) or on the operator's allow-list (``HELPDESK_EGRESS_ALLOWED_HOSTS``) for custom
  helpdesk domains;
- no IP literals and no numeric IPv4 spellings (``2130706433``, ``0x7f000001``,
  ``0177.0.0.1``), no cluster-internal or metadata names;
- every address the name resolves to must be public: loopback, private, link-local,
  CGNAT, multicast, unspecified, reserved and cloud-metadata addresses are refused, also
  when wrapped in IPv4-mapped, IPv4-compatible, NAT64, 6to4 or Teredo IPv6 forms.

The transport (:mod:`backend.egress.transport`) applies it to each request, resolves the
name once and connects to the address that was checked.

The only relaxation is ``allow_loopback_for_tests`` (``HELPDESK_EGRESS_ALLOW_LOOPBACK_FOR_TESTS``,
refused in production): plain http, any port and loopback addresses, so tests can reach
their replay servers on 127.0.0.1. Private, link-local and metadata addresses stay refused.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias
from urllib.parse import urlsplit

import httpx

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class EgressRefused(httpx.TransportError):
    """An outbound request the policy does not allow. ``reason`` is a fixed, safe text: it
    names the rule, never a resolved address or anything the upstream sent."""

    def __init__(self, reason: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(f"refused by egress policy: {reason}", request=request)
        self.reason = reason


class ResponseTooLarge(EgressRefused):
    """The upstream response passed the per-request size cap (the read was aborted)."""


# -- addresses ------------------------------------------------------------------------------

# Shared address space for carrier-grade NAT; ipaddress says "not global", but name it.
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215 local-use translation
_METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, ...
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
    }
)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries, for the forms a stack may route as IPv4."""
    if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d
        return address.ipv4_mapped
    if address in _NAT64:  # 64:ff9b::a.b.c.d reaches a.b.c.d through a NAT64 gateway
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:  # 2002:a.b.c.d::/48
        return address.sixtofour
    if address.teredo is not None:  # 2001:0::/32, (server, client)
        return address.teredo[1]
    if int(address) >> 32 == 0 and int(address) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(address))
    return None


def address_refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why ``address`` may not be connected to, or ``None`` when it is a public address.

    ``allow_loopback`` (tests only) lets loopback through and nothing else.
    """
    if address in _METADATA_ADDRESSES:
        return "cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return "local-use NAT64 address"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = address_refusal(embedded, allow_loopback=allow_loopback)
            return None if reason is None else f"{reason} (IPv6-wrapped)"
    if address.is_loopback:
        return None if allow_loopback else "loopback address"
    if address.is_unspecified:
        return "unspecified address"
    if address.is_multicast:
        return "multicast address"
    if address.is_link_local:
        return "link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "shared (CGNAT) address"
    if address.is_reserved:
        return "reserved address"
    if address.is_private:
        return "private address"
    if not address.is_global:
        return "non-public address"
    return None


# -- host names -----------------------------------------------------------------------------

_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$"
)
# Everything inet_aton(3) accepts as an IPv4 address: 1-4 parts, decimal, octal or hex.
_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?$")
# Names that only mean something inside a cluster, a cloud or a LAN.
_INTERNAL_SUFFIXES = (
    ".localhost",
    ".local",
    ".internal",
    ".intranet",
    ".lan",
    ".home",
    ".corp",
    ".svc",
    ".cluster.local",
    ".home.arpa",
    ".arpa",
    ".onion",
)
_INTERNAL_NAMES = frozenset({"localhost", "metadata", "metadata.google.internal", "instance-data"})


@dataclass(frozen=True)
class HostRule:
    """Hosts a platform owns: exact names and ``.suffix`` subdomains (one label or more)."""

    exact: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()

    def matches(self, host: str) -> bool:
        if host in self.exact:
            return True
        return any(host.endswith(suffix) and len(host) > len(suffix) for suffix in self.suffixes)


PLATFORM_HOSTS: Mapping[str, HostRule] = {
    "freshdesk": HostRule(suffixes=(".freshdesk.com",)),
    "servicenow": HostRule(suffixes=(".service-now.com",)),
    "zendesk": HostRule(suffixes=(".zendesk.com",)),
    "google_business": HostRule(
        exact=frozenset(
            {
                "mybusiness.googleapis.com",
                "mybusinessaccountmanagement.googleapis.com",
                "mybusinessbusinessinformation.googleapis.com",
            }
        )
    ),
    "trustpilot": HostRule(exact=frozenset({"api.trustpilot.com"})),
    # Google's public keys for the OIDC tokens on Pub/Sub pushes (backend/webhooks/
    # google_push.py); the URL is the operator's, no tenant names it.
    "google_signing_keys": HostRule(exact=frozenset({"www.googleapis.com"})),
    # Negative-review alerts (backend/replies): Slack incoming webhooks; any other receiver
    # of the same JSON (a chat bridge, an on-call tool) must be on the operator allow-list.
    "alert_webhook": HostRule(exact=frozenset({"hooks.slack.com"})),
}


# Where a platform serves attachment files, when not from the helpdesk host itself. Only
# attachment downloads (a request marked FILE_DOWNLOAD by backend/adapters/attachments.py)
# may go there; API calls and paging links stay on the connector's own origins.
PLATFORM_FILE_HOSTS: Mapping[str, HostRule] = {
    # Freshdesk v2 `attachment_url`: signed S3 links (s3.amazonaws.com/cdn.freshdesk.com/…,
    # or a bucket subdomain) and attachment.freshdesk.com for inline files.
    "freshdesk": HostRule(
        exact=frozenset({"s3.amazonaws.com"}), suffixes=(".s3.amazonaws.com", ".freshdesk.com")
    ),
    # Zendesk `content_url` on {sub}.zendesk.com answers 302 to {sub}.zdusercontent.com.
    "zendesk": HostRule(suffixes=(".zendesk.com", ".zdusercontent.com")),
    # ServiceNow serves /api/now/attachment/{sys_id}/file from the instance itself.
    "servicenow": HostRule(suffixes=(".service-now.com",)),
}


def parse_allowed_hosts(value: str | Iterable[str] | None) -> HostRule:
    """The operator allow-list: ``help.acme.com`` (exact) or ``*.acme.com`` (subdomains)."""
    if value is None:
        return HostRule()
    entries = value.split(",") if isinstance(value, str) else list(value)
    exact: set[str] = set()
    suffixes: list[str] = []
    for raw in entries:
        entry = raw.strip().lower().rstrip(".")
        if not entry:
            continue
        name = entry[2:] if entry.startswith("*.") else entry
        # A wildcard needs a registrable-looking domain under it: "*.com" or "*" is refused.
        if not _DNS_NAME.fullmatch(name) or (entry.startswith("*.") and name.count(".") < 1):
            raise ValueError(f"not a host name or *.domain: {raw.strip()!r}")
        if _internal_name(name):
            raise ValueError(f"an internal name cannot be allowed: {raw.strip()!r}")
        if entry.startswith("*."):
            suffixes.append("." + name)
        else:
            exact.add(name)
    return HostRule(exact=frozenset(exact), suffixes=tuple(suffixes))


def _internal_name(host: str) -> bool:
    return host in _INTERNAL_NAMES or any(host.endswith(s) for s in _INTERNAL_SUFFIXES)


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Origin:
    """Where a connector may send requests: scheme, host and port, nothing else."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}{port}"


# Base URLs hold a scheme, a host, an optional port and a plain path prefix: no user info,
# no query, no fragment, no percent-escapes, no backslashes, no whitespace.
_BASE_URL_CHARS = re.compile(r"^[A-Za-z0-9:/._~\-\[\]]+$")
_PATH_PREFIX = re.compile(r"^(?:/[A-Za-z0-9_~\-][A-Za-z0-9._~\-]*)*/?$")


@dataclass(frozen=True)
class EgressPolicy:
    """The rules; one instance per process, built from the settings."""

    allowed_hosts: HostRule = field(default_factory=HostRule)
    """The operator's allow-list, for custom helpdesk domains (any platform)."""
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    allow_loopback_for_tests: bool = False

    # -- hosts ----------------------------------------------------------------------------

    def check_host(self, platform: str, host: str, *, files: bool = False) -> IPAddress | None:
        """Refuse a host the platform may not use; a loopback literal (tests) is returned.
        ``files``: an attachment download, which may also reach the platform's file hosts."""
        host = host.strip().lower()
        if host.endswith("."):
            host = host[:-1]
        literal = _literal_address(host)
        if literal is not None:
            if self.allow_loopback_for_tests and literal.is_loopback:
                return literal
            raise EgressRefused("an IP address is not a platform host")
        if _NUMERIC_HOST.fullmatch(host):
            raise EgressRefused("a numeric host is not a platform host")
        if not _DNS_NAME.fullmatch(host):
            raise EgressRefused("not a host name")
        if _internal_name(host):
            raise EgressRefused("an internal host name is not a platform host")
        rule = PLATFORM_HOSTS.get(platform)
        file_rule = PLATFORM_FILE_HOSTS.get(platform) if files else None
        if (
            (rule is None or not rule.matches(host))
            and (file_rule is None or not file_rule.matches(host))
            and not self.allowed_hosts.matches(host)
        ):
            raise EgressRefused(f"host is not a {platform} host nor on the operator allow-list")
        return None

    def check_base_url(self, platform: str, url: str) -> Origin:
        """The origin of a base URL a connector names, or :class:`EgressRefused`."""
        if not _BASE_URL_CHARS.fullmatch(url):
            raise EgressRefused(
                "a base URL holds only scheme, host and path (no user info, query or fragment)"
            )
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme != "https" and not (self.allow_loopback_for_tests and scheme == "http"):
            raise EgressRefused("only https is allowed")
        if "@" in parts.netloc or parts.query or parts.fragment:
            raise EgressRefused("a base URL holds no user info, query or fragment")
        if not _PATH_PREFIX.fullmatch(parts.path):
            raise EgressRefused("a base URL path is a plain path prefix")
        try:
            port = parts.port
        except ValueError:
            raise EgressRefused("not a valid port") from None
        host = parts.hostname or ""
        self.check_host(platform, host)
        return self._origin(scheme, host.lower().rstrip("."), port)

    def _origin(self, scheme: str, host: str, port: int | None) -> Origin:
        default = 443 if scheme == "https" else 80
        effective = default if port is None else port
        if effective != default and not self.allow_loopback_for_tests:
            raise EgressRefused("only the default port is allowed")
        return Origin(scheme, host, effective)

    def scope(self, platform: str, base_urls: Iterable[str]) -> EgressScope:
        """The origins one connector may reach; every base URL must pass the policy."""
        origins = frozenset(self.check_base_url(platform, url) for url in base_urls)
        return EgressScope(platform=platform, origins=origins)

    # -- addresses ------------------------------------------------------------------------

    def check_addresses(self, addresses: Iterable[IPAddress]) -> IPAddress:
        """The address to connect to: the first one, once every one is public."""
        checked = list(addresses)
        if not checked:
            raise EgressRefused("host does not resolve")
        for address in checked:
            if address_refusal(address, allow_loopback=self.allow_loopback_for_tests):
                # The reason names the class of address only: which internal address a
                # public name points to is itself something not to tell a tenant.
                raise EgressRefused("host resolves to a non-public address")
        return checked[0]


@dataclass(frozen=True)
class EgressScope:
    """One connector's origins: requests anywhere else (a paging link to another host or
    scheme included) are refused by the transport."""

    platform: str
    origins: frozenset[Origin]

    def origin_of(self, url: httpx.URL, *, files: bool = False) -> Origin:
        """The URL's origin, if the connector may reach it. ``files``: an attachment
        download, which may also go to another https host on port 443 (the transport then
        checks that host against the platform's file hosts)."""
        if url.userinfo:
            raise EgressRefused("user info in a URL is not allowed")
        scheme = url.scheme.lower()
        port = url.port if url.port is not None else (443 if scheme == "https" else 80)
        origin = Origin(scheme, url.host.lower().rstrip("."), port)
        if files and scheme == "https" and port == 443:
            return origin
        if origin not in self.origins:
            raise EgressRefused("URL leaves the connector's own host and scheme")
        return origin


__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "PLATFORM_FILE_HOSTS",
    "PLATFORM_HOSTS",
    "EgressPolicy",
    "EgressRefused",
    "EgressScope",
    "HostRule",
    "IPAddress",
    "Origin",
    "ResponseTooLarge",
    "address_refusal",
    "parse_allowed_hosts",
]
