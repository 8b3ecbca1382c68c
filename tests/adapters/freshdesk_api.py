"""An in-memory Freshdesk v2 API, served through ``httpx.MockTransport``.

It implements the documented semantics the adapter depends on, over a small dataset shaped
like real payloads: basic auth with ``api_key:X``; ``GET /api/v2/tickets`` with the 30-day
default, inclusive ``updated_since``, ``order_by=updated_at&order_type=asc``, ``per_page`` ≤ 100,
a page cap (300 by default; Freshdesk answers 400 above it), ``filter=deleted|spam``,
``include=description,requester``; ``Link: <...>; rel="next"`` while more pages exist;
``X-Ratelimit-*`` headers; conversations per ticket (paged); solution categories → folders →
articles. Tests inject faults (429, 5xx, timeouts) ahead of the real answer with :meth:`fail`.
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

API_KEY = "fd-test-key-7Hq2"
DOMAIN = "acme.freshdesk.com"
# Freshdesk serves attachment_url as a signed link to its file store, not the helpdesk host.
FILE_HOST = "s3.amazonaws.com"
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

Fault = httpx.Response | Exception


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_ticket(
    ticket_id: int,
    updated_at: datetime,
    *,
    subject: str | None = None,
    status: int = 2,
    spam: bool = False,
    requester_email: str | None = None,
) -> dict[str, Any]:
    """A ticket as ``GET /api/v2/tickets/{id}`` documents it (with description fields)."""
    created = updated_at - timedelta(days=2)
    return {
        "id": ticket_id,
        "subject": subject or f"Order #{4000 + ticket_id} arrived damaged",
        "description": f"<div>My order {4000 + ticket_id} arrived with a cracked screen.</div>",
        "description_text": f"My order {4000 + ticket_id} arrived with a cracked screen.",
        "status": status,
        "priority": 2,
        "source": 1,
        "type": "Problem",
        "requester_id": 80000 + ticket_id,
        "responder_id": 77001,
        "group_id": 5001,
        "company_id": None,
        "email_config_id": 9001,
        "product_id": None,
        "fr_escalated": False,
        "is_escalated": False,
        "spam": spam,
        "tags": ["shipping", "damage"],
        "cc_emails": [],
        "fwd_emails": [],
        "reply_cc_emails": [],
        "to_emails": None,
        "custom_fields": {"cf_order_number": str(4000 + ticket_id), "cf_region": "EU"},
        "due_by": iso(created + timedelta(days=3)),
        "fr_due_by": iso(created + timedelta(days=1)),
        "created_at": iso(created),
        "updated_at": iso(updated_at),
        "_requester_email": requester_email or f"customer{ticket_id}@example.org",
    }


def make_conversation(
    conversation_id: int,
    ticket_id: int,
    *,
    body_text: str,
    private: bool = False,
    incoming: bool = False,
    created_at: datetime = NOW,
) -> dict[str, Any]:
    return {
        "id": conversation_id,
        "ticket_id": ticket_id,
        "body": f"<div>{body_text}</div>",
        "body_text": body_text,
        "incoming": incoming,
        "private": private,
        "user_id": 80000 + ticket_id if incoming else 77001,
        "support_email": None if private else "support@acme.example",
        "source": 2 if private else 0,
        "category": 2 if private else 3,
        "to_emails": [] if private else [f"customer{ticket_id}@example.org"],
        "from_email": None,
        "cc_emails": [],
        "bcc_emails": [],
        "attachments": [],
        "created_at": iso(created_at),
        "updated_at": iso(created_at),
    }


@dataclass
class FakeFreshdesk:
    tickets: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[dict[str, Any]] = field(default_factory=list)
    conversations: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    categories: list[dict[str, Any]] = field(default_factory=list)
    folders: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    articles: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    primary_language: str = "en"
    supported_languages: list[str] = field(default_factory=list)
    translated_articles: dict[tuple[int, str], list[dict[str, Any]]] = field(default_factory=dict)
    """(folder id, language) → that folder's articles in that language."""
    ticket_attachments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    """What GET /tickets/{id} adds: the description's attachments."""
    files: dict[str, bytes] = field(default_factory=dict)
    """Path on FILE_HOST → file body (signed links need no API key)."""
    page_cap: int = 300
    now: datetime = NOW
    requests: list[httpx.Request] = field(default_factory=list)
    faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))

    # -- test controls ----------------------------------------------------------------------

    def fail(self, path: str, *faults: Fault) -> None:
        """Answer the next requests to ``path`` with ``faults`` (in order), then normally."""
        self.faults[path].extend(faults)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    def requests_to(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]

    # -- API --------------------------------------------------------------------------------

    def attach(
        self, name: str, content_type: str, body: bytes, attachment_id: int
    ) -> dict[str, Any]:
        """An attachment entry as Freshdesk lists it, its file served from FILE_HOST."""
        path = (
            "/cdn.freshdesk.com/data/helpdesk/attachments/production/"
            f"{attachment_id}/original/{name}"
        )
        self.files[path] = body
        return {
            "id": attachment_id,
            "name": name,
            "content_type": content_type,
            "size": len(body),
            "attachment_url": f"https://{FILE_HOST}{path}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Expires=300&X-Amz-Signature=0f1e2d",
            "thumb_url": None,
            "created_at": iso(self.now),
            "updated_at": iso(self.now),
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == FILE_HOST:
            body = self.files.get(request.url.path)
            if body is None or "X-Amz-Signature" not in str(request.url):
                return httpx.Response(403, text="<Error><Code>AccessDenied</Code></Error>")
            return httpx.Response(200, content=body)
        if request.url.host != DOMAIN:
            return self._error(404, "unknown domain")
        if request.headers.get("authorization") != "Basic " + base64.b64encode(
            f"{API_KEY}:X".encode()
        ).decode("ascii"):
            return self._error(401, "You have to be logged in to perform this action.")
        queued = self.faults.get(request.url.path)
        if queued:
            fault = queued.popleft()
            if isinstance(fault, Exception):
                raise fault
            return fault

        path = request.url.path
        parts = path.strip("/").split("/")
        if path == "/api/v2/tickets":
            return self._list_tickets(request)
        if path == "/api/v2/settings/helpdesk":
            return self._json(
                {
                    "primary_language": self.primary_language,
                    "supported_languages": self.supported_languages,
                    "portal_languages": self.supported_languages,
                    "help_widget_languages": [],
                }
            )
        if len(parts) == 4 and parts[2] == "tickets" and parts[3].isdigit():
            ticket = next((t for t in self.tickets if t["id"] == int(parts[3])), None)
            if ticket is None:
                return self._error(404, "ticket not found")
            shaped = self._shape_ticket(ticket, {"description"})
            shaped["attachments"] = self.ticket_attachments.get(ticket["id"], [])
            return self._json(shaped)
        if len(parts) == 7 and parts[3] == "folders" and parts[5] == "articles":
            language = parts[6]
            if language not in self.supported_languages:
                return self._error(400, "language not supported", field_name="language")
            key = (int(parts[4]), language)
            if key not in self.translated_articles:
                return self._error(404, "no translation")
            return self._paged(request, self.translated_articles[key])
        if len(parts) == 5 and parts[2] == "tickets" and parts[4] == "conversations":
            return self._paged(request, self.conversations.get(int(parts[3]), []))
        if path == "/api/v2/solutions/categories":
            return self._json(self.categories)
        if len(parts) == 6 and parts[3] == "categories" and parts[5] == "folders":
            category_id = int(parts[4])
            if not any(c["id"] == category_id for c in self.categories):
                return self._error(404, "category not found")
            return self._json(self.folders.get(category_id, []))
        if len(parts) == 6 and parts[3] == "folders" and parts[5] == "articles":
            folder_id = int(parts[4])
            if folder_id not in self.articles:
                return self._error(404, "folder not found")
            return self._paged(request, self.articles[folder_id])
        return self._error(404, "no such route")

    def _list_tickets(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        since_raw = params.get("updated_since")
        # Without updated_since, only the last 30 days are listed.
        since = datetime.fromisoformat(since_raw) if since_raw else self.now - timedelta(days=30)
        listing = {"deleted": self.deleted, "spam": [t for t in self.tickets if t["spam"]]}.get(
            params.get("filter", ""), [t for t in self.tickets if not t["spam"]]
        )
        if params.get("filter") not in (None, "deleted", "spam"):
            return self._error(400, "unsupported filter")
        selected = [t for t in listing if datetime.fromisoformat(t["updated_at"]) >= since]
        if params.get("order_by", "created_at") == "updated_at":
            reverse = params.get("order_type", "desc") == "desc"
            selected.sort(key=lambda t: (t["updated_at"], t["id"]), reverse=reverse)
        include = set(filter(None, params.get("include", "").split(",")))
        shaped = [self._shape_ticket(t, include) for t in selected]
        return self._paged(request, shaped)

    @staticmethod
    def _shape_ticket(ticket: dict[str, Any], include: set[str]) -> dict[str, Any]:
        shaped = {k: v for k, v in ticket.items() if not k.startswith("_")}
        if "description" not in include:
            shaped.pop("description", None)
            shaped.pop("description_text", None)
        if "requester" in include:
            shaped["requester"] = {
                "id": ticket["requester_id"],
                "name": "A Customer",
                "email": ticket["_requester_email"],
                "mobile": None,
                "phone": None,
            }
        return shaped

    def _paged(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        params = request.url.params
        try:
            per_page = int(params.get("per_page", "30"))
            page = int(params.get("page", "1"))
        except ValueError:
            return self._error(400, "page and per_page must be integers")
        if not 1 <= per_page <= 100:
            return self._error(400, "per_page must be between 1 and 100", field_name="per_page")
        if not 1 <= page <= self.page_cap:
            return self._error(
                400, f"page must be between 1 and {self.page_cap}", field_name="page"
            )
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items) and page < self.page_cap:
            query = dict(params)
            query["page"] = str(page + 1)
            next_url = f"https://{DOMAIN}{request.url.path}?{urlencode(query)}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return self._json(chunk, headers)

    @staticmethod
    def _json(body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.Response(
            200,
            content=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "X-Ratelimit-Total": "700",
                "X-Ratelimit-Remaining": "650",
                "X-Ratelimit-Used-CurrentRequest": "1",
                **(headers or {}),
            },
        )

    @staticmethod
    def _error(status: int, message: str, field_name: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"description": "Validation failed" if status == 400 else message}
        if field_name is not None:
            body["errors"] = [{"field": field_name, "message": message, "code": "invalid_value"}]
        return httpx.Response(status, json=body)
