"""The embedded engine: one qdrant-edge shard directory per company, in this process.

qdrant-edge (``qdrant_edge``) runs Qdrant's Rust segment engine in-process with a
synchronous API, and a shard directory can be open in only one process at a time (its WAL
is locked). So this engine suits the single-process embedded default; API replicas and
workers that share data need the server engine. Blocking calls run in worker threads, one
at a time per shard, so the event loop never waits on disk or search.

One owner. A second process on the same directory would start, report ready, and then fail
every search on a shard the first one holds (``Can't init WAL: WouldBlock``). So the store
takes an exclusive ``flock`` on ``<root>/owner.lock`` when it is built — before any shard is
opened — and holds it until :meth:`EdgeVectorStore.close` (the kernel drops it if the
process dies); a second process is refused at start with :class:`EngineInUse`, which says
who holds it.

Many companies. Shards open lazily, on a company's first call, and the store keeps at most
``max_open_shards`` of them open (each holds a few file descriptors: its WAL, segment files)
and at most ``open_shards_memory_bytes`` of them by the memory each cost when it opened
(measured as the process's resident-memory growth; mostly the shard's mapped files, page
cache that the kernel charges to this process): past either budget the least recently used
idle shard is flushed and closed. A closed shard reopens on its next call, and the cost of
that cold call (open + query) is logged as ``vectors.cold_search``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe
import structlog

from backend.tenancy.company_id import validate_company_id
from backend.vectors.filters import (
    BOOL_FIELDS,
    FLOAT_FIELDS,
    KEYWORD_FIELDS,
    Condition,
    EitherOf,
    MatchAnyOf,
    MatchFlag,
    conditions_for,
)
from backend.vectors.namespace import namespace_for
from backend.vectors.query import Nearest, QueryPlan, as_uuid, plan_query, to_hit, to_match
from backend.vectors.store import DEFAULT_DENSE_WEIGHT, DEFAULT_RRF_K, validate_points
from backend.vectors.types import (
    DENSE_VECTOR_NAME,
    MATCH_FIELDS,
    SPARSE_VECTOR_NAME,
    ChunkPayload,
    ChunkPoint,
    SearchMode,
    SparseVector,
    VectorFilter,
    VectorHit,
    VectorMatch,
    own_dense_vectors,
    own_payloads,
)

T = TypeVar("T")

_log = structlog.get_logger("helpdesk.vectors")

# The healthcheck's own shard: a namespace no company id can produce (ids are lower-case
# slugs; namespaces are derived from them), so it never holds tenant data.
_PROBE = "_healthcheck"

# qdrant-edge-py 0.9 converts MatchValue(True) to the integer 1 (Python bools are ints), so a
# bool payload field never matches. Each boolean is mirrored into a keyword field
# ("true"/"false") that filters use instead; the mirror is stripped when payloads are read.
_BOOL_MIRROR_SUFFIX = "__kw"


def _bool_mirror(key: str) -> str:
    return key + _BOOL_MIRROR_SUFFIX


def _to_edge_condition(condition: Condition) -> qe.FieldCondition | qe.Filter:
    if isinstance(condition, EitherOf):
        return qe.Filter(should=[_to_edge_condition(c) for c in condition.conditions])
    if isinstance(condition, MatchAnyOf):
        if len(condition.values) == 1:
            return qe.FieldCondition(condition.key, match=qe.MatchValue(condition.values[0]))
        return qe.FieldCondition(condition.key, match=qe.MatchAny(list(condition.values)))
    if isinstance(condition, MatchFlag):
        flag = "true" if condition.value else "false"
        return qe.FieldCondition(_bool_mirror(condition.key), match=qe.MatchValue(flag))
    return qe.FieldCondition(
        condition.key, range=qe.RangeFloat(gte=condition.gte, lte=condition.lte)
    )


def _edge_filter(company_id: str, vector_filter: VectorFilter | None) -> qe.Filter:
    return _edge_conditions(conditions_for(company_id, vector_filter))


def _edge_conditions(conditions: Sequence[Condition]) -> qe.Filter:
    must: list[Any] = [_to_edge_condition(c) for c in conditions]
    return qe.Filter(must=must)


def _edge_nearest(nearest: Nearest) -> qe.Query:
    if nearest.dense is not None:
        return qe.Query.Nearest(list(nearest.dense), using=nearest.using)
    assert nearest.sparse is not None
    return qe.Query.Nearest(_edge_sparse(nearest.sparse), using=nearest.using)


def _edge_request(plan: QueryPlan, with_payload: bool | qe.PayloadSelector) -> qe.QueryRequest:
    """The shared plan as a qdrant-edge request."""
    edge_filter = _edge_conditions(plan.conditions)
    if not plan.fusion:
        return qe.QueryRequest(
            limit=plan.limit,
            query=_edge_nearest(plan.lists[0]),
            filter=edge_filter,
            with_payload=with_payload,
        )
    prefetches = [
        qe.Prefetch(limit=plan.candidates, query=_edge_nearest(q), filter=edge_filter)
        for q in plan.lists
    ]
    # The 0.9 stubs declare Fusion.Rrf as a class nested in Fusion, not a subclass,
    # so the type checker rejects what the engine accepts.
    fusion: Any = qe.Fusion.Rrf(k=plan.rrf_k, weights=plan.rrf_weights)
    return qe.QueryRequest(
        limit=plan.limit,
        prefetches=prefetches,
        query=fusion,
        filter=edge_filter,
        with_payload=with_payload,
    )


def _edge_sparse(vector: SparseVector) -> qe.SparseVector:
    return qe.SparseVector(list(vector.indices), list(vector.values))


def _edge_vectors(point: ChunkPoint) -> dict[str, Any]:
    vectors: dict[str, Any] = {SPARSE_VECTOR_NAME: _edge_sparse(point.sparse)}
    if point.dense is not None:
        vectors[DENSE_VECTOR_NAME] = list(point.dense)
    return vectors


def _stored_payload(point: ChunkPoint) -> dict[str, Any]:
    stored = point.payload.to_qdrant()
    for key in BOOL_FIELDS:
        stored[_bool_mirror(key)] = "true" if stored[key] else "false"
    return stored


def _read_payload(stored: dict[str, Any] | None) -> ChunkPayload:
    data = {k: v for k, v in (stored or {}).items() if not k.endswith(_BOOL_MIRROR_SUFFIX)}
    return ChunkPayload.from_qdrant(data)


OWNER_LOCK = "owner.lock"


class EngineInUse(RuntimeError):
    """Another process owns this embedded vector directory."""


def _take_ownership(root: Path) -> int:
    """Hold ``root``'s owner lock (a file descriptor, open for the process's life)."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / OWNER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise EngineInUse(
            f"the embedded vector engine in {root} is in use by another process (pid "
            f"{holder}). It allows one process per data directory: stop that process, give "
            "this one its own HELPDESK_DATA_DIR, or run a Qdrant server (HELPDESK_QDRANT_URL) "
            "to share vectors between several API processes and workers."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _resident_bytes() -> int | None:
    """This process's resident memory (anonymous and file-backed), or ``None`` off Linux."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


def _allocated_bytes(path: Path) -> int:
    """Disk blocks a shard holds (its WAL and segment files are sparse: far smaller than
    their apparent size)."""
    total = 0
    for entry in path.rglob("*"):
        try:
            if entry.is_file():
                total += entry.stat().st_blocks * 512
        except FileNotFoundError:  # a segment merged away meanwhile
            continue
    return total


def _memory_cost(before: int | None, path: Path) -> int:
    """What opening a shard cost in memory: the growth of resident memory across the open
    (mostly its mapped WAL, payload and vector files: page cache counted against this
    process), or, where that cannot be read, the disk it holds."""
    after = _resident_bytes()
    if before is not None and after is not None and after > before:
        return after - before
    return _allocated_bytes(path)


class _Shard:
    """An open shard and the lock that serializes calls into it.

    ``closed`` is set, under ``lock``, when the shard is evicted: a caller that fetched the
    object before the eviction sees it once it holds the lock and opens the shard again.
    """

    def __init__(
        self, shard: qe.EdgeShard, *, memory_bytes: int, used: int, open_ms: float = 0.0
    ) -> None:
        self.shard = shard
        self.open_ms = open_ms
        self.lock = threading.Lock()
        self.closed = False
        # Written since it opened: only then does closing it need a flush (an fsync of its
        # files, ~100 ms even with nothing new to write).
        self.dirty = False
        self.memory_bytes = memory_bytes
        self.last_used = used


class EdgeVectorStore:
    """:class:`~backend.vectors.store.VectorStore` on qdrant-edge shards under ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        dense_dimension: int,
        rrf_k: int = DEFAULT_RRF_K,
        dense_weight: float = DEFAULT_DENSE_WEIGHT,
        max_search_threads: int | None = 1,
        max_open_shards: int | None = None,
        open_shards_memory_bytes: int | None = None,
    ) -> None:
        """``max_open_shards`` / ``open_shards_memory_bytes``: the budgets past which the least
        recently used idle shards are closed (``None``: unbounded)."""
        if max_open_shards is not None and max_open_shards < 1:
            raise ValueError("max_open_shards must be at least 1")
        if open_shards_memory_bytes is not None and open_shards_memory_bytes < 1:
            raise ValueError("open_shards_memory_bytes must be positive")
        self._root = root
        self._dense_dimension = dense_dimension
        self._rrf_k = rrf_k
        self._dense_weight = dense_weight
        # One search thread per shard by default: the API already runs queries concurrently
        # across requests, and the machines we target have few cores.
        self._max_search_threads = max_search_threads
        self._max_open_shards = max_open_shards
        self._open_shards_memory_bytes = open_shards_memory_bytes
        self._shards: dict[str, _Shard] = {}
        self._registry_lock = threading.Lock()
        # A logical clock for least-recently-used order: bumping an int is cheap enough for
        # the search fast path, which runs on the event loop without the registry lock.
        self._ticks = 0
        self._owner_fd: int | None = _take_ownership(root)

    # --- shard lifecycle -----------------------------------------------------------------

    def _config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={
                DENSE_VECTOR_NAME: qe.EdgeVectorParams(
                    size=self._dense_dimension, distance=qe.Distance.Cosine
                )
            },
            sparse_vectors={
                # IDF is computed by the engine over the shard, so sparse values carry only
                # the saturated term frequency (see backend.embeddings.sparse).
                SPARSE_VECTOR_NAME: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)
            },
            max_search_threads=self._max_search_threads,
            # Payloads are read on every search: read them into the page cache when the shard
            # opens (Cached) rather than faulting them in on first touch (Cold, the default),
            # which made the first searches after a start several times slower.
            payload_memory=qe.Memory.Cached,
        )

    def _path(self, company_id: str) -> Path:
        return self._root / namespace_for(company_id)

    def _tick(self) -> int:
        self._ticks += 1
        return self._ticks

    def open_shard_count(self) -> int:
        """Company shards open now (the healthcheck's probe shard is not counted)."""
        return sum(1 for name in list(self._shards) if name != _PROBE)

    def _open(self, company_id: str, *, create: bool) -> _Shard | None:
        """The company's open shard; loads it from disk or (if ``create``) creates it."""
        namespace = namespace_for(company_id)
        with self._registry_lock:
            opened = self._shards.get(namespace)
            if opened is not None:
                opened.last_used = self._tick()
                return opened
            path = self._path(company_id)
            started = time.perf_counter()
            resident = _resident_bytes()
            if (path / "edge_config.json").exists():
                # With our config: older shards take on the current payload placement.
                shard = qe.EdgeShard.load(str(path), self._config())
            elif create:
                self._root.mkdir(parents=True, exist_ok=True)
                shard = qe.EdgeShard.create(str(path), self._config())
                self._create_indexes(shard)
            else:
                return None
            opened = _Shard(
                shard,
                memory_bytes=_memory_cost(resident, path),
                used=self._tick(),
                open_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            self._shards[namespace] = opened
            self._evict_over_budget(keep=namespace)
            _log.debug(
                "vectors.shard_opened",
                company_id=company_id,
                open_ms=opened.open_ms,
                open_shards=self.open_shard_count(),
                memory_bytes=opened.memory_bytes,
            )
            return opened

    def _over_budget(self) -> bool:
        tenants = [s for name, s in self._shards.items() if name != _PROBE]
        if self._max_open_shards is not None and len(tenants) > self._max_open_shards:
            return True
        if self._open_shards_memory_bytes is not None:
            return sum(s.memory_bytes for s in tenants) > self._open_shards_memory_bytes
        return False

    def _evict_over_budget(self, *, keep: str) -> None:
        """Close least recently used shards until the budgets hold (registry lock held).

        A shard in use (its lock taken: a write, an optimize) is skipped, never waited for,
        so one long call cannot stall every other company's open; the budget is then
        exceeded until the next open finds it idle.
        """
        while self._over_budget():
            candidates = sorted(
                (s.last_used, name)
                for name, s in self._shards.items()
                if name not in (keep, _PROBE)
            )
            for _used, name in candidates:
                victim = self._shards[name]
                if victim.lock.acquire(blocking=False):
                    started = time.perf_counter()
                    try:
                        if victim.dirty:
                            victim.shard.flush()
                        victim.shard.close()
                        victim.closed = True
                    finally:
                        victim.lock.release()
                    del self._shards[name]
                    _log.debug(
                        "vectors.shard_closed",
                        namespace=name,
                        reason="budget",
                        close_ms=round((time.perf_counter() - started) * 1000, 3),
                    )
                    break
            else:
                return  # every other shard is busy (or the budget fits only the new one)

    @staticmethod
    def _create_indexes(shard: qe.EdgeShard) -> None:
        for key in KEYWORD_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Keyword))
        for key in BOOL_FIELDS:
            shard.update(
                qe.UpdateOperation.create_field_index(
                    _bool_mirror(key), qe.PayloadSchemaType.Keyword
                )
            )
        for key in FLOAT_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(key, qe.PayloadSchemaType.Float))

    async def _run(
        self,
        company_id: str,
        call: Callable[[qe.EdgeShard], T],
        *,
        create: bool,
        default: T,
        write: bool = True,
    ) -> T:
        def locked() -> T:
            while True:
                opened = self._open(company_id, create=create)
                if opened is None:
                    return default
                with opened.lock:
                    if opened.closed:  # evicted between the lookup and the lock: reopen
                        continue
                    opened.dirty = opened.dirty or write
                    return call(opened.shard)

        return await asyncio.to_thread(locked)

    async def _read(self, company_id: str, call: Callable[[qe.EdgeShard], T], *, default: T) -> T:
        """A short read (a search, a lookup by id), on the event loop when it can be.

        qdrant-edge-py 0.9 holds the GIL for the whole of a call into the engine, so a worker
        thread cannot run it in parallel with anything: it only adds two thread switches and
        up to a GIL switch interval (5 ms) of waiting for the loop to hand the GIL back. A
        search takes about a millisecond; when the shard is open and no write holds it, it
        runs right here. Otherwise (first open, a write in progress) it waits in a thread,
        as writes do, so the loop is never blocked on the shard's lock.
        """
        opened = self._shards.get(namespace_for(company_id))
        if opened is not None and opened.lock.acquire(blocking=False):
            try:
                if not opened.closed:
                    opened.last_used = self._tick()
                    return call(opened.shard)
            finally:
                opened.lock.release()
        if opened is not None:
            return await self._run(company_id, call, create=False, default=default, write=False)
        # Cold: the shard is opened from disk first. Log what that first call cost.
        started = time.perf_counter()
        result = await self._run(company_id, call, create=False, default=default, write=False)
        reopened = self._shards.get(namespace_for(company_id))
        if reopened is not None:  # a company with no shard on disk opened nothing
            _log.info(
                "vectors.cold_search",
                company_id=company_id,
                open_ms=reopened.open_ms,
                total_ms=round((time.perf_counter() - started) * 1000, 3),
                open_shards=self.open_shard_count(),
            )
        return result

    # --- contract ---------------------------------------------------------------------------

    async def ensure_company(self, company_id: str) -> None:
        validate_company_id(company_id)
        await self._run(company_id, lambda _shard: None, create=True, default=None)

    async def upsert(self, company_id: str, points: Sequence[ChunkPoint]) -> None:
        validate_points(company_id, points, self._dense_dimension)
        if not points:
            return
        edge_points = [
            qe.Point(point.id, _edge_vectors(point), _stored_payload(point)) for point in points
        ]
        operation = qe.UpdateOperation.upsert_points(edge_points)
        await self._run(
            company_id, lambda shard: shard.update(operation), create=True, default=None
        )

    async def delete_documents(self, company_id: str, document_ids: Sequence[str]) -> None:
        if not document_ids:
            validate_company_id(company_id)
            return
        condition = _edge_filter(company_id, VectorFilter(document_ids=tuple(document_ids)))
        operation = qe.UpdateOperation.delete_points_by_filter(condition)
        await self._run(
            company_id, lambda shard: shard.update(operation), create=False, default=None
        )

    async def delete_requesters(self, company_id: str, requester_ids: Sequence[str]) -> None:
        if not requester_ids:
            validate_company_id(company_id)
            return
        condition = _edge_filter(company_id, VectorFilter(requester_ids=tuple(requester_ids)))
        operation = qe.UpdateOperation.delete_points_by_filter(condition)
        await self._run(
            company_id, lambda shard: shard.update(operation), create=False, default=None
        )

    async def delete_points(self, company_id: str, ids: Sequence[uuid.UUID]) -> None:
        if not ids:
            validate_company_id(company_id)
            return
        # By filter rather than by id, so the tenant condition applies to deletes too.
        must: list[Any] = [qe.HasIdCondition(set(ids))]
        must.extend(_edge_filter(company_id, None).must or [])
        operation = qe.UpdateOperation.delete_points_by_filter(qe.Filter(must=must))
        await self._run(
            company_id, lambda shard: shard.update(operation), create=False, default=None
        )

    def _request(
        self,
        company_id: str,
        *,
        dense: Sequence[float] | None,
        sparse: SparseVector | None,
        filter: VectorFilter | None,
        limit: int,
        mode: SearchMode,
        prefetch_limit: int | None,
        with_payload: bool | qe.PayloadSelector,
    ) -> qe.QueryRequest | None:
        """The engine request for a search, or ``None`` when it cannot match anything."""
        plan = plan_query(
            company_id,
            dense=dense,
            sparse=sparse,
            filter=filter,
            limit=limit,
            mode=mode,
            prefetch_limit=prefetch_limit,
            dense_dimension=self._dense_dimension,
            rrf_k=self._rrf_k,
            dense_weight=self._dense_weight,
        )
        return None if plan is None else _edge_request(plan, with_payload)

    async def _search(self, company_id: str, request: qe.QueryRequest) -> list[qe.ScoredPoint]:
        no_hits: list[qe.ScoredPoint] = []
        return await self._read(company_id, lambda shard: shard.query(request), default=no_hits)

    async def query(
        self,
        company_id: str,
        *,
        dense: Sequence[float] | None = None,
        sparse: SparseVector | None = None,
        filter: VectorFilter | None = None,
        limit: int = 10,
        mode: SearchMode = SearchMode.HYBRID,
        prefetch_limit: int | None = None,
    ) -> list[VectorHit]:
        request = self._request(
            company_id,
            dense=dense,
            sparse=sparse,
            filter=filter,
            limit=limit,
            mode=mode,
            prefetch_limit=prefetch_limit,
            with_payload=True,
        )
        if request is None:
            return []
        return [
            to_hit(p.id, p.score, _read_payload(p.payload))
            for p in await self._search(company_id, request)
        ]

    async def match(
        self,
        company_id: str,
        *,
        dense: Sequence[float] | None = None,
        sparse: SparseVector | None = None,
        filter: VectorFilter | None = None,
        limit: int = 10,
        mode: SearchMode = SearchMode.HYBRID,
        prefetch_limit: int | None = None,
    ) -> list[VectorMatch]:
        request = self._request(
            company_id,
            dense=dense,
            sparse=sparse,
            filter=filter,
            limit=limit,
            mode=mode,
            prefetch_limit=prefetch_limit,
            with_payload=qe.PayloadSelector.Include(list(MATCH_FIELDS)),
        )
        if request is None:
            return []
        return [to_match(p.id, p.score, p.payload) for p in await self._search(company_id, request)]

    async def payloads(
        self, company_id: str, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ChunkPayload]:
        found = await self._retrieve(company_id, ids, dense=False)
        return own_payloads(company_id, ((point, payload) for point, payload, _ in found))

    async def dense_vectors(
        self, company_id: str, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[ChunkPayload, list[float]]]:
        return own_dense_vectors(company_id, await self._retrieve(company_id, ids, dense=True))

    async def _retrieve(
        self, company_id: str, ids: Sequence[uuid.UUID], *, dense: bool
    ) -> list[tuple[uuid.UUID, ChunkPayload, Any]]:
        """Points by id with their payloads (and dense vectors): not yet filtered by company,
        which the callers do (reads by id bypass the tenant filter)."""
        validate_company_id(company_id)
        if not ids:
            return []
        wanted: list[int | uuid.UUID | str] = list(ids)
        vectors: bool | list[str] = [DENSE_VECTOR_NAME] if dense else False
        no_records: list[qe.Record] = []
        records = await self._read(
            company_id, lambda shard: shard.retrieve(wanted, True, vectors), default=no_records
        )
        return [
            (
                as_uuid(r.id),
                _read_payload(r.payload),
                r.vector.get(DENSE_VECTOR_NAME) if isinstance(r.vector, dict) else None,
            )
            for r in records
        ]

    async def count(self, company_id: str, filter: VectorFilter | None = None) -> int:
        request = qe.CountRequest(exact=True, filter=_edge_filter(company_id, filter))
        return await self._read(company_id, lambda shard: shard.count(request), default=0)

    async def optimize(self, company_id: str) -> None:
        """Build the shard's search index (HNSW) and merge segments. qdrant-edge does not do
        this by itself, and without it every query scans the shard; it holds the GIL for
        the whole build (tens of seconds at 50k chunks), so run it where nothing else waits
        on this process: `helpdesk vectors optimize`, or after an operator import."""
        await self._run(company_id, lambda shard: shard.optimize(), create=False, default=None)

    async def drop_company(self, company_id: str) -> None:
        namespace = namespace_for(company_id)
        path = self._path(company_id)

        def drop() -> None:
            with self._registry_lock:
                opened = self._shards.pop(namespace, None)
                if opened is not None:
                    with opened.lock:
                        opened.shard.close()
                        opened.closed = True
                shutil.rmtree(path, ignore_errors=True)

        await asyncio.to_thread(drop)

    async def healthcheck(self) -> bool:
        """A real call into the engine, not a look at the folder: a count on a small probe
        shard of our own (created on first use), which fails if the engine cannot read or
        lock its files."""

        def probe() -> bool:
            if self._owner_fd is None:
                return False
            with self._registry_lock:
                opened = self._shards.get(_PROBE)
                if opened is None:
                    path = self._root / _PROBE
                    shard = (
                        qe.EdgeShard.load(str(path), self._config())
                        if (path / "edge_config.json").exists()
                        else qe.EdgeShard.create(str(path), self._config())
                    )
                    opened = self._shards[_PROBE] = _Shard(shard, memory_bytes=0, used=0)
            with opened.lock:
                opened.shard.count(qe.CountRequest(exact=True))
            return True

        try:
            return await asyncio.to_thread(probe)
        except Exception:
            return False

    async def close(self) -> None:
        def close_all() -> None:
            with self._registry_lock:
                for opened in self._shards.values():
                    with opened.lock:
                        opened.shard.flush()
                        opened.shard.close()
                        opened.closed = True
                self._shards.clear()
                if self._owner_fd is not None:
                    os.close(self._owner_fd)  # releases the owner lock
                    self._owner_fd = None

        await asyncio.to_thread(close_all)
