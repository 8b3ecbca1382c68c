"""Sync runs add up counts by reason (skipped items, attachment outcomes), tenant-scoped."""

from __future__ import annotations

import uuid

from backend.db.repositories import connectors as connector_repo
from backend.db.repositories import sync_runs as run_repo
from backend.db.session import Database
from tests.conftest import new_company_id
from tests.db.test_row_level_security import seed_company


async def test_counts_by_reason_add_up_and_stay_with_their_company(database: Database) -> None:
    company, other = new_company_id("counts-a"), new_company_id("counts-b")
    await seed_company(database, company)
    await seed_company(database, other)
    async with database.tenant_session(company) as session:
        connector = await connector_repo.insert_connector(
            session,
            company_id=company,
            platform="freshdesk",
            name=f"fd-{uuid.uuid4()}",
            settings={},
            credentials_encrypted=None,
            schedule_minutes=None,
            enabled=True,
        )
        run = await run_repo.insert_sync_run(
            session,
            company_id=company,
            connector_id=connector.id,
            trigger="manual",
            status="running",
        )
    for page_counts in (
        {"skipped.draft_article": 2, "attachments_indexed": 3},
        {},
        {"attachments_indexed": 1, "attachments_skipped.image": 4},
    ):
        async with database.tenant_session(company) as session:
            await run_repo.add_sync_counts(
                session, run.id, fetched=1, upserted=1, unchanged=0, deleted=0, failed=0,
                errors=[], counts=page_counts,
            )  # fmt: skip
    async with database.tenant_session(company) as session:
        stored = await run_repo.get_sync_run(session, run.id)
        assert stored is not None
        assert stored.fetched == 3
        assert stored.counts == {
            "skipped.draft_article": 2,
            "attachments_indexed": 4,
            "attachments_skipped.image": 4,
        }
    # Another company neither sees the run nor can add to its counts.
    async with database.tenant_session(other) as session:
        assert await run_repo.get_sync_run(session, run.id) is None
        await run_repo.add_sync_counts(
            session, run.id, fetched=9, upserted=0, unchanged=0, deleted=0, failed=0,
            errors=[], counts={"attachments_indexed": 100},
        )  # fmt: skip
    async with database.tenant_session(company) as session:
        stored = await run_repo.get_sync_run(session, run.id)
        assert stored is not None
        assert stored.fetched == 3 and stored.counts["attachments_indexed"] == 4
