"""A company's life after creation: suspension, reactivation and deletion from every store.

Suspending (``status = 'suspended'``) stops a company everywhere at once in this process and
within ``HELPDESK_AUTH_CACHE_SECONDS`` in the others: API keys and widget tokens get 403
``company_suspended`` (so no searches, answers or new tokens), its queued and running syncs
are cancelled, the scheduler skips it and a sync job that still reaches a worker is dropped.
Its data stays; reactivating restores access.

Deleting reaches all four stores (DESIGN §2) in an order that can be re-run after a crash:

1. Postgres: the company is suspended and its active sync runs cancelled (committed first,
   so nothing new starts and a running sync stops at its next page).
2. Inside the next tenant scope, Qdrant (the company's shard / collection), the object
   store (``{company}/…``) and the cache (``hd:{company}:*``: cached answers, the cache
   epoch, counters) are emptied through the scope's views;
3. and in that scope's one transaction every row of every tenant table is deleted (the
   company row last, which cascades to any table added later) and the ``company.delete``
   audit entry is written, so the rows and the record of their deletion commit together.
4. The vector, object and cache sweeps run once more (a sync page that was being written in
   step 2 cannot survive), this process forgets the company's credentials and its queued
   interaction records.

What is kept: the company's audit log. It is append-only (the service role cannot delete
from it), has no foreign key by design, and holds no customer content (erasures record a
hash of the identifier, not the identifier): it is the record that the company existed and
was deleted, by whom and when. The admin API still reads it
(``GET /admin/companies/{id}/audit-log``). The deletion is also logged as a structured
``company deleted`` line with the counts, for platform logs outside the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog

from backend.clock import Clock
from backend.db.models import AuditLogEntry, Company
from backend.db.repositories import companies as company_repo
from backend.db.repositories import sync_runs as run_repo
from backend.db.repositories.audit_log import append_audit_entry, list_audit_entries
from backend.errors import NotFound
from backend.tenancy.company_id import CompanyId
from backend.tenancy.scope import TenantScope, TenantStores

_log = structlog.get_logger("helpdesk.tenancy")

CompanyStatus = Literal["active", "suspended"]


class CredentialForgetter(Protocol):
    def clear(self) -> None: ...


class PendingRecords(Protocol):
    def discard_company(self, company_id: str) -> int: ...


@dataclass
class DeletionReport:
    company_id: str
    postgres_rows: dict[str, int] = field(default_factory=dict)
    cancelled_sync_runs: int = 0
    vector_points: int = 0
    blobs: int = 0
    cache_keys: int = 0

    def as_details(self) -> dict[str, Any]:
        return {
            "postgres_rows": self.postgres_rows,
            "cancelled_sync_runs": self.cancelled_sync_runs,
            "vector_points": self.vector_points,
            "blobs": self.blobs,
            "cache_keys": self.cache_keys,
        }


class CompanyLifecycle:
    """Suspension, reactivation and deletion; each Postgres step is one tenant scope."""

    def __init__(
        self,
        *,
        stores: TenantStores,
        clock: Clock,
        credentials: CredentialForgetter | None = None,
        pending_records: PendingRecords | None = None,
    ) -> None:
        self.stores = stores
        self.clock = clock
        self.credentials = credentials
        self.pending_records = pending_records

    async def _require(self, company_id: CompanyId) -> Company:
        async with self.stores.scope(company_id) as scope:
            company = await company_repo.get_company(scope.session, company_id)
        if company is None:
            raise NotFound(f"company {company_id!r} does not exist", code="company_not_found")
        return company

    async def set_status(
        self, company_id: CompanyId, status: CompanyStatus, *, actor: str, reason: str | None = None
    ) -> Company:
        """Suspend or reactivate; suspending also cancels the company's active syncs."""
        await self._require(company_id)
        async with self.stores.scope(company_id) as scope:
            session = scope.session
            company = await company_repo.get_company(session, company_id)
            assert company is not None
            previous = company.status
            await company_repo.set_company_status(session, company_id, status)
            cancelled = 0
            if status == "suspended":
                cancelled = await run_repo.cancel_active_sync_runs(
                    session, reason="company suspended", at=self.clock.now()
                )
            await append_audit_entry(
                session,
                company_id=company_id,
                actor=actor,
                action="company.suspend" if status == "suspended" else "company.reactivate",
                target=company_id,
                details={"previous": previous, "reason": reason, "cancelled_syncs": cancelled},
            )
            await session.flush()
            await session.refresh(company)
        self._forget_credentials()
        _log.info("company status changed", company_id=company_id, status=status, actor=actor)
        return company

    async def delete(self, company_id: CompanyId, *, actor: str) -> DeletionReport:
        """Delete the company from Postgres, Qdrant, the object store and the cache."""
        await self._require(company_id)
        report = DeletionReport(company_id)
        async with self.stores.scope(company_id) as scope:
            await company_repo.set_company_status(scope.session, company_id, "suspended")
            report.cancelled_sync_runs = await run_repo.cancel_active_sync_runs(
                scope.session, reason="company deleted", at=self.clock.now()
            )
        self._forget_credentials()
        async with self.stores.scope(company_id) as scope:
            # The sweep runs inside the scope whose transaction deletes the rows and writes
            # the audit entry: if the sweep fails, nothing of step 3 commits, and a re-run
            # starts over (every step is idempotent).
            await _sweep(scope, report)
            report.postgres_rows = await company_repo.delete_company_rows(scope.session, company_id)
            await append_audit_entry(
                scope.session,
                company_id=company_id,
                actor=actor,
                action="company.delete",
                target=company_id,
                details=report.as_details(),
            )
        async with self.stores.scope(company_id) as scope:
            await _sweep(scope, report)
        if self.pending_records is not None:
            self.pending_records.discard_company(company_id)
        self._forget_credentials()
        _log.warning("company deleted", company_id=company_id, actor=actor, **report.as_details())
        return report

    async def audit_log(self, company_id: CompanyId, *, limit: int = 500) -> list[AuditLogEntry]:
        """A company's audit trail; readable after the company was deleted."""
        async with self.stores.scope(company_id) as scope:
            return await list_audit_entries(scope.session, limit=limit)

    def _forget_credentials(self) -> None:
        if self.credentials is not None:
            self.credentials.clear()


async def _sweep(scope: TenantScope, report: DeletionReport) -> None:
    """Empty the company's vector namespace, object-store prefix and cache keys."""
    report.vector_points += await scope.vectors.count()
    await scope.vectors.drop()
    report.blobs += await scope.blobs.delete_company()
    # Removing the epoch key with the entries voids anything an in-flight request stores
    # afterwards: the next lookup finds no epoch and draws a new one (backend.llm.cache).
    if scope.cache is not None:
        report.cache_keys += await scope.cache.purge()
