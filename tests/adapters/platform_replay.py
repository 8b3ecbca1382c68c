"""Protocol-level replay of platform APIs for adapter tests.

:class:`Replay` is the handler of an ``httpx.MockTransport``: each route (a URL path) holds an
ordered script of steps, each a response or an exception to raise (timeouts). Every request is
recorded, so tests assert what the adapter actually sent. A request no script expects fails the
test instead of being answered with something made up.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).parent / "fixtures"

Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json=body, headers=dict(headers or {}))


def rate_limited(retry_after: int | str) -> httpx.Response:
    return httpx.Response(
        429, json={"error": "APIRateLimitExceeded"}, headers={"Retry-After": str(retry_after)}
    )


def server_error(status: int = 503) -> httpx.Response:
    return httpx.Response(status, text="upstream unavailable")


@dataclass
class Route:
    path: str
    steps: list[Step]
    query: Mapping[str, str] | None = None
    repeat_last: bool = False
    calls: int = 0


@dataclass
class Replay:
    routes: list[Route] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(
        self,
        path: str,
        *steps: Step,
        query: Mapping[str, str] | None = None,
        repeat_last: bool = False,
    ) -> Route:
        """Answer requests for ``path`` (and, if given, these query values) with ``steps``."""
        route = Route(path=path, steps=list(steps), query=query, repeat_last=repeat_last)
        self.routes.append(route)
        return route

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for route in self.routes:
            if request.url.path != route.path:
                continue
            if route.query is not None and any(
                request.url.params.get(key) != value for key, value in route.query.items()
            ):
                continue
            if route.calls >= len(route.steps) and not (route.repeat_last and route.steps):
                continue
            step = route.steps[min(route.calls, len(route.steps) - 1)]
            route.calls += 1
            if isinstance(step, Exception):
                raise step
            if isinstance(step, httpx.Response):
                # A fresh copy each time: a script may hand out the same response twice.
                return httpx.Response(step.status_code, headers=step.headers, content=step.content)
            return step(request)
        raise AssertionError(f"unexpected request: {request.method} {request.url}")

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    def sent(self, path: str) -> list[httpx.Request]:
        return [request for request in self.requests if request.url.path == path]
