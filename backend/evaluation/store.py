"""Evaluation sets and runs, stored per company in the object store.

Keys live under the company's own prefix through :class:`~backend.blobs.TenantBlobs`
(``{company_id}/helpdesk-eval/set:{name}.json`` and ``…/run:{id}.json``, the names
percent-encoded), so one company's sets and runs are out of every other company's reach.
"""

from __future__ import annotations

from backend.blobs import BlobStore, TenantBlobs
from backend.errors import NotFound
from backend.evaluation.runner import EvalRun
from backend.evaluation.sets import EvalSet

_SOURCE = "helpdesk-eval"


class EvalStore:
    def __init__(self, blobs: BlobStore, company_id: str) -> None:
        self._blobs = TenantBlobs(blobs, company_id)

    async def save_set(self, eval_set: EvalSet) -> str:
        return await self._blobs.put_document(
            _SOURCE, f"set:{eval_set.name}", eval_set.model_dump(mode="json")
        )

    async def load_set(self, name: str = "default") -> EvalSet:
        raw = await self._blobs.get_document(_SOURCE, f"set:{name}")
        if raw is None:
            raise NotFound(
                f"no evaluation set {name!r}: build one with `helpdesk eval build`",
                code="eval_set_not_found",
            )
        return EvalSet.model_validate(raw)

    async def save_run(self, run: EvalRun) -> str:
        return await self._blobs.put_document(_SOURCE, f"run:{run.id}", run.model_dump(mode="json"))

    async def run_ids(self) -> list[str]:
        """Run ids, oldest first (ids start with their UTC start time)."""
        ids = [d.removeprefix("run:") async for d in self._blobs.list_documents(_SOURCE)]
        return sorted(i for i in ids if not i.startswith("set:"))

    async def load_run(self, run_id: str) -> EvalRun:
        raw = await self._blobs.get_document(_SOURCE, f"run:{run_id}")
        if raw is None:
            raise NotFound(f"no evaluation run {run_id!r}", code="eval_run_not_found")
        return EvalRun.model_validate(raw)
