"""The API's OpenAPI document as a contract every test response is held to.

`ContractTransport` wraps the transport of the shared `client` fixture: each 2xx answer
with a JSON body is validated against the response schema its operation declares, and each
event of a 2xx Server-Sent Events stream against the declared schema of that event's data.
A body the document does not describe fails the test that received it, so the document
cannot drift from what the handlers send. The validator is `jsonschema` (JSON Schema 2020-12,
the dialect of OpenAPI 3.1 that FastAPI writes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

JSON = "application/json"
EVENT_STREAM = "text/event-stream"
# CORS preflights (OPTIONS) are the middleware's answer, not operations of the document.
OPERATION_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


class ContractViolation(AssertionError):
    """A response the OpenAPI document does not describe."""


@dataclass
class Operation:
    path: str
    pattern: re.Pattern[str]
    responses: dict[str, Any]


@dataclass
class Contract:
    """The operations of one OpenAPI document, with a validator per schema (built once)."""

    document: dict[str, Any]
    operations: dict[str, list[Operation]] = field(default_factory=dict)
    _validators: dict[int, Draft202012Validator] = field(default_factory=dict)

    @classmethod
    def of(cls, document: dict[str, Any]) -> Contract:
        contract = cls(document)
        for path, item in document.get("paths", {}).items():
            # A `{parameter}` matches one path segment; the rest is literal.
            parts = re.split(r"(\{[^}]+\})", path)
            regex = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
            pattern = re.compile(regex + "$")
            for method, operation in item.items():
                contract.operations.setdefault(method.upper(), []).append(
                    Operation(path, pattern, operation.get("responses", {}))
                )
        return contract

    def operation(self, method: str, path: str) -> Operation:
        for operation in self.operations.get(method.upper(), []):
            if operation.pattern.match(path):
                return operation
        raise ContractViolation(f"{method} {path}: no such operation in the OpenAPI document")

    def _validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        key = id(schema)
        validator = self._validators.get(key)
        if validator is None:
            # `#/components/...` references resolve against the document they sit in: give
            # the schema the document's components as its root.
            root = {**schema, "components": self.document.get("components", {})}
            validator = Draft202012Validator(
                root, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
            self._validators[key] = validator
        return validator

    def validate(self, schema: dict[str, Any], value: Any, where: str) -> None:
        error = best_match(self._validator(schema).iter_errors(value))
        if error is not None:
            location = "/".join(str(p) for p in error.absolute_path) or "(the body)"
            raise ContractViolation(f"{where}: {location}: {error.message}")

    def check(self, method: str, path: str, status: int, media_type: str, body: bytes) -> None:
        """Fail unless a 2xx `body` is what the operation declares for `status`."""
        where = f"{method} {path} → {status}"
        declared = self.operation(method, path).responses.get(str(status))
        if declared is None:
            raise ContractViolation(f"{where}: status not declared")
        content = declared.get("content", {}).get(media_type)
        if content is None:
            raise ContractViolation(f"{where}: {media_type} not declared")
        if media_type == JSON:
            schema = content.get("schema")
            if not schema:
                raise ContractViolation(f"{where}: no response schema declared")
            self.validate(schema, orjson.loads(body), where)
        elif media_type == EVENT_STREAM:
            self._check_events(content.get("itemSchema") or {}, body, where)

    def _check_events(self, item_schema: dict[str, Any], body: bytes, where: str) -> None:
        by_event = {
            branch["properties"]["event"]["const"]: branch["properties"]["data"]["contentSchema"]
            for branch in item_schema.get("oneOf", [])
        }
        if not by_event:
            raise ContractViolation(f"{where}: the stream's events are not declared")
        for name, data in parse_events(body):
            if name not in by_event:
                raise ContractViolation(f"{where}: undeclared event {name!r}")
            self.validate(by_event[name], orjson.loads(data), f"{where} event {name}")


def parse_events(body: bytes) -> list[tuple[str, str]]:
    """`(event, data)` of each Server-Sent Event in a complete stream."""
    events = []
    for block in body.decode().split("\n\n"):
        name, data = "message", []
        for line in block.splitlines():
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)
        if data:
            events.append((name, "\n".join(data)))
    return events


_contracts: dict[frozenset[tuple[str, frozenset[str]]], Contract] = {}


def contract_of(app: FastAPI) -> Contract:
    """The app's contract; apps with the same routes (one per test) share one."""
    routes = frozenset(
        (getattr(r, "path", ""), frozenset(getattr(r, "methods", None) or ())) for r in app.routes
    )
    contract = _contracts.get(routes)
    if contract is None:
        contract = _contracts[routes] = Contract.of(app.openapi())
    return contract


class ContractTransport(httpx.AsyncBaseTransport):
    """Passes requests to `inner`; fails a 2xx JSON or event-stream response that breaks
    the app's OpenAPI document."""

    def __init__(self, inner: httpx.AsyncBaseTransport, app: FastAPI) -> None:
        self.inner = inner
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        media_type = response.headers.get("content-type", "").partition(";")[0].strip()
        if (
            request.method in OPERATION_METHODS
            and request.url.path != self.app.openapi_url  # the document itself
            and 200 <= response.status_code < 300
            and media_type in (JSON, EVENT_STREAM)
        ):
            # The ASGI transport has the whole body already: reading it costs nothing.
            body = await response.aread()
            contract_of(self.app).check(
                request.method, request.url.path, response.status_code, media_type, body
            )
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
