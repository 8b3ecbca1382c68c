"""The OpenAPI document describes every success response the API sends.

The shared `client` fixture checks each 2xx JSON body and stream event the tests receive
against it (tests/openapi_contract.py); these tests prove that every operation gives that
check something to hold a body to, and that the check does fail a body off its schema.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from backend.app import create_app
from backend.config import Settings
from tests.openapi_contract import Contract, ContractViolation


@pytest.fixture
def document(settings: Settings) -> dict[str, Any]:
    return create_app(settings).openapi()


def test_every_operation_declares_a_schema_for_its_success_responses(
    document: dict[str, Any],
) -> None:
    undeclared = []
    operations = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            operations += 1
            where = f"{method.upper()} {path}"
            successes = {
                code: response
                for code, response in operation["responses"].items()
                if code.startswith("2")
            }
            if not successes:
                undeclared.append(f"{where}: no 2xx response")
            for code, response in successes.items():
                content = response.get("content", {})
                if code == "204":
                    if content:
                        undeclared.append(f"{where} {code}: a body on 204")
                    continue
                if not content:
                    undeclared.append(f"{where} {code}: no content declared")
                for media_type, media in content.items():
                    # JSON bodies have a `schema`, event streams an `itemSchema` per event.
                    if not (media.get("schema") or media.get("itemSchema")):
                        undeclared.append(f"{where} {code} {media_type}: no schema")
    assert operations > 50
    assert undeclared == []


def test_every_stream_declares_each_event_it_sends(document: dict[str, Any]) -> None:
    streams = {
        f"{method.upper()} {path}": media["itemSchema"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for response in operation["responses"].values()
        for media_type, media in response.get("content", {}).items()
        if media_type == "text/event-stream"
    }
    assert "POST /v1/draft-reply/stream" in streams
    for where, item_schema in streams.items():
        events = {b["properties"]["event"]["const"] for b in item_schema["oneOf"]}
        assert events, where
        if where.startswith("POST /v1/"):
            assert events == {"token", "done", "error"}, where


def test_a_body_off_its_schema_fails_the_check(document: dict[str, Any]) -> None:
    contract = Contract.of(document)
    feedback = orjson.dumps({"id": "0b7c6f3e-4a47-4c8e-9d37-2f4c1b8a3f10"})
    contract.check("POST", "/v1/feedback", 201, "application/json", feedback)

    with pytest.raises(ContractViolation, match="id"):
        contract.check("POST", "/v1/feedback", 201, "application/json", b'{"id": 7}')
    with pytest.raises(ContractViolation, match="not declared"):
        contract.check("POST", "/v1/feedback", 200, "application/json", feedback)
    with pytest.raises(ContractViolation, match="no such operation"):
        contract.check("GET", "/v1/nowhere", 200, "application/json", b"{}")
    # A path parameter matches one segment only.
    with pytest.raises(ContractViolation, match="no such operation"):
        contract.check("GET", "/v1/tickets/a/b", 200, "application/json", b"{}")


def test_a_stream_event_off_its_schema_fails_the_check(document: dict[str, Any]) -> None:
    contract = Contract.of(document)
    path = "/v1/answer/stream"
    good = (
        b'event: token\ndata: {"text": "Hel"}\n\n'
        b'event: error\ndata: {"error": "x", "detail": "y", "provider": null, "model": null}\n\n'
    )
    contract.check("POST", path, 200, "text/event-stream", good)

    with pytest.raises(ContractViolation, match="text"):
        contract.check("POST", path, 200, "text/event-stream", b'event: token\ndata: {"t": 1}\n\n')
    with pytest.raises(ContractViolation, match="answer"):
        contract.check("POST", path, 200, "text/event-stream", b"event: done\ndata: {}\n\n")
    with pytest.raises(ContractViolation, match="undeclared event"):
        contract.check("POST", path, 200, "text/event-stream", b"event: ping\ndata: {}\n\n")
