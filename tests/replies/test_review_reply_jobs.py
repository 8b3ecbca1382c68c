"""Review drafts off the ingest path: ingest queues a job and returns, the job drafts with the
model (a scripted OpenAI-compatible server on loopback) and alerts, a repeated job does
neither twice, a queue that is down does not fail ingest, and each draft's model call is
recorded as the company's own ``review_reply`` interaction (its analytics only)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from backend.config import Settings
from backend.db.models import Interaction
from backend.ingest.indexer import IndexedReview, KnowledgeIndexer, document_uuid
from backend.ingest.jobs import build_broker
from backend.replies.jobs import register_review_drafts_task
from backend.replies.service import ReviewReplyService
from backend.stack import Stack
from backend.tenancy.company_id import CompanyId
from tests.conftest import CompanyWithKey
from tests.fault_servers import free_port
from tests.llm.payloads import OPENAI_MODEL_SNAPSHOT, openai_completion
from tests.llm.wire import ScriptedServer, json_reply
from tests.replies.platform_fakes import PlatformFakes
from tests.replies.test_review_replies_api import SLACK_URL, google_company, replies_of, review

MakeCompany = Callable[..., Awaitable[CompanyWithKey]]
MODEL_REPLY = "Dear Dana, we are sorry the delivery took so long; please write to help@acme.test."


@pytest.fixture
def llm_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings: Settings, llm_server: ScriptedServer) -> Settings:
    return settings.model_copy(
        update={
            # The alert endpoint sits behind a public name on https (production's policy).
            "egress_allow_loopback_for_tests": False,
            "llm_openai_base_url": f"{llm_server.url}/v1",
            "llm_openai_api_key": None,
            "llm_openai_model": "gpt-4o-mini",
            "llm_max_attempts": 1,
        }
    )


async def interactions_of(state: Stack, company_id: str) -> list[Interaction]:
    await state.assistant.flush_records()
    async with state.database.tenant_session(company_id) as session:
        return list((await session.execute(select(Interaction))).scalars())


async def assistant_analytics(client: httpx.AsyncClient, who: CompanyWithKey) -> dict:
    response = await client.get("/v1/analytics/assistant", headers=who.headers)
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


async def test_ingest_returns_before_the_model_answers_and_the_job_drafts_once(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_company: MakeCompany,
    fakes: PlatformFakes,
    llm_server: ScriptedServer,
) -> None:
    state: Stack = app.state.helpdesk
    acme = await google_company(app, make_company, "acme")
    globex = await google_company(app, make_company, "globex")
    response = await client.put(
        "/v1/review-replies/settings",
        headers=acme.who.headers,
        json={"alert_webhook_url": SLACK_URL, "alert_rating_threshold": 2},
    )
    assert response.status_code == 200, response.text
    globex_before = await assistant_analytics(client, globex.who)

    # The model answers only when the test says so: ingest must not wait for it.
    released = threading.Event()
    gated = openai_completion(MODEL_REPLY, prompt_tokens=120, completion_tokens=30)
    gated.gate = released
    llm_server.script(gated)
    angry = review("Late-1", "The delivery took three weeks and nobody answered.", 1.0)
    try:
        counts = await acme.indexer.index(acme.who.company_id, [angry])
        assert counts.upserted == 1
        assert await replies_of(client, acme) == []  # indexed; its draft is still pending
        assert fakes.to("hooks.slack.com") == []
    finally:
        released.set()
    await state.jobs.finish_in_process()

    (draft,) = await replies_of(client, acme)
    assert draft["review_id"] == "review:Late-1" and draft["state"] == "draft"
    assert draft["draft"] == MODEL_REPLY and draft["alert_status"] == "sent"
    assert len(fakes.to("hooks.slack.com")) == 1
    assert len(llm_server.requests) == 1

    # The model call is the company's interaction: the same task as POST /v1/review-reply,
    # no API key (the service's own call), about this review.
    (recorded,) = await interactions_of(state, acme.who.company_id)
    assert recorded.task == "review_reply" and recorded.api_key_id is None
    assert (recorded.provider, recorded.model) == ("openai", OPENAI_MODEL_SNAPSHOT)
    assert (recorded.prompt_tokens, recorded.completion_tokens) == (120, 30)
    assert recorded.cost_usd > 0 and recorded.cache_hit is False
    assert recorded.ticket_ref == "review:Late-1" and recorded.answer == MODEL_REPLY
    usage = await assistant_analytics(client, acme.who)
    assert [(t["task"], t["calls"]) for t in usage["by_task"]] == [("review_reply", 1)]
    (spent,) = usage["by_provider"]
    assert spent["provider"] == "openai" and spent["prompt_tokens"] == 120
    assert spent["completion_tokens"] == 30 and spent["cost_usd"] > 0
    # Another company's analytics and interactions are untouched.
    assert await assistant_analytics(client, globex.who) == globex_before
    assert await interactions_of(state, globex.who.company_id) == []

    # The same job delivered again (a worker died before acknowledging it): no second model
    # call, draft, alert or interaction.
    document_id = document_uuid(acme.who.company_id, "google_business", "review:Late-1")
    await state.replies.enqueue_drafts(CompanyId(acme.who.company_id), [document_id])
    await state.replies.enqueue_drafts(CompanyId(acme.who.company_id), [document_id])
    await state.jobs.finish_in_process()
    assert len(llm_server.requests) == 1
    assert len(fakes.to("hooks.slack.com")) == 1
    assert len(await replies_of(client, acme)) == 1
    assert len(await interactions_of(state, acme.who.company_id)) == 1

    # A customer-audience token sees neither the drafts nor the analytics.
    minted = await client.post(
        "/v1/widget-tokens", headers=acme.who.headers, json={"audience": "customer"}
    )
    assert minted.status_code == 201, minted.text
    customer = {
        "Authorization": f"Bearer {minted.json()['token']}",
        "X-Company-ID": acme.who.company_id,
    }
    for path in (
        "/v1/review-replies",
        f"/v1/review-replies/{draft['id']}",
        "/v1/analytics/assistant",
    ):
        response = await client.get(path, headers=customer)
        assert response.status_code == 403, (path, response.text)


async def test_a_failing_model_or_queue_does_not_fail_ingest(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_company: MakeCompany,
    llm_server: ScriptedServer,
) -> None:
    state: Stack = app.state.helpdesk
    acme = await google_company(app, make_company, "acme")

    # The model provider fails: ingest is not affected, and the reply still enters the
    # queue with the route's last resort (the extractive composer), recorded as such.
    llm_server.script(json_reply({"error": {"message": "overloaded"}}, status=500))
    counts = await acme.indexer.index(
        acme.who.company_id, [review("Cold-1", "The food arrived cold and late.", 2.0)]
    )
    assert counts.upserted == 1
    await state.jobs.finish_in_process()
    (draft,) = await replies_of(client, acme)
    assert draft["review_id"] == "review:Cold-1" and draft["draft"]
    assert draft["alert_status"] == "no_webhook"
    (recorded,) = await interactions_of(state, acme.who.company_id)
    assert recorded.task == "review_reply" and recorded.provider == "extractive"

    # The job queue is down (nothing listens on its port): the review is still indexed.
    live = state.replies
    down = register_review_drafts_task(build_broker(f"redis://127.0.0.1:{free_port()}/0", None))
    unqueued = ReviewReplyService(
        database=live.database,
        connectors=live.connectors,
        egress=live.egress,
        secrets=live.secrets,
        clock=live.clock,
        drafter=live.drafter,
        enqueue_drafts=down,
        caller=live.caller,
        limits=live.limits,
    )
    parts = state.sync.parts
    indexer = KnowledgeIndexer(
        database=state.database,
        vectors=parts.vectors,
        dense=parts.dense,
        sparse=parts.sparse,
        blobs=parts.blobs,
        connector_id=acme.connector_id,
        reviews_indexed=unqueued.on_reviews_indexed,
    )
    counts = await indexer.index(
        acme.who.company_id, [review("Lost-2", "Nobody picked up the phone.", 1.0)]
    )
    assert counts.upserted == 1 and counts.failed == 0
    documents = (await client.get("/v1/documents", headers=acme.who.headers)).json()
    assert "review:Lost-2" in {d["external_id"] for d in documents}
    assert [r["review_id"] for r in await replies_of(client, acme)] == ["review:Cold-1"]


async def test_the_job_acts_on_the_review_as_it_is_when_it_runs(
    app: FastAPI,
    client: httpx.AsyncClient,
    make_company: MakeCompany,
    llm_server: ScriptedServer,
) -> None:
    """The message holds only ids: a review answered by its owner (or deleted) before its
    job ran gets no draft, and another company's id reaches nothing."""
    state: Stack = app.state.helpdesk
    acme = await google_company(app, make_company, "acme")
    globex = await google_company(app, make_company, "globex")
    queued: list[uuid.UUID] = []

    async def hold(_company_id: CompanyId, reviews: list[IndexedReview]) -> None:
        queued.extend(r.document_id for r in reviews)  # what the job's message would carry

    parts = state.sync.parts
    holding = KnowledgeIndexer(
        database=state.database,
        vectors=parts.vectors,
        dense=parts.dense,
        sparse=parts.sparse,
        blobs=parts.blobs,
        connector_id=acme.connector_id,
        reviews_indexed=hold,
    )
    first = review("Gone-1", "Broken on arrival.", 1.0)
    await holding.index(acme.who.company_id, [first])
    assert len(queued) == 1
    answered = first.model_copy(
        update={"metadata": {**first.metadata, "has_reply": True}, "status": "replied"}
    )
    await holding.index(acme.who.company_id, [answered])  # the owner replied meanwhile

    assert await state.replies.draft_reviews(CompanyId(acme.who.company_id), queued) == 0
    assert await state.replies.draft_reviews(CompanyId(globex.who.company_id), queued) == 0
    assert await replies_of(client, acme) == [] and await replies_of(client, globex) == []
    assert llm_server.requests == []
