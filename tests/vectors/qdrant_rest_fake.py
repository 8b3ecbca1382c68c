"""A protocol-level fake of the Qdrant REST API, for what qdrant-client's local mode lacks.

Local mode has no shards, no cluster operations and ignores payload indexes, so what the
server engine asks a real cluster for (a custom-sharded collection, an ``is_tenant`` index,
shard keys, point replication) is checked here against the documented REST endpoints
(https://api.qdrant.tech/api-reference), served through ``httpx.MockTransport`` to a real
``AsyncQdrantClient``. The fake keeps just enough state to answer: collections, aliases,
shard keys and their replica states. Every request is recorded for the tests to read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from qdrant_client import AsyncQdrantClient

PEER_ID = 4242


@dataclass
class Request:
    method: str
    path: str
    body: Any


@dataclass
class FakeQdrant:
    collections: set[str] = field(default_factory=set)
    aliases: dict[str, str] = field(default_factory=dict)
    # collection -> shard key -> replica state
    shard_keys: dict[str, dict[str, str]] = field(default_factory=dict)
    # How many cluster-info polls a replication stays Partial before it turns Active.
    polls_until_active: int = 2
    requests: list[Request] = field(default_factory=list)
    _polls: int = 0

    def client(self) -> AsyncQdrantClient:
        return AsyncQdrantClient(
            url="http://qdrant.test:6333",
            check_compatibility=False,
            transport=httpx.MockTransport(self.handle),
        )

    def calls(self, *, skip_reads: bool = True) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests if not (skip_reads and r.method == "GET")]

    @staticmethod
    def _ok(result: Any) -> httpx.Response:
        return httpx.Response(200, json={"result": result, "status": "ok", "time": 0.001})

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        self.requests.append(Request(request.method, path, body))
        parts = path.strip("/").split("/")
        method = request.method
        updated = {"operation_id": len(self.requests), "status": "completed"}
        if path == "/aliases" and method == "GET":
            return self._ok(
                {
                    "aliases": [
                        {"alias_name": a, "collection_name": c} for a, c in self.aliases.items()
                    ]
                }
            )
        if path == "/collections/aliases" and method == "POST":
            for action in body["actions"]:
                if "create_alias" in action:
                    spec = action["create_alias"]
                    self.aliases[spec["alias_name"]] = spec["collection_name"]
                if "delete_alias" in action:
                    self.aliases.pop(action["delete_alias"]["alias_name"], None)
            return self._ok(True)
        if path == "/collections" and method == "GET":
            return self._ok({"collections": [{"name": c} for c in sorted(self.collections)]})
        if len(parts) == 2 and parts[0] == "collections" and method == "PUT":
            self.collections.add(parts[1])
            self.shard_keys[parts[1]] = {}
            return self._ok(True)
        name = self.aliases.get(parts[1], parts[1]) if len(parts) > 1 else ""
        tail = "/".join(parts[2:])
        if tail == "index" and method == "PUT":
            return self._ok(updated)
        if tail == "shards" and method == "PUT":
            key = body["shard_key"]
            self.shard_keys[name][key] = body.get("initial_state") or "Active"
            return self._ok(True)
        if tail == "shards" and method == "GET":
            return self._ok({"shard_keys": [{"key": k} for k in self.shard_keys[name]]})
        if tail == "shards/delete" and method == "POST":
            self.shard_keys[name].pop(body["shard_key"], None)
            return self._ok(True)
        if tail == "cluster" and method == "POST":
            self._polls = 0
            return self._ok(True)
        if tail == "cluster" and method == "GET":
            self._polls += 1
            for key, state in self.shard_keys[name].items():
                if state == "Partial" and self._polls > self.polls_until_active:
                    self.shard_keys[name][key] = "Active"
            shards = [
                {"shard_id": i, "shard_key": key, "points_count": 0, "state": state}
                for i, (key, state) in enumerate(self.shard_keys[name].items())
            ]
            return self._ok(
                {
                    "peer_id": PEER_ID,
                    "shard_count": len(shards),
                    "local_shards": shards,
                    "remote_shards": [],
                    "shard_transfers": [],
                }
            )
        if tail in ("points", "points/delete") and method in ("PUT", "POST"):
            return self._ok(updated)
        if tail == "points/count" and method == "POST":
            return self._ok({"count": 0})
        if tail == "points/query" and method == "POST":
            return self._ok({"points": []})
        return httpx.Response(
            404, json={"status": {"error": f"fake: no route {method} {path}"}, "time": 0.0}
        )
