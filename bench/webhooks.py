"""Webhook received → item searchable, under a steady 20 events/s.

A Freshdesk replay server on 127.0.0.1 (``bench/freshdesk_replay.py``, StackFAQ tickets
with one agent reply each) plays the platform. The stack is the one ``open_stack`` wires
(real Postgres, the embedded vector engine, the local object store), and the webhook
service is the app's with two changes: its drain task runs on taskiq's in-memory broker, and
there is no local rate budget (this measures our pipeline, not Freshdesk's per-minute quota,
which on the smallest plan — 50 calls a minute — could not serve 20 re-fetches a second
anyway). Deliveries go to ``WebhookService.receive`` (what the HTTP handler calls after
reading the body). A fresh company gets a Freshdesk connector and a webhook secret; then one
automation-rule webhook per ticket is delivered at ``--rate`` events/s for ``--seconds``.
Each ticket is new to the index, so every event costs a full re-fetch (ticket +
conversations over HTTP), embed and write. Tickets are served as resolved by default (the
case webhooks are for: a solved ticket citable at once); ``--ticket-status open`` keeps the
export's open status, and then every ticket is also triaged on ingest (one suggestion at a
time, after its row is committed, but ahead of the next batch). ``--change status`` measures
the commoner case instead: the tickets are indexed first (unmeasured), then each is closed on
the platform and its webhook fires; the chunks' texts are unchanged, so their dense vectors
are kept and the model is not called (the replay's request count includes the first pass).

An item counts as searchable when its ``documents`` row is committed: ingest
writes the object store and the vectors first, the row last. With keywords first (the
default, ``HELPDESK_WEBHOOK_KEYWORDS_FIRST``) that row is committed once the item's
sparse vectors are in the index, and the benchmark reports a second latency: until its
dense vectors are written too (``dense_pending`` false). To show "searchable" is
real, every tenth ticket is searched for by its subject (sparse search, top 10) the moment
its row is seen. The watcher polls every ``--poll-ms`` (that much is added to each latency
at most). ``--dense-with-keywords`` measures the old way (both vectors in one write).

Target: p95 ≤ 2 s. Results go to ``bench/results/webhooks.{md,json}``, with the command,
machine and date.

    .venv/bin/python bench/webhooks.py                       # 20 events/s for 30 s
    .venv/bin/python bench/webhooks.py --rate 20 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from taskiq import InMemoryBroker

from backend.adapters.http import RateLimiter
from backend.config import Settings
from backend.db.provisioning import drop_database, provision_database, run_migrations
from backend.egress import StaticResolver
from backend.embeddings.dense import SentenceTransformerEncoder
from backend.ingest.indexer import document_uuid
from backend.stack import Stack, open_stack
from backend.tenancy import service as tenancy
from backend.tenancy.company_id import CompanyId
from backend.vectors import SearchMode
from backend.webhooks.jobs import register_drain_task
from backend.webhooks.platforms import InboundWebhook
from backend.webhooks.service import WebhookService

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.freshdesk_replay import (
    API_KEY,
    DOMAIN,
    FreshdeskDataset,
    LoopbackTransport,
    running_replay,
)
from bench.ingest_throughput import machine

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_P95_S = 2.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _url(superuser_dsn: str, role: str, database: str) -> str:
    host = superuser_dsn.split("://", 1)[1].split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://{role}@{host}/{database}"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    events = int(args.rate * args.seconds)
    dataset = FreshdeskDataset.load(tickets=events)
    if args.ticket_status == "resolved":
        for ticket in dataset.tickets:
            ticket["status"] = 4  # Freshdesk's "Resolved"
    if len(dataset.tickets) < events:
        raise SystemExit(f"the dataset has {len(dataset.tickets)} tickets; ask for fewer events")
    name = f"helpdesk_bench_webhooks_{secrets.token_hex(3)}"
    await provision_database(args.superuser_dsn, database=name)
    await run_migrations(_url(args.superuser_dsn, "helpdesk_owner", name))
    host = machine()
    started_at = datetime.now(UTC)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=_url(args.superuser_dsn, "helpdesk_app", name),
        auto_migrate=False,
        data_dir=Path(tempfile.mkdtemp(prefix="helpdesk-bench-webhooks-")),
        log_level="WARNING",
        scheduler_enabled=False,
        # The replay answers on loopback, reachable only with this test-only setting.
        egress_allow_loopback_for_tests=True,
        webhook_keywords_first=not args.dense_with_keywords,
    )
    try:
        with running_replay(dataset) as replay:
            async with open_stack(
                settings,
                http_transport=LoopbackTransport({DOMAIN: replay.port}),
                egress_resolver=StaticResolver({DOMAIN: "127.0.0.1"}),
            ) as state:
                if isinstance(state.dense, SentenceTransformerEncoder):
                    await state.dense.warm_up()
                measured = await _measure(args, state, dataset, events)
            measured["replay_requests"] = replay.request_count
    finally:
        await drop_database(args.superuser_dsn, name)
    return {
        "benchmark": "webhooks",
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "date": started_at.isoformat(timespec="seconds"),
        "machine": host,
        "settings": {
            "rate_per_s": args.rate,
            "seconds": args.seconds,
            "events": events,
            "ticket_status": args.ticket_status,
            "change": args.change,
            "poll_ms": args.poll_ms,
            "webhook_coalesce_s": settings.webhook_coalesce_s,
            "webhook_drain_batch": settings.webhook_drain_batch,
            "webhook_keywords_first": settings.webhook_keywords_first,
            "embedding_model": settings.embedding_model,
            "database": "postgres on 127.0.0.1:5432 (fresh database)",
            "vectors": "qdrant-edge (embedded, on disk)",
        },
        "target_p95_s": TARGET_P95_S,
        **measured,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


async def _measure(
    args: argparse.Namespace, state: Stack, dataset: FreshdeskDataset, events: int
) -> dict[str, Any]:
    assert state.webhooks is not None
    live = state.webhooks
    company_id = f"bench-{secrets.token_hex(3)}"
    await tenancy.create_company(state.database, company_id=company_id, name="Bench", actor="bench")
    async with state.for_tenant(CompanyId(company_id)) as scope:
        connector = await state.connectors.create(
            scope,
            platform="freshdesk",
            name="StackFAQ",
            settings={"domain": DOMAIN},
            credentials={"api_key": API_KEY},
            schedule_minutes=None,
            actor="bench",
        )
    broker = InMemoryBroker()
    service = WebhookService(
        database=live.database,
        connectors=live.connectors,
        secret_box=live.secret_box,
        parts=live.parts,
        egress=live.egress,
        clock=live.clock,
        settings=live.settings,
        enqueue=register_drain_task(broker),
        limiter_for=lambda _connector: RateLimiter.unlimited(clock=live.clock),
    )
    broker.state.webhook_service = service
    await broker.startup()
    secret = await service.set_secret(company_id, connector.id, None, actor="bench")
    assert secret is not None
    sent: dict[str, float] = {}
    searchable: dict[str, float] = {}
    embedded: dict[str, float] = {}
    queued: list[int] = []
    subjects = {f"ticket:{t['id']}": str(t["subject"]) for t in dataset.tickets[:events]}
    probes: list[asyncio.Task[bool]] = []

    async def found_by_subject(external_id: str) -> bool:
        hits = await state.vectors.query(
            company_id,
            sparse=state.sync.parts.sparse.encode_query(subjects[external_id]),
            limit=10,
            mode=SearchMode.SPARSE,
        )
        wanted = str(document_uuid(company_id, "freshdesk", external_id))
        return any(hit.payload.document_id == wanted for hit in hits)

    async def deliver(ticket_id: int) -> None:
        sent[f"ticket:{ticket_id}"] = time.monotonic()
        received = await service.receive(
            str(connector.id),
            InboundWebhook(
                headers={"x-helpdesk-webhook-secret": secret},
                query={},
                body=json.dumps({"ticket_id": str(ticket_id)}).encode(),
            ),
        )
        queued.append(received.queued)

    async def watch(status: str) -> None:
        while len(embedded) < events:
            async with state.database.tenant_session(company_id) as session:
                rows = await session.execute(
                    text("SELECT external_id, dense_pending FROM documents WHERE status = :s"),
                    {"s": status},
                )
            now = time.monotonic()
            for external_id, dense_pending in rows:
                if external_id not in searchable:
                    searchable[external_id] = now
                    if len(searchable) % 10 == 1:
                        probes.append(asyncio.create_task(found_by_subject(external_id)))
                if not dense_pending:
                    embedded.setdefault(external_id, now)
            await asyncio.sleep(args.poll_ms / 1000)

    async def paced_round(status: str, rate: float) -> float:
        """Deliver one event per ticket at ``rate``; wait until every ticket is stored with
        ``status`` and its dense vectors; returns the seconds spent sending."""
        for mark in (sent, searchable, embedded):
            mark.clear()
        probes.clear()
        watcher = asyncio.create_task(watch(status))
        begin = time.monotonic()
        deliveries = []
        for index, ticket in enumerate(dataset.tickets[:events]):
            # A steady rate: each event at its own slot, however long the previous took.
            await asyncio.sleep(max(0.0, begin + index / rate - time.monotonic()))
            deliveries.append(asyncio.create_task(deliver(ticket["id"])))
        await asyncio.gather(*deliveries)
        sending_s = time.monotonic() - begin
        await asyncio.wait_for(watcher, timeout=args.seconds + 600)
        return sending_s

    status = {"resolved": "resolved", "open": "open"}[args.ticket_status]
    if args.change == "status":
        # The tickets are indexed first (not measured); then each is closed on the platform
        # and its webhook fires: the case most webhooks are, an update of a known ticket.
        await paced_round(status, rate=1000.0)
        queued.clear()
        for ticket in dataset.tickets[:events]:
            ticket["status"] = 5  # Freshdesk's "Closed"
        status = "closed"
    sending_s = await paced_round(status, rate=args.rate)
    await broker.shutdown()
    found = await asyncio.gather(*probes)
    return {
        "accepted": sum(queued),
        "sending_s": round(sending_s, 2),
        "achieved_rate_per_s": round(events / sending_s, 2),
        "latency_s": _summary([searchable[key] - sent[key] for key in sent]),
        "dense_latency_s": _summary([embedded[key] - sent[key] for key in sent]),
        "searched_when_seen": {"searched": len(found), "found": sum(found)},
    }


def _summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(latencies, 0.50), 3),
        "p95": round(percentile(latencies, 0.95), 3),
        "p99": round(percentile(latencies, 0.99), 3),
        "max": round(max(latencies), 3),
        "mean": round(statistics.fmean(latencies), 3),
    }


def render_markdown(result: dict[str, Any]) -> str:
    m, s, lat = result["machine"], result["settings"], result["latency_s"]
    dense, probes = result["dense_latency_s"], result["searched_when_seen"]
    verdict = "meets" if lat["p95"] <= result["target_p95_s"] else "misses"
    first = "keywords first" if s["webhook_keywords_first"] else "both vectors in one write"
    return "\n".join(
        [
            "# Webhook received → item searchable",
            "",
            f"- Command: `{result['command']}`",
            f"- Date: {result['date']}",
            f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM; "
            f"Python {m['python']}, torch {m['torch']}; load average at start "
            f"{m['load_average_at_start']}, at end {result['load_average_at_end']} (shared "
            "machine)",
            f"- Load: {s['events']} Freshdesk automation webhooks, one per "
            + (
                f"new {s['ticket_status']} ticket"
                if s.get("change", "new") == "new"
                else f"{s['ticket_status']} ticket already indexed and now closed"
            )
            + " at "
            f"{s['rate_per_s']}/s (achieved {result['achieved_rate_per_s']}/s); "
            f"{result['accepted']} accepted; {result['replay_requests']} requests to the "
            "replayed Freshdesk API",
            f"- Stack: open_stack, drains on taskiq's in-memory broker, no local rate budget, "
            f"{s['database']}, {s['vectors']}, "
            f"{s['embedding_model']}; coalescing window {s['webhook_coalesce_s']} s, drain batch "
            f"{s['webhook_drain_batch']}; {first}; watcher polls every {s['poll_ms']} ms",
            "",
            "| received → | p50 (s) | p95 (s) | p99 (s) | max (s) | mean (s) |",
            "|---|---:|---:|---:|---:|---:|",
            f"| searchable (row committed) | {lat['p50']} | {lat['p95']} | {lat['p99']} | "
            f"{lat['max']} | {lat['mean']} |",
            f"| dense vectors written too | {dense['p50']} | {dense['p95']} | {dense['p99']} | "
            f"{dense['max']} | {dense['mean']} |",
            "",
            f"Searched for by subject (sparse, top 10) the moment their row was seen: "
            f"{probes['found']} of {probes['searched']} found.",
            "",
            f"**p95 {lat['p95']} s to searchable: {verdict} the {result['target_p95_s']} s "
            "target.**",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--poll-ms", type=float, default=20.0)
    parser.add_argument("--ticket-status", choices=("resolved", "open"), default="resolved")
    parser.add_argument(
        "--change",
        choices=("new", "status"),
        default="new",
        help="new: every event is a ticket new to the index; status: the tickets are indexed "
        "first, then every event is the same ticket closed",
    )
    parser.add_argument(
        "--dense-with-keywords",
        action="store_true",
        help="write both vectors at once (HELPDESK_WEBHOOK_KEYWORDS_FIRST=false)",
    )
    parser.add_argument(
        "--superuser-dsn",
        default=os.environ.get(
            "HELPDESK_TEST_SUPERUSER_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a fresh database is created (and dropped) through this connection",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "webhooks")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result["latency_s"]), f"achieved {result['achieved_rate_per_s']}/s")
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        args.output.with_suffix(".md").write_text(render_markdown(result))
        print(f"wrote {args.output.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
