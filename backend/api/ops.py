"""Operations: liveness, readiness, Prometheus metrics and an SSE pass-through probe."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from backend.api.dependencies import StateDep
from backend.embeddings.dense import SentenceTransformerEncoder
from backend.errors import NotFound, Unauthorized

router = APIRouter(tags=["operations"])

_READINESS_TIMEOUT_S = 3.0


class CheckOut(BaseModel):
    ok: bool
    ms: float = Field(description="How long the check took, in milliseconds.")
    error: str | None = Field(
        default=None, description="When not ok: the kind of failure (an exception's name)."
    )


class ReadinessOut(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, CheckOut] = Field(description="By store: postgres, redis, qdrant, blobs.")
    details: dict[str, Any] = Field(
        description="`query_runtime`: how search queries are encoded on this machine."
    )


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process is up and serving. Touches no store."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadinessOut,
    responses={503: {"model": ReadinessOut, "description": "A configured store is unreachable."}},
)
async def readyz(state: StateDep, response: Response) -> ReadinessOut:
    """Readiness: checks each configured store (Postgres, and Redis/Qdrant/object store when
    configured) within a few seconds. 503 with the failing checks when one is down.
    `details.query_runtime` says how search queries are encoded on this machine (int8 or
    fp32 ONNX, or PyTorch), why, and the CPU flags that decided it."""

    async def run(check: Any) -> CheckOut:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(check(), timeout=_READINESS_TIMEOUT_S)
        except Exception as exc:
            return CheckOut(
                ok=False,
                error=type(exc).__name__,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )
        return CheckOut(ok=True, ms=round((time.perf_counter() - started) * 1000, 1))

    names = list(state.readiness_checks)
    results = await asyncio.gather(*(run(state.readiness_checks[n]) for n in names))
    checks = dict(zip(names, results, strict=True))
    ready = all(r.ok for r in results)
    details: dict[str, Any] = {}
    if isinstance(state.dense, SentenceTransformerEncoder):
        details["query_runtime"] = state.dense.query_runtime_details()
    response.status_code = 200 if ready else 503
    return ReadinessOut(status="ready" if ready else "unavailable", checks=checks, details=details)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
            "description": "The Prometheus text exposition format.",
        },
        401: {"description": "Missing or wrong metrics token."},
        404: {"description": "No HELPDESK_METRICS_TOKEN is set: metrics are not served here."},
    },
)
async def metrics(
    state: StateDep,
    authorization: Annotated[
        str | None, Header(description="`Bearer <HELPDESK_METRICS_TOKEN>`.")
    ] = None,
) -> Response:
    """Prometheus metrics (request counts and latency by route, per-company counters), for
    a scraper holding `HELPDESK_METRICS_TOKEN`. Without that setting they are not served on
    the API port at all (`HELPDESK_METRICS_BIND` serves them on a separate listener)."""
    configured = state.settings.metrics_token
    if configured is None or not configured.get_secret_value():
        raise NotFound("Not Found", code="not_found")
    scheme, _, token = (authorization or "").partition(" ")
    expected = configured.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise Unauthorized("a valid metrics token is required", code="invalid_metrics_token")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class Heartbeat(BaseModel):
    seq: int = Field(description="0, 1, 2, ...: the event's id too.")
    t: float = Field(description="Server time, Unix seconds.")


HEARTBEATS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/event-stream": {
                "itemSchema": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["event", "data"],
                            "properties": {
                                "event": {"const": "heartbeat"},
                                "id": {"type": "string"},
                                "data": {
                                    "type": "string",
                                    "contentMediaType": "application/json",
                                    "contentSchema": Heartbeat.model_json_schema(),
                                },
                            },
                        }
                    ]
                }
            }
        },
        "description": "`heartbeat` events.",
    }
}


@router.get("/healthz/stream", response_class=StreamingResponse, responses=HEARTBEATS)
async def healthz_stream(
    count: Annotated[int, Query(ge=1, le=100)] = 5,
    interval_ms: Annotated[int, Query(ge=0, le=5000)] = 200,
) -> StreamingResponse:
    """Server-Sent Events probe: `count` heartbeat events, `interval_ms` apart. Lets operators
    verify that proxies in front of the API pass streams through unbuffered."""

    async def events() -> AsyncIterator[bytes]:
        for i in range(count):
            if i:
                await asyncio.sleep(interval_ms / 1000)
            data = Heartbeat(seq=i, t=round(time.time(), 3)).model_dump_json()
            yield f"event: heartbeat\nid: {i}\ndata: {data}\n\n".encode()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
