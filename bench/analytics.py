"""Analytics latency over a million interactions: rollups, not scans.

Creates a scratch database (dropped at the end), migrates it, and fills it as the runtime
role, through row-level security and the rollup triggers, with ``--rows`` interactions of
one company spread over 90 days (six tasks, 5,000 distinct questions, latencies from a
skewed distribution, cache hits, tokens and cost) plus a tenth as many for a second
company, inserted with ``generate_series`` in batches as the recorder writes them. Then it
times what the analytics endpoints run — the rollup reads and the shaping into per-day
p50/p95, cache hit rates, usage and top questions — for a 90-day window, and, for scale,
the same figures computed by scanning the raw interactions.

    .venv/bin/python bench/analytics.py --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shlex
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from backend.db.provisioning import drop_database, provision_database, run_migrations
from backend.db.repositories import analytics as analytics_repo
from backend.db.session import Database
from backend.insight import analytics
from backend.tenancy import service
from bench.triage import cpu_flags, cpu_model

SUPERUSER_DSN = os.environ.get(
    "HELPDESK_TEST_SUPERUSER_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
COMPANY, OTHER = "bench-analytics", "bench-other"

FILL = """
INSERT INTO interactions (company_id, task, question, answer, provider, model, latency_ms,
                          prompt_tokens, completion_tokens, cost_usd, cache_hit, created_at)
SELECT :company,
       (ARRAY['answer','draft_reply','summarize','search','review_reply','similar'])[1 + i % 6],
       'question number ' || (i::bigint * 7919 % 5000),
       '',
       (ARRAY['extractive','openai','anthropic'])[1 + i % 3],
       'model',
       (20 + 3000 * power(random(), 3))::int,
       (i % 900), (i % 200), (i % 900) * 0.000002,
       i % 4 = 0,
       CAST(:now AS timestamptz)
           - make_interval(days => i % 89, secs => (i::bigint * 37 % 86400)::float8)
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS i
"""

RAW_SCAN = """
SELECT (created_at AT TIME ZONE 'UTC')::date AS day, task, count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms),
       avg(cache_hit::int)
FROM interactions WHERE created_at >= :since GROUP BY 1, 2
"""


async def fill(database: Database, company: str, rows: int, batch: int) -> float:
    now = datetime.now(UTC)
    started = time.perf_counter()
    for first in range(1, rows + 1, batch):
        async with database.tenant_session(company) as session:
            await session.execute(
                text(FILL),
                {
                    "company": company,
                    "first": first,
                    "last": min(first + batch - 1, rows),
                    "now": now,
                },
            )
    return time.perf_counter() - started


async def assistant_endpoint(database: Database, since: date, until: date) -> dict[str, Any]:
    """What GET /v1/analytics/assistant runs below HTTP: one tenant transaction, the rollup
    read, and the shaping into per-day and per-task percentiles and per-provider usage."""
    async with database.tenant_session(COMPANY) as session:
        rows = await analytics_repo.calls_by_day(session, since=since, until=until)
    return {
        "by_day": analytics.assistant_days(rows),
        "by_task": analytics.assistant_totals(rows),
        "by_provider": analytics.provider_days(rows),
    }


async def questions_endpoint(database: Database, since: date, until: date) -> dict[str, Any]:
    """What GET /v1/analytics/questions runs below HTTP."""
    async with database.tenant_session(COMPANY) as session:
        rows = await analytics_repo.top_questions(
            session, since=since, until=until, task="answer", limit=20
        )
    return {"questions": rows}


async def timed(
    endpoint: Any, database: Database, since: date, until: date, repeat: int
) -> tuple[dict[str, Any], list[float]]:
    report = await endpoint(database, since, until)  # warm the buffer cache
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        report = await endpoint(database, since, until)
        samples.append(time.perf_counter() - started)
    return report, samples


def timings(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"helpdesk_bench_analytics_{secrets.token_hex(3)}"
    await provision_database(SUPERUSER_DSN, database=name)
    base = SUPERUSER_DSN.split("://", 1)[1].split("@", 1)[1].rsplit("/", 1)[0]
    try:
        await run_migrations(f"postgresql+asyncpg://helpdesk_owner@{base}/{name}")
        database = Database.from_url(
            f"postgresql+asyncpg://helpdesk_app@{base}/{name}", pool_size=2
        )
        try:
            for company in (COMPANY, OTHER):
                await service.create_company(
                    database, company_id=company, name=company, actor="bench"
                )
            fill_seconds = await fill(database, COMPANY, args.rows, args.batch)
            await fill(database, OTHER, args.rows // 10, args.batch)
            async with database.tenant_session(COMPANY) as session:
                await session.execute(text("ANALYZE"))
                rollup_rows = (
                    await session.execute(text("SELECT count(*) FROM analytics_calls_daily"))
                ).scalar_one()
                raw_rows = (
                    await session.execute(text("SELECT count(*) FROM interactions"))
                ).scalar_one()
            until = datetime.now(UTC).date()
            since = until - timedelta(days=89)
            report, samples = await timed(assistant_endpoint, database, since, until, args.repeat)
            top, question_samples = await timed(
                questions_endpoint, database, since, until, args.repeat
            )
            async with database.tenant_session(COMPANY) as session:
                question_rows = (
                    await session.execute(text("SELECT count(*) FROM analytics_questions_weekly"))
                ).scalar_one()
            calls = sum(t["calls"] for t in report["by_task"])
            scan_samples = []
            for _ in range(3):
                started = time.perf_counter()
                async with database.tenant_session(COMPANY) as session:
                    await session.execute(
                        text(RAW_SCAN), {"since": datetime.combine(since, datetime.min.time(), UTC)}
                    )
                scan_samples.append(time.perf_counter() - started)
        finally:
            await database.dispose()
    finally:
        await drop_database(SUPERUSER_DSN, name)
    return {
        "benchmark": "analytics",
        "interactions": int(raw_rows),
        "other_company_interactions": args.rows // 10,
        "calls_counted_by_rollup": calls,
        "rollup_rows_read": int(rollup_rows),
        "window_days": 90,
        "fill_seconds_with_triggers": round(fill_seconds, 1),
        "fill_rows_per_second": round(args.rows / fill_seconds),
        "assistant_endpoint": timings(samples),
        "questions_endpoint": timings(question_samples),
        "question_rollup_rows": int(question_rows),
        "top_question": top["questions"][0],
        "raw_scan_for_comparison": timings(scan_samples),
        "repeat": args.repeat,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "cpu": cpu_model(),
            "cpu_flags": cpu_flags(),
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print(
        json.dumps(
            {
                k: report[k]
                for k in (
                    "interactions",
                    "calls_counted_by_rollup",
                    "assistant_endpoint",
                    "questions_endpoint",
                    "raw_scan_for_comparison",
                    "fill_seconds_with_triggers",
                )
            },
            indent=2,
        )
    )
    args.output.mkdir(parents=True, exist_ok=True)
    target = args.output / "analytics.json"
    target.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
