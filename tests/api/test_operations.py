"""Health, readiness, metrics, request ids and logs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.conftest import METRICS_TOKEN, CompanyWithKey

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]


async def test_healthz_and_readyz(client: httpx.AsyncClient, app: object) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["postgres"]["ok"] is True
    # How queries are encoded on this CPU, and why (the app warmed the model up at start).
    runtime = ready.json()["details"]["query_runtime"]
    assert runtime["requested"] == "onnx-int8"
    assert runtime["runtime"] == "onnx-int8"
    vnni = any(runtime["cpu"][flag] for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))
    forced = app.state.helpdesk.settings.embedding_int8_weights  # type: ignore[attr-defined]
    expected = ("s8" if vnni else "u8") if forced == "auto" else forced
    assert runtime["variant"] == f"onnx-int8-{expected}"
    assert runtime["reason"].startswith("int8: ")
    assert runtime["refused"] == []
    assert runtime["probe_agreement"]["worst"] >= 0.98


async def test_readyz_reports_a_failing_store(client: httpx.AsyncClient, app: object) -> None:
    async def broken() -> None:
        raise ConnectionError("down")

    app.state.helpdesk.readiness_checks["redis"] = broken  # type: ignore[attr-defined]
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"] == {
        "ok": False,
        "error": "ConnectionError",
        "ms": body["checks"]["redis"]["ms"],
    }
    assert body["checks"]["postgres"]["ok"] is True


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "req-123"})
    assert echoed.headers["x-request-id"] == "req-123"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(generated.headers["x-request-id"]) == 32


async def test_metrics_count_routes_and_companies_without_secrets(
    client: httpx.AsyncClient, make_company: MakeCompany
) -> None:
    acme = await make_company("metrics")
    await client.get("/v1/company", headers=acme.headers)
    await client.get("/v1/company/does-not-exist", headers=acme.headers)
    assert (await client.get("/metrics")).status_code == 401  # company ids: not public
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_metrics_token"
    scraper = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    text = (await client.get("/metrics", headers=scraper)).text
    assert 'helpdesk_http_requests_total{method="GET",route="/v1/company",status="200"}' in text
    assert 'route="unmatched"' in text  # unknown paths never become label values
    assert f'helpdesk_company_requests_total{{company="{acme.company_id}"}}' in text
    assert "helpdesk_http_request_duration_seconds_bucket" in text
    assert acme.api_key not in text


async def test_access_log_is_json_with_context_and_no_secret(
    client: httpx.AsyncClient, make_company: MakeCompany, capfd: pytest.CaptureFixture[str]
) -> None:
    import orjson

    acme = await make_company("logs")
    capfd.readouterr()
    await client.get("/v1/company", headers={**acme.headers, "X-Request-ID": "log-test-1"})
    err = capfd.readouterr().err
    assert acme.api_key not in err
    lines = [orjson.loads(line) for line in err.splitlines() if line.startswith("{")]
    entry = next(e for e in lines if e.get("request_id") == "log-test-1")
    assert entry["route"] == "/v1/company"
    assert entry["status"] == 200
    assert entry["company_id"] == acme.company_id
    assert entry["duration_ms"] >= 0


def test_secrets_are_redacted_from_log_events() -> None:
    from backend.observability.logging import redact_secrets

    key = "hdk_" + "A1b2C3d4" + "z" * 35
    event = redact_secrets(
        None, "info", {"event": f"used {key}", "api_key": "x", "password": "p", "note": "fine"}
    )
    assert event["api_key"] == "[redacted]"
    assert event["password"] == "[redacted]"
    assert key not in event["event"]
    assert event["note"] == "fine"


async def test_sse_probe_streams_events(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/healthz/stream?count=3&interval_ms=0") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = (await response.aread()).decode()
    assert body.count("event: heartbeat") == 3


async def test_openapi_documents_the_endpoints(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in ("/v1/company", "/admin/companies", "/readyz", "/metrics"):
        assert path in spec["paths"]
    op = spec["paths"]["/v1/company"]["get"]
    assert op["description"]
    assert "401" in op["responses"]
    assert (await client.get("/docs")).status_code == 200
