"""The egress policy refuses every SSRF form from issue 11, and the production default
refuses loopback (only the explicit test-only setting opens it)."""

from __future__ import annotations

import ipaddress

import pytest

from backend.config import Settings
from backend.egress import (
    EgressPolicy,
    EgressRefused,
    Origin,
    address_refusal,
    parse_allowed_hosts,
)
from backend.stack import build_egress_policy

STRICT = EgressPolicy()


def test_the_production_default_refuses_loopback_and_http() -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    policy = build_egress_policy(defaults)
    assert defaults.egress_allow_loopback_for_tests is False
    assert policy.allow_loopback_for_tests is False
    with pytest.raises(EgressRefused, match="non-public"):
        policy.check_addresses([ipaddress.ip_address("127.0.0.1")])
    with pytest.raises(EgressRefused, match="non-public"):
        policy.check_addresses([ipaddress.ip_address("::1")])
    with pytest.raises(EgressRefused, match="https"):
        policy.check_base_url("zendesk", "http://acme.zendesk.com")
    with pytest.raises(EgressRefused):
        policy.check_base_url("zendesk", "http://127.0.0.1:8765/zd")


def test_the_test_only_setting_is_refused_in_production() -> None:
    with pytest.raises(ValueError, match="refused in production"):
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment="production",
            egress_allow_loopback_for_tests=True,
        )


def test_the_test_setting_opens_loopback_and_nothing_else() -> None:
    relaxed = EgressPolicy(allow_loopback_for_tests=True)
    assert relaxed.check_addresses([ipaddress.ip_address("127.0.0.1")]) == ipaddress.ip_address(
        "127.0.0.1"
    )
    for still_refused in ("10.0.0.5", "169.254.169.254", "::ffff:a9fe:a9fe", "192.168.1.1"):
        with pytest.raises(EgressRefused):
            relaxed.check_addresses([ipaddress.ip_address(still_refused)])


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "metadata"),
        ("fc00::1", "private"),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("::ffff:a9fe:a9fe", "metadata"),  # IPv4-mapped 169.254.169.254
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("64:ff9b:1::a00:1", "NAT64"),
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("::7f00:1", "loopback"),  # IPv4-compatible 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    refusal = address_refusal(ipaddress.ip_address(address))
    assert refusal is not None
    assert reason.lower() in refusal.lower()


@pytest.mark.parametrize("address", ["52.1.2.3", "2a05:d018::1", "64:ff9b::3401:203"])
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_one_non_public_answer_among_public_ones_refuses_the_name() -> None:
    answers = [ipaddress.ip_address("52.1.2.3"), ipaddress.ip_address("10.0.0.7")]
    with pytest.raises(EgressRefused, match="non-public"):
        STRICT.check_addresses(answers)
    with pytest.raises(EgressRefused, match="does not resolve"):
        STRICT.check_addresses([])


@pytest.mark.parametrize(
    ("platform", "url"),
    [
        ("zendesk", "http://acme.zendesk.com"),  # plain http
        ("zendesk", "https://127.0.0.1"),  # loopback literal
        ("zendesk", "https://10.0.0.1"),  # 10/8 literal
        ("zendesk", "https://169.254.169.254/latest/meta-data"),
        ("zendesk", "https://[::ffff:a9fe:a9fe]/"),
        ("zendesk", "https://[::1]/"),
        ("zendesk", "https://[64:ff9b::a9fe:a9fe]/"),
        ("zendesk", "https://0x7f000001/"),  # hex IPv4
        ("zendesk", "https://2130706433/"),  # decimal IPv4
        ("zendesk", "https://0177.0.0.1/"),  # octal IPv4
        ("zendesk", "https://127.1/"),  # short IPv4
        ("zendesk", "https://100.64.0.1/"),  # CGNAT literal
        ("freshdesk", "https://metadata.google.internal"),
        ("servicenow", "https://kubernetes.default.svc"),
        ("servicenow", "https://kubernetes.default.svc.cluster.local"),
        ("zendesk", "https://localhost"),
        ("zendesk", "https://acme.zendesk.com/internal/admin?"),  # '?' takes over the path
        ("zendesk", "https://acme.zendesk.com/x?a=1"),
        ("zendesk", "https://acme.zendesk.com/x#frag"),
        ("zendesk", "https://acme.zendesk.com:8443"),  # port trick
        ("zendesk", "https://acme.zendesk.com:22"),
        ("zendesk", "https://acme.zendesk.com:443@evil.example"),  # userinfo trick
        ("zendesk", "https://user:pw@acme.zendesk.com"),
        ("zendesk", "https://evil.example#@acme.zendesk.com"),
        ("zendesk", "https://evil.example\\@acme.zendesk.com"),
        ("zendesk", "https://acme.zendesk.com.evil.example"),  # suffix confusion
        ("zendesk", "https://evilzendesk.com"),
        ("zendesk", "https://zendesk.com.evil.example/"),
        ("zendesk", "https://acme.zendesk.com/%2e%2e/admin"),
        ("zendesk", "https://acme.zendesk.com/../admin"),
        ("zendesk", "ftp://acme.zendesk.com"),
        ("zendesk", "file:///etc/passwd"),
        ("trustpilot", "https://api.trustpilot.com.evil.example"),
        ("trustpilot", "https://evil.example"),
        ("google_business", "https://evil.googleapis.com"),  # not one of the fixed hosts
        ("freshdesk", "https://acme.zendesk.com"),  # another platform's host
    ],
)
def test_ssrf_forms_are_refused(platform: str, url: str) -> None:
    with pytest.raises(EgressRefused):
        STRICT.check_base_url(platform, url)


@pytest.mark.parametrize(
    ("platform", "url", "origin"),
    [
        ("zendesk", "https://acme.zendesk.com", Origin("https", "acme.zendesk.com", 443)),
        ("zendesk", "https://ACME.zendesk.com:443/", Origin("https", "acme.zendesk.com", 443)),
        ("freshdesk", "https://acme.freshdesk.com", Origin("https", "acme.freshdesk.com", 443)),
        (
            "servicenow",
            "https://acme.service-now.com",
            Origin("https", "acme.service-now.com", 443),
        ),
        ("trustpilot", "https://api.trustpilot.com", Origin("https", "api.trustpilot.com", 443)),
        (
            "google_business",
            "https://mybusiness.googleapis.com",
            Origin("https", "mybusiness.googleapis.com", 443),
        ),
    ],
)
def test_platform_hosts_pass(platform: str, url: str, origin: Origin) -> None:
    assert STRICT.check_base_url(platform, url) == origin


def test_the_operator_allow_list_admits_custom_domains_only() -> None:
    policy = EgressPolicy(allowed_hosts=parse_allowed_hosts("support.acme.com, *.helpdesk.example"))
    assert policy.check_base_url("freshdesk", "https://support.acme.com").host == "support.acme.com"
    assert policy.check_base_url("zendesk", "https://eu.helpdesk.example").port == 443
    with pytest.raises(EgressRefused):
        policy.check_base_url("freshdesk", "https://other.acme.com")
    with pytest.raises(EgressRefused):
        policy.check_base_url("freshdesk", "http://support.acme.com")  # still https only
    for bad in ("*", "*.com", "metadata.google.internal", "*.svc.cluster.local", "10.0.0.1"):
        with pytest.raises(ValueError, match=r"host name|internal name"):
            parse_allowed_hosts(bad)
