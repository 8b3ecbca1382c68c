"""A Freshdesk v2 API replay served over real HTTP on 127.0.0.1, for benchmarks and tests.

It serves a dataset shaped like Freshdesk's payloads (by default the StackFAQ export in
``../shared/datasets/stackfaq/freshdesk_shaped``) with the documented semantics the adapter
relies on:

- basic auth with ``<api key>:X``; a ``Host`` that is not the account's domain is a 404;
- ``GET /api/v2/settings/helpdesk`` (primary language only, no translations);
- ``GET /api/v2/solutions/categories``, ``/solutions/categories/{id}/folders`` and
  ``/solutions/folders/{id}/articles`` (paged with ``per_page``/``page``);
- ``GET /api/v2/tickets`` with ``updated_since`` (inclusive; without it only the last 30
  days), ``order_by=updated_at|created_at``, ``order_type=asc|desc``, ``per_page`` ≤ 100,
  ``page`` ≤ 300 (400 above), ``include=description,requester`` and ``filter=deleted|spam``;
- ``GET /api/v2/tickets/{id}`` (one ticket, with its description; ``deleted: true`` for a
  deleted one, 404 for an unknown one) and ``/tickets/{id}/conversations`` (paged);
- ``Link: <https://{domain}/...>; rel="next"`` while more pages exist;
- ``X-Ratelimit-Total``/``-Remaining``/``-Used-CurrentRequest`` from a per-minute budget, and
  ``429`` + ``Retry-After`` when it is spent.

The dataset has no conversations. ``conversations="gold"`` gives each ticket one public
agent reply derived from its gold article (``tickets_gold.tsv``): the article's first answer
paragraphs and a link to it, which is how agents answer FAQ questions, so tickets have a
thread to chunk. ``conversations="none"`` serves empty threads.

The adapter only speaks ``https://{domain}`` (settings validate a bare Freshdesk host name,
so a connector can never point it at an arbitrary URL). To reach this server without touching
adapter code, :meth:`FreshdeskReplayServer.client` returns an ``httpx.AsyncClient`` whose
transport (:class:`LoopbackTransport`) rewrites ``https://{domain}`` to this server's
``http://127.0.0.1:{port}`` while keeping the ``Host`` header, like a DNS override.

    with FreshdeskReplayServer(FreshdeskDataset.load()) as server:
        client = server.client()
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from backend.egress import Egress, EgressPolicy, StaticResolver

DATASET_DIR = (
    Path(__file__).resolve().parents[2] / "shared" / "datasets" / "stackfaq" / "freshdesk_shaped"
)
DOMAIN = "stackfaq.freshdesk.com"
API_KEY = "replay-api-key-0f3b"
PAGE_CAP = 300
MAX_PER_PAGE = 100
AGENT_ID = 77001

ConversationMode = Literal["none", "gold"]


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.DOTALL)


def _gold_reply(ticket: dict[str, Any], article: dict[str, Any], domain: str) -> dict[str, Any]:
    """A public agent reply quoting the start of the gold article and linking to it."""
    paragraphs = _PARAGRAPH.findall(str(article.get("description") or ""))
    excerpt: list[str] = []
    for paragraph in paragraphs:
        excerpt.append(paragraph)
        if sum(len(p) for p in excerpt) >= 500:
            break
    url = f"https://{domain}/support/solutions/articles/{article['id']}"
    title = html.escape(str(article.get("title") or ""))
    body = (
        "<div>Hi,</div><div>thanks for reaching out. "
        + "".join(f"<p>{p}</p>" for p in excerpt)
        + f'<p>More in our article <a href="{url}">{title}</a>.</p></div>'
    )
    body_text = re.sub(r"<[^>]+>", " ", body)
    created = _parse_iso(ticket["created_at"])
    return {
        "id": 9_000_000 + int(ticket["id"]),
        "ticket_id": ticket["id"],
        "body": body,
        "body_text": html.unescape(re.sub(r"\s+", " ", body_text)).strip(),
        "incoming": False,
        "private": False,
        "user_id": AGENT_ID,
        "support_email": f"support@{domain}",
        "source": 0,
        "category": 3,
        "to_emails": [],
        "from_email": None,
        "cc_emails": [],
        "bcc_emails": [],
        "attachments": [],
        "created_at": iso(created),
        "updated_at": iso(created),
    }


@dataclass
class FreshdeskDataset:
    """The account's content; mutable so tests can delete tickets between syncs."""

    categories: list[dict[str, Any]]
    folders: list[dict[str, Any]]
    articles: list[dict[str, Any]]
    tickets: list[dict[str, Any]]
    gold: dict[int, int] = field(default_factory=dict)
    """ticket id → article id"""
    deleted: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(
        cls,
        directory: Path = DATASET_DIR,
        *,
        articles: int | None = None,
        tickets: int | None = None,
    ) -> FreshdeskDataset:
        """The dataset in ``directory``; ``articles``/``tickets`` keep only the first N."""

        def read(name: str) -> Any:
            return json.loads((directory / name).read_text(encoding="utf-8"))

        gold: dict[int, int] = {}
        with (directory / "tickets_gold.tsv").open(encoding="utf-8") as lines:
            next(lines)  # header
            for line in lines:
                ticket_id, article_id = line.split()
                gold[int(ticket_id)] = int(article_id)
        all_articles: list[dict[str, Any]] = read("solution_articles.json")
        all_tickets: list[dict[str, Any]] = read("tickets.json")
        return cls(
            categories=read("solution_categories.json"),
            folders=read("solution_folders.json"),
            articles=all_articles[:articles] if articles is not None else all_articles,
            tickets=all_tickets[:tickets] if tickets is not None else all_tickets,
            gold=gold,
        )

    def delete_ticket(self, ticket_id: int, *, at: datetime) -> None:
        """Delete a ticket as an agent would: it leaves the plain listing and appears under
        ``filter=deleted`` with ``deleted: true`` and a bumped ``updated_at``."""
        for index, ticket in enumerate(self.tickets):
            if ticket["id"] == ticket_id:
                removed = self.tickets.pop(index)
                self.deleted.append({**removed, "deleted": True, "updated_at": iso(at)})
                return
        raise KeyError(ticket_id)


class _RateBudget:
    """Freshdesk's per-minute account budget, as reported in X-Ratelimit-* headers."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._window_start = time.monotonic()
        self._used = 0
        self._lock = threading.Lock()

    def take(self) -> tuple[int, float | None]:
        """(remaining after this call, seconds to wait when the budget is spent)."""
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= 60.0:
                self._window_start, self._used = now, 0
            if self._used >= self.per_minute:
                return 0, 60.0 - (now - self._window_start)
            self._used += 1
            return self.per_minute - self._used, None


class FreshdeskReplayServer:
    """A threaded HTTP server answering like ``https://{domain}/api/v2``."""

    def __init__(
        self,
        dataset: FreshdeskDataset,
        *,
        domain: str = DOMAIN,
        api_key: str = API_KEY,
        conversations: ConversationMode = "gold",
        rate_limit_per_minute: int = 1_000_000,
        latency_s: float = 0.0,
        now: datetime | None = None,
    ) -> None:
        self.dataset = dataset
        self.domain = domain
        self.api_key = api_key
        self.conversations = conversations
        self.latency_s = latency_s
        self.now = now or datetime.now(UTC)
        self.budget = _RateBudget(rate_limit_per_minute)
        self.request_count = 0
        self._count_lock = threading.Lock()
        self._articles_by_id = {a["id"]: a for a in dataset.articles}
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> FreshdeskReplayServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="freshdesk-replay", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FreshdeskReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An AsyncClient that reaches this server for ``https://{domain}`` URLs."""
        kwargs.setdefault("timeout", httpx.Timeout(30.0, connect=10.0))
        return httpx.AsyncClient(transport=LoopbackTransport({self.domain: self.port}), **kwargs)

    def egress(self) -> Egress:
        """The sync's egress, reaching this server: the platform name resolves to loopback,
        which only the test-only ``allow_loopback_for_tests`` policy accepts."""
        return Egress(
            EgressPolicy(allow_loopback_for_tests=True),
            resolver=StaticResolver({self.domain: "127.0.0.1"}),
            transport=LoopbackTransport({self.domain: self.port}),
        )

    # -- routing ------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                status, body, headers = server.answer(
                    self.path, self.headers.get("Host", ""), self.headers.get("Authorization")
                )
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: one line per request would swamp benchmark output

        return Handler

    def answer(
        self, target: str, host: str, authorization: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body, headers) for one GET."""
        with self._count_lock:
            self.request_count += 1
        if self.latency_s:
            time.sleep(self.latency_s)
        if host.split(":")[0] != self.domain:
            return 404, {"description": "unknown domain"}, {}
        expected = "Basic " + base64.b64encode(f"{self.api_key}:X".encode()).decode("ascii")
        if authorization != expected:
            return 401, {"description": "You have to be logged in to perform this action."}, {}
        remaining, retry_after = self.budget.take()
        limits = {
            "X-Ratelimit-Total": str(self.budget.per_minute),
            "X-Ratelimit-Remaining": str(remaining),
            "X-Ratelimit-Used-CurrentRequest": "1",
        }
        if retry_after is not None:
            return (
                429,
                {"description": "You have exceeded the limit of requests per minute"},
                {**limits, "Retry-After": str(max(1, round(retry_after)))},
            )
        url = urlsplit(target)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        status, body, headers = self._route(url.path, params)
        return status, body, {**limits, **headers}

    def _route(self, path: str, params: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        parts = path.strip("/").split("/")
        data = self.dataset
        if path == "/api/v2/tickets":
            return self._tickets(path, params)
        if len(parts) == 4 and parts[2] == "tickets" and parts[3].isdigit():
            wanted = int(parts[3])
            found = next((t for t in data.tickets + data.deleted if t["id"] == wanted), None)
            if found is None:
                return _error(404, "ticket not found")
            include = {"description", *filter(None, params.get("include", "").split(","))}
            return 200, _shape_ticket(found, include), {}
        if len(parts) == 5 and parts[2] == "tickets" and parts[4] == "conversations":
            ticket_id = int(parts[3])
            ticket = next((t for t in data.tickets if t["id"] == ticket_id), None)
            if ticket is None:
                return _error(404, "ticket not found")
            return self._paged(path, params, self._thread_of(ticket), default_per_page=30)
        if path == "/api/v2/settings/helpdesk":
            # A single-language help desk: the adapter reads no translations.
            return (
                200,
                {
                    "primary_language": "en",
                    "supported_languages": [],
                    "portal_languages": [],
                    "help_widget_languages": [],
                },
                {},
            )
        if path == "/api/v2/solutions/categories":
            return 200, data.categories, {}
        if len(parts) == 6 and parts[3] == "categories" and parts[5] == "folders":
            category_id = int(parts[4])
            if not any(c["id"] == category_id for c in data.categories):
                return _error(404, "category not found")
            return 200, [f for f in data.folders if f.get("category_id") == category_id], {}
        if len(parts) == 6 and parts[3] == "folders" and parts[5] == "articles":
            folder_id = int(parts[4])
            if not any(f["id"] == folder_id for f in data.folders):
                return _error(404, "folder not found")
            articles = [a for a in data.articles if a.get("folder_id") == folder_id]
            return self._paged(path, params, articles, default_per_page=30)
        return _error(404, "no such route")

    def _thread_of(self, ticket: dict[str, Any]) -> list[dict[str, Any]]:
        if self.conversations == "none":
            return []
        article = self._articles_by_id.get(self.dataset.gold.get(ticket["id"], -1))
        return [] if article is None else [_gold_reply(ticket, article, self.domain)]

    def _tickets(self, path: str, params: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        data = self.dataset
        listing_filter = params.get("filter")
        if listing_filter == "deleted":
            listing = data.deleted
        elif listing_filter == "spam":
            listing = [t for t in data.tickets if t.get("spam")]
        elif listing_filter is None:
            listing = [t for t in data.tickets if not t.get("spam")]
        else:
            return _error(400, "unsupported filter", field_name="filter")
        if "updated_since" in params:
            try:
                since = _parse_iso(params["updated_since"])
            except ValueError:
                return _error(400, "invalid updated_since", field_name="updated_since")
        else:
            # Documented: without updated_since only tickets created in the last 30 days.
            since = self.now - timedelta(days=30)
        selected = [t for t in listing if _parse_iso(t["updated_at"]) >= since]
        order_by = params.get("order_by", "created_at")
        if order_by not in ("created_at", "updated_at", "due_by", "status"):
            return _error(400, "invalid order_by", field_name="order_by")
        descending = params.get("order_type", "desc") == "desc"
        selected.sort(key=lambda t: (str(t.get(order_by)), t["id"]), reverse=descending)
        include = set(filter(None, params.get("include", "").split(",")))
        shaped = [_shape_ticket(t, include) for t in selected]
        return self._paged(path, params, shaped, default_per_page=30)

    def _paged(
        self,
        path: str,
        params: dict[str, str],
        items: list[dict[str, Any]],
        *,
        default_per_page: int,
    ) -> tuple[int, Any, dict[str, str]]:
        try:
            per_page = int(params.get("per_page", str(default_per_page)))
            page = int(params.get("page", "1"))
        except ValueError:
            return _error(400, "page and per_page must be integers", field_name="page")
        if not 1 <= per_page <= MAX_PER_PAGE:
            return _error(400, "per_page must be between 1 and 100", field_name="per_page")
        if not 1 <= page <= PAGE_CAP:
            return _error(400, f"page must be between 1 and {PAGE_CAP}", field_name="page")
        chunk = items[(page - 1) * per_page : page * per_page]
        headers: dict[str, str] = {}
        if page * per_page < len(items) and page < PAGE_CAP:
            query = {**params, "page": str(page + 1)}
            headers["Link"] = f'<https://{self.domain}{path}?{urlencode(query)}>; rel="next"'
        return 200, chunk, headers


def _shape_ticket(ticket: dict[str, Any], include: set[str]) -> dict[str, Any]:
    shaped = dict(ticket)
    if "description" not in include:
        # Listings omit the description unless include=description asks for it.
        shaped.pop("description", None)
        shaped.pop("description_text", None)
    if "requester" in include:
        shaped["requester"] = {
            "id": ticket["requester_id"],
            "name": f"Customer {ticket['requester_id']}",
            "email": f"customer{ticket['requester_id']}@example.org",
            "mobile": None,
            "phone": None,
        }
    return shaped


def _error(
    status: int, message: str, *, field_name: str | None = None
) -> tuple[int, Any, dict[str, str]]:
    body: dict[str, Any] = {"description": "Validation failed" if status == 400 else message}
    if field_name is not None:
        body["errors"] = [{"field": field_name, "message": message, "code": "invalid_value"}]
    return status, body, {}


class LoopbackTransport(httpx.AsyncBaseTransport):
    """Sends requests for ``https://{host}`` to ``http://127.0.0.1:{port}`` instead.

    Only the connection target changes: the ``Host`` header, paths and query stay those of
    the platform, so the adapter's URLs and ``Link`` headers are used exactly as in
    production. Any other host is refused, so nothing leaves the machine.
    """

    def __init__(self, routes: dict[str, int]) -> None:
        self._routes = dict(routes)
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        port = self._routes.get(request.url.host)
        if port is None or request.url.scheme != "https":
            raise httpx.ConnectError(f"no replay for {request.url.scheme}://{request.url.host}")
        # httpx set the Host header from the original URL when the request was built.
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@contextmanager
def running_replay(dataset: FreshdeskDataset, **kwargs: Any) -> Iterator[FreshdeskReplayServer]:
    server = FreshdeskReplayServer(dataset, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()
