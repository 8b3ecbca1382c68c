"""Attachment downloads under the egress policy: a platform's file links may go to its own
file hosts (Zendesk's user-content domain, Freshdesk's S3 links) and may redirect there,
hop by hop through the same policy; anywhere else, and every API call, stays refused."""

from __future__ import annotations

import httpx

from backend.adapters.attachments import AttachmentReader, AttachmentRef, AttachmentSettings
from backend.adapters.base import ManualClock
from backend.adapters.http import RateLimiter, get_json
from backend.egress import Egress, EgressPolicy, StaticResolver

ZENDESK = "acme.zendesk.com"
FILES = "acme.zdusercontent.com"
TABLE = {ZENDESK: "52.1.2.3", FILES: "52.1.2.4", "evil.example.com": "52.1.2.5"}


class FileHost:
    """A protocol-level fake: Zendesk's content_url answers 302 to the user-content host."""

    def __init__(self, redirect_to: str) -> None:
        self.redirect_to = redirect_to
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(str(request.url))
        if request.url.host == ZENDESK:
            return httpx.Response(302, headers={"Location": self.redirect_to})
        return httpx.Response(
            200, text="Reset the hub: hold the button 10 s.", headers={"Content-Type": "text/plain"}
        )


async def read(upstream: FileHost, url: str) -> tuple[str, list[str]]:
    egress = Egress(
        EgressPolicy(), resolver=StaticResolver(TABLE), transport=httpx.MockTransport(upstream)
    )
    clock = ManualClock()
    async with egress.client(egress.policy.scope("zendesk", [f"https://{ZENDESK}"])) as client:
        reader = AttachmentReader(
            AttachmentSettings(),
            client=client,
            limiter=RateLimiter.unlimited(clock=clock),
            clock=clock,
            max_attempts=1,
        )
        results = await reader.read_all(
            [AttachmentRef(id="1", name="steps.txt", url=url, size=40)],
            where="ticket:7",
            auth=("agent@acme.com/token", "secret"),
            credentials_host=ZENDESK,
        )
    return results.records[0]["outcome"], [part.text for part in results.parts]


async def test_a_file_link_redirecting_to_the_platforms_file_host_is_read() -> None:
    upstream = FileHost(f"https://{FILES}/attachments/token/abc/?name=steps.txt")
    outcome, texts = await read(upstream, f"https://{ZENDESK}/attachments/token/abc/?name=x")
    assert outcome == "indexed"
    assert texts == ["Reset the hub: hold the button 10 s."]
    assert [httpx.URL(u).host for u in upstream.seen] == [ZENDESK, FILES]


async def test_a_file_link_redirecting_elsewhere_is_refused_before_it_leaves() -> None:
    for target in (
        "https://evil.example.com/x",
        "https://169.254.169.254/latest/meta-data/",
        f"http://{FILES}/x",
        f"https://{FILES}:8443/x",
    ):
        upstream = FileHost(target)
        outcome, texts = await read(upstream, f"https://{ZENDESK}/attachments/token/abc/")
        assert outcome == "download_failed", target
        assert texts == []
        assert [httpx.URL(u).host for u in upstream.seen] == [ZENDESK], target


async def test_a_file_link_on_a_foreign_host_is_refused() -> None:
    upstream = FileHost("unused")
    outcome, _ = await read(upstream, "https://evil.example.com/steps.txt")
    assert outcome == "download_failed"
    assert upstream.seen == []


async def test_api_calls_never_reach_the_file_hosts_nor_follow_redirects() -> None:
    upstream = FileHost(f"https://{FILES}/x")
    egress = Egress(
        EgressPolicy(), resolver=StaticResolver(TABLE), transport=httpx.MockTransport(upstream)
    )
    clock = ManualClock()
    async with egress.client(egress.policy.scope("zendesk", [f"https://{ZENDESK}"])) as client:
        limiter = RateLimiter.unlimited(clock=clock)
        on_file_host = await get_json(
            client, f"https://{FILES}/api/v2/x.json", limiter=limiter, clock=clock, max_attempts=1
        )
        redirected = await get_json(
            client, f"https://{ZENDESK}/api/v2/x.json", limiter=limiter, clock=clock, max_attempts=1
        )
    assert not isinstance(on_file_host, httpx.Response)
    assert not isinstance(redirected, httpx.Response)
    assert [httpx.URL(u).host for u in upstream.seen] == [ZENDESK]  # the 302 was not followed
