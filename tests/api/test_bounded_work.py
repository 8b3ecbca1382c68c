"""One big request cannot stall every tenant: /healthz stays fast while another client sends
the largest draft request the API accepts, back to back (bench/healthz_under_load.py, with
the server in its own process).

The bound asserted here is generous (the test machine is small and shared): it catches the
failure this guards against — pure-Python work over a multi-megabyte body on the event loop,
which held /healthz for seconds — without flaking on a busy box. The measured figures are
recorded in bench/results/healthz_under_load.md.
"""

from __future__ import annotations

from pathlib import Path

from backend.db.provisioning import DatabaseUrls
from bench.healthz_under_load import measure

HEALTHZ_P95_BOUND_MS = 200.0


async def test_healthz_stays_fast_under_the_largest_draft_requests(
    database_urls: DatabaseUrls, tmp_path: Path
) -> None:
    result = await measure(database_urls.runtime_url, tmp_path, duration=8.0, warmup=2.0)
    print(result)
    assert result["body_bytes"] > 2_000_000  # the largest body the API accepts
    assert result["draft_statuses"] == [200]
    assert result["draft_requests"] >= 2
    assert result["healthz_under_load"]["samples"] >= 50
    assert result["healthz_under_load"]["p95_ms"] < HEALTHZ_P95_BOUND_MS, result
