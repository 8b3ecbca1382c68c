"""An in-memory ServiceNow Table API, served through ``httpx.MockTransport``.

Implements what the adapter relies on: ``GET /api/now/table/{table}`` answering
``{"result": [...]}``, ``GET /api/now/table/{table}/{sys_id}`` answering ``{"result": {...}}``
(404 "No Record found" for a missing or unreadable record), a subset of the encoded query
language (``field>=value``, ``field=value``, ``fieldINa,b``, ``ORDERBYfield``, joined with
``^``), ``sysparm_fields`` (dot-walked reference fields included),
``sysparm_limit``/``sysparm_offset``, and — the quirk that matters — rows are
cut to the limit *before* ACLs drop the ones the user may not read, so pages come back short
(or empty) while ``Link: <...>; rel="next"`` still points on. Basic and bearer auth.
"""

from __future__ import annotations

import base64
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

INSTANCE = "acme.service-now.com"
USER, PASSWORD, TOKEN = "integration.bot", "pw-Secret-42", "oauth-token-abc"
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

Fault = httpx.Response | Exception


def sn_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def sys_id(n: int) -> str:
    return f"{n:032x}"


def make_incident(n: int, updated: datetime, *, state: str = "2") -> dict[str, Any]:
    return {
        "sys_id": sys_id(n),
        "number": f"INC{10000 + n:07d}",
        "short_description": f"VPN drops every {n} minutes",
        "description": f"Since the update, the VPN client disconnects every {n} minutes.",
        "state": state,
        "incident_state": state,
        "priority": "3",
        "urgency": "2",
        "impact": "2",
        "category": "network",
        "subcategory": "vpn",
        "close_code": "Solved (Permanently)" if state in ("6", "7") else "",
        "close_notes": "Reinstalled the VPN profile." if state in ("6", "7") else "",
        "caller_id": sys_id(5000 + n),
        "caller_id.email": f"employee{n}@acme.example",
        "caller_id.user_name": f"employee{n}",
        "assignment_group": sys_id(9000),
        "opened_at": sn_time(updated - timedelta(days=1)),
        "resolved_at": sn_time(updated) if state in ("6", "7") else "",
        "sys_created_on": sn_time(updated - timedelta(days=1)),
        "sys_updated_on": sn_time(updated),
        "sys_updated_by": "agent.smith",
        "sys_mod_count": "4",
        "_readable": True,
    }


def make_journal(
    n: int, incident: dict[str, Any], element: str, value: str, *, by: str, at: datetime
) -> dict[str, Any]:
    return {
        "sys_id": sys_id(70000 + n),
        "element": element,
        "element_id": incident["sys_id"],
        "name": "incident",
        "value": value,
        "sys_created_on": sn_time(at),
        "sys_created_by": by,
        "_readable": True,
    }


def make_article(n: int, updated: datetime, *, state: str = "published") -> dict[str, Any]:
    return {
        "sys_id": sys_id(30000 + n),
        "number": f"KB{10000 + n:07d}",
        "short_description": f"Configure the VPN client ({n})",
        "text": f"<p>Open the VPN client and import profile {n}.</p>",
        "workflow_state": state,
        "kb_category": sys_id(31000),
        "kb_knowledge_base": sys_id(32000),
        "language": "en",
        "article_type": "html",
        "meta": "vpn, remote access",
        "sys_created_on": sn_time(updated - timedelta(days=30)),
        "sys_updated_on": sn_time(updated),
        "_readable": True,
    }


@dataclass
class FakeServiceNow:
    tables: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {
            "incident": [],
            "sys_journal_field": [],
            "kb_knowledge": [],
            "sys_attachment": [],
        }
    )
    files: dict[str, bytes] = field(default_factory=dict)
    """sys_attachment sys_id → file body, served at /api/now/attachment/{sys_id}/file."""
    requests: list[httpx.Request] = field(default_factory=list)
    faults: dict[str, deque[Fault]] = field(default_factory=lambda: defaultdict(deque))

    def fail(self, table: str, *faults: Fault) -> None:
        self.faults[f"/api/now/table/{table}"].extend(faults)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    def requests_to(self, table: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == f"/api/now/table/{table}"]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host != INSTANCE:
            return httpx.Response(404)
        basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode("ascii")
        if request.headers.get("authorization") not in (basic, f"Bearer {TOKEN}"):
            return httpx.Response(
                401,
                json={
                    "error": {"message": "User Not Authenticated", "detail": ""},
                    "status": "failure",
                },
            )
        queued = self.faults.get(request.url.path)
        if queued:
            fault = queued.popleft()
            if isinstance(fault, Exception):
                raise fault
            return fault
        parts = request.url.path.strip("/").split("/")
        if len(parts) == 5 and parts[:3] == ["api", "now", "attachment"] and parts[4] == "file":
            body = self.files.get(parts[3])
            if body is None:
                return httpx.Response(404, json={"error": {"message": "No Record found"}})
            row = next(r for r in self.tables["sys_attachment"] if r["sys_id"] == parts[3])
            return httpx.Response(
                200, content=body, headers={"Content-Type": str(row.get("content_type"))}
            )
        prefix = "/api/now/table/"
        if not request.url.path.startswith(prefix):
            return httpx.Response(400)
        table, _, record_id = request.url.path[len(prefix) :].partition("/")
        if table not in self.tables:
            return httpx.Response(
                400, json={"error": {"message": "Invalid table"}, "status": "failure"}
            )
        if record_id:
            return self._record(request, table, record_id)
        return self._query(request, table)

    def _record(self, request: httpx.Request, table: str, record_id: str) -> httpx.Response:
        row = next((r for r in self.tables[table] if r["sys_id"] == record_id), None)
        if row is None or not row.get("_readable", True):
            # The Table API answers the same for a record that is gone and one ACLs hide.
            return httpx.Response(
                404,
                json={
                    "error": {
                        "message": "No Record found",
                        "detail": "Record doesn't exist or ACL restricts the record retrieval",
                    },
                    "status": "failure",
                },
            )
        fields = [f for f in request.url.params.get("sysparm_fields", "").split(",") if f]
        result = (
            {f: row.get(f, "") for f in fields}
            if fields
            else {k: v for k, v in row.items() if not k.startswith("_")}
        )
        return httpx.Response(200, json={"result": result})

    def _query(self, request: httpx.Request, table: str) -> httpx.Response:
        params = request.url.params
        rows = list(self.tables[table])
        order: list[str] = []
        for term in filter(None, params.get("sysparm_query", "").split("^")):
            if term.startswith("ORDERBY"):
                order.append(term[len("ORDERBY") :])
            elif ">=" in term:
                name, value = term.split(">=", 1)
                rows = [r for r in rows if str(r.get(name, "")) >= value]
            elif "IN" in term and "=" not in term:
                name, values = term.split("IN", 1)
                allowed = set(values.split(","))
                rows = [r for r in rows if str(r.get(name, "")) in allowed]
            elif "=" in term:
                name, value = term.split("=", 1)
                rows = [r for r in rows if str(r.get(name, "")) == value]
            else:
                return httpx.Response(400, json={"error": {"message": f"bad term {term}"}})
        # Stable multi-key sort: apply the keys from last to first.
        for name in reversed(order):
            rows.sort(key=lambda r, key=name: str(r.get(key, "")))
        limit = int(params.get("sysparm_limit", "10000"))
        offset = int(params.get("sysparm_offset", "0"))
        window = rows[offset : offset + limit]
        # ACLs apply after the limit: unreadable rows silently vanish from this page.
        visible = [r for r in window if r.get("_readable", True)]
        fields = [f for f in params.get("sysparm_fields", "").split(",") if f]
        result = [
            {f: r.get(f, "") for f in fields}
            if fields
            else {k: v for k, v in r.items() if not k.startswith("_")}
            for r in visible
        ]
        headers = {"X-Total-Count": str(len(rows))}
        if offset + limit < len(rows):
            query = dict(params)
            query["sysparm_offset"] = str(offset + limit)
            next_url = f"https://{INSTANCE}{request.url.path}?{urlencode(query)}"
            headers["Link"] = f'<{next_url}>;rel="next"'
        return httpx.Response(200, json={"result": result}, headers=headers)
