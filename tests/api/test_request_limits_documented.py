"""Every request body field has a documented bound: strings a maxLength (or an enum, a
format or a pattern of bounded length), lists a maxItems. Free-form objects (connector and
company settings) are bounded by the body limit, which the schema documents too (413)."""

from __future__ import annotations

from typing import Any

from backend.app import create_app
from backend.config import Settings

BOUNDED_FORMATS = {"uuid", "date-time", "date", "email"}


def _spec() -> dict[str, Any]:
    return create_app(Settings(_env_file=None, environment="test")).openapi()  # type: ignore[call-arg]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = spec["components"]["schemas"][name]
    return schema


def _unbounded(
    spec: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]
) -> list[str]:
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return []
        seen = seen | {schema["$ref"]}
    schema = _resolve(spec, schema)
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += _unbounded(spec, option, where, seen)
    kind = schema.get("type")
    if kind == "string":
        bounded = (
            "maxLength" in schema
            or "enum" in schema
            or "const" in schema
            or schema.get("format") in BOUNDED_FORMATS
        )
        if not bounded:
            found.append(where)
    elif kind == "array":
        if "maxItems" not in schema:
            found.append(where)
        found += _unbounded(spec, schema.get("items", {}), f"{where}[]", seen)
    elif kind == "object" or "properties" in schema:
        for name, prop in schema.get("properties", {}).items():
            found += _unbounded(spec, prop, f"{where}.{name}", seen)
    return found


def test_every_request_field_is_bounded_in_the_openapi_schema() -> None:
    spec = _spec()
    unbounded: list[str] = []
    bodies = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                bodies += 1
                unbounded += _unbounded(spec, body["schema"], f"{method.upper()} {path}", set())
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("query", "path"):
                    where = f"{method.upper()} {path} ?{parameter['name']}"
                    unbounded += _unbounded(spec, parameter["schema"], where, set())
    assert bodies >= 15
    assert not unbounded, sorted(set(unbounded))


def test_body_limit_and_rate_limits_are_documented() -> None:
    spec = _spec()
    answer = spec["paths"]["/v1/answer"]["post"]["responses"]
    assert {"413", "422", "429"} <= answer.keys()
