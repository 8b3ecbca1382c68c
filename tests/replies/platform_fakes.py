"""Protocol-level fakes of the platforms replies talk to: Google Business Profile, Trustpilot,
Freshdesk, Zendesk, ServiceNow and a Slack incoming webhook. One ``httpx.MockTransport``
routes by host; each answers with the payloads its documentation shows, and a test scripts
failures (``429`` with ``Retry-After``, ``5xx``, ``4xx``) ahead of the real answer."""

from __future__ import annotations

import base64
import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import httpx

# Public addresses the fake names resolve to (the egress policy checks them; nothing
# connects, the MockTransport answers).
PUBLIC_ADDRESSES = {
    "mybusiness.googleapis.com": "142.250.74.10",
    "mybusinessaccountmanagement.googleapis.com": "142.250.74.11",
    "mybusinessbusinessinformation.googleapis.com": "142.250.74.12",
    "api.trustpilot.com": "104.16.1.10",
    "hooks.slack.com": "34.226.10.20",
    "acme.freshdesk.com": "54.1.2.3",
    "acme.zendesk.com": "104.16.51.111",
    "acme.service-now.com": "149.96.1.2",
    # On the operator allow-list in the tests, but pointing into a private network.
    "alerts.internal-relay.example": "10.20.30.40",
}


@dataclass
class Received:
    method: str
    url: str
    headers: dict[str, str]
    body: Any


@dataclass
class PlatformFakes:
    received: list[Received] = field(default_factory=list)
    scripted: dict[str, deque[httpx.Response]] = field(default_factory=lambda: defaultdict(deque))

    def script(self, host: str, *responses: httpx.Response) -> None:
        """Answer the next requests to ``host`` with these, before the documented answer."""
        self.scripted[host].extend(responses)

    def to(self, host: str) -> list[Received]:
        return [r for r in self.received if httpx.URL(r.url).host == host]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.received.append(
            Received(request.method, str(request.url), dict(request.headers), body)
        )
        queue = self.scripted.get(request.url.host)
        if queue:
            return queue.popleft()
        return self._documented(request, body)

    def _documented(self, request: httpx.Request, body: Any) -> httpx.Response:
        host, path = request.url.host, request.url.path
        if host == "mybusiness.googleapis.com" and request.method == "PUT":
            if not path.endswith("/reply") or "/reviews/" not in path:
                return _google_error(404, "NOT_FOUND", "Requested entity was not found.")
            if request.headers.get("authorization", "") != "Bearer google-token":
                return _google_error(401, "UNAUTHENTICATED", "Request had invalid credentials.")
            # ReviewReply: the reply as stored, with its update time.
            return httpx.Response(
                200, json={"comment": body["comment"], "updateTime": "2026-12-05T06:00:00Z"}
            )
        if host == "api.trustpilot.com" and request.method == "POST":
            if request.headers.get("authorization", "") != "Bearer tp-business-token":
                return httpx.Response(401, json={"message": "Unauthorized"})
            return httpx.Response(201, json={})
        if host == "hooks.slack.com" and request.method == "POST":
            # Slack answers a plain-text "ok".
            return httpx.Response(200, text="ok")
        if host == "acme.freshdesk.com" and request.method == "POST":
            auth = request.headers.get("authorization", "")
            if auth != "Basic " + base64.b64encode(b"fd-key:X").decode():
                return httpx.Response(401, json={"code": "invalid_credentials"})
            ticket = int(path.split("/")[4])
            return httpx.Response(
                201,
                json={
                    "id": 5001,
                    "body": body["body"],
                    "body_text": body["body"],
                    "private": body["private"],
                    "incoming": False,
                    "ticket_id": ticket,
                    "user_id": 42,
                    "created_at": "2026-12-05T06:00:00Z",
                    "updated_at": "2026-12-05T06:00:00Z",
                },
            )
        if host == "acme.zendesk.com" and request.method == "PUT":
            ticket = int(path.rsplit("/", 1)[1].removesuffix(".json"))
            return httpx.Response(
                200,
                json={
                    "ticket": {"id": ticket, "status": "open"},
                    "audit": {"events": [{"type": "Comment", "public": False}]},
                },
            )
        if host == "acme.service-now.com" and request.method == "PATCH":
            sys_id = path.rsplit("/", 1)[1]
            return httpx.Response(200, json={"result": {"sys_id": sys_id, "number": "INC0010001"}})
        return httpx.Response(404, json={"error": "no such route in the fake"})


def _google_error(code: int, status: str, message: str) -> httpx.Response:
    return httpx.Response(
        code, json={"error": {"code": code, "message": message, "status": status}}
    )
