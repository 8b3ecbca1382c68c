"""The server engine: a Qdrant server (or qdrant-client's ``:memory:`` mode in tests).

Two layouts (``HELPDESK_QDRANT_LAYOUT``), both reached through an alias in front of a
versioned collection, both filtering every read, count and delete on ``company_id``:

- ``shared`` (default): every company in one collection per vector layout
  (``hd_shared_384d`` → ``hd_shared_384d_v1``), partitioned by the ``company_id`` keyword
  index marked ``is_tenant`` (Qdrant keeps each tenant's points together on disk). On a
  Qdrant cluster with ``HELPDESK_QDRANT_CUSTOM_SHARDING`` the collection uses custom
  sharding: companies live on the fallback shard key ``_shared`` until an operator promotes
  a large one to a shard of its own
  (:meth:`QdrantServerVectorStore.promote_tenant`, ``helpdesk vectors promote-tenant``).
  Every request names the company's shard key with that fallback, so it reaches the
  company's own shard once there is one and the shared shard until then.
- ``per_company``: a collection per company (``hd_acme`` → ``hd_acme_v1``), the layout
  before the shared one; :meth:`QdrantServerVectorStore.reindex_swap` builds ``hd_acme_v2``
  next to the live collection and switches the alias atomically.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from qdrant_client import AsyncQdrantClient, models

from backend.errors import BadRequest
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
from backend.vectors.namespace import (
    FALLBACK_SHARD_KEY,
    VectorLayout,
    alias_version,
    namespace_for,
    shared_collection_for,
    tenant_shard_key,
    versioned_name,
)
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

_log = structlog.get_logger("helpdesk.vectors")

# How long a promotion waits for Qdrant to finish copying a company's points to its new
# shard, and how often it looks. A tenant of a few million points copies in minutes.
DEFAULT_PROMOTION_TIMEOUT_S = 3600.0
DEFAULT_PROMOTION_POLL_S = 2.0


def _to_server_condition(condition: Condition) -> models.FieldCondition | models.Filter:
    if isinstance(condition, EitherOf):
        return models.Filter(should=[_to_server_condition(c) for c in condition.conditions])
    if isinstance(condition, MatchAnyOf):
        if len(condition.values) == 1:
            return models.FieldCondition(
                key=condition.key, match=models.MatchValue(value=condition.values[0])
            )
        return models.FieldCondition(
            key=condition.key, match=models.MatchAny(any=list(condition.values))
        )
    if isinstance(condition, MatchFlag):
        return models.FieldCondition(
            key=condition.key, match=models.MatchValue(value=condition.value)
        )
    return models.FieldCondition(
        key=condition.key, range=models.Range(gte=condition.gte, lte=condition.lte)
    )


def _server_conditions(conditions: Sequence[Condition]) -> models.Filter:
    must: list[models.Condition] = [_to_server_condition(c) for c in conditions]
    return models.Filter(must=must)


def _server_filter(
    company_id: str,
    vector_filter: VectorFilter | None,
    *,
    point_ids: Sequence[uuid.UUID] | None = None,
    exclude_ids: Sequence[uuid.UUID] | None = None,
) -> models.Filter:
    selector = _server_conditions(conditions_for(company_id, vector_filter))
    assert isinstance(selector.must, list)
    if point_ids is not None:
        selector.must.append(models.HasIdCondition(has_id=[str(i) for i in point_ids]))
    if exclude_ids:
        selector.must_not = [models.HasIdCondition(has_id=[str(i) for i in exclude_ids])]
    return selector


def _server_sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))


def _server_nearest(nearest: Nearest) -> list[float] | models.SparseVector:
    if nearest.dense is not None:
        return list(nearest.dense)
    assert nearest.sparse is not None
    return _server_sparse(nearest.sparse)


def _server_request(plan: QueryPlan) -> dict[str, Any]:
    """The shared plan as ``query_points`` arguments."""
    query_filter = _server_conditions(plan.conditions)
    if not plan.fusion:
        nearest = plan.lists[0]
        return {
            "query": _server_nearest(nearest),
            "using": nearest.using,
            "query_filter": query_filter,
            "limit": plan.limit,
        }
    return {
        "prefetch": [
            models.Prefetch(
                query=_server_nearest(q), using=q.using, filter=query_filter, limit=plan.candidates
            )
            for q in plan.lists
        ],
        "query": models.RrfQuery(rrf=models.Rrf(k=plan.rrf_k, weights=plan.rrf_weights)),
        "query_filter": query_filter,
        "limit": plan.limit,
    }


def _shard_states(info: models.CollectionClusterInfo, shard_key: str) -> list[models.ReplicaState]:
    """The state of every replica (on any peer) of the shards under ``shard_key``."""
    replicas: list[models.LocalShardInfo | models.RemoteShardInfo] = [
        *info.local_shards,
        *info.remote_shards,
    ]
    return [r.state for r in replicas if r.shard_key == shard_key]


@dataclass
class Promotion:
    """What :meth:`QdrantServerVectorStore.promote_tenant` did, step by step."""

    company_id: str
    collection: str
    steps: list[str] = field(default_factory=list)


class QdrantServerVectorStore:
    """:class:`~backend.vectors.store.VectorStore` on a Qdrant server, via an injected client."""

    def __init__(
        self,
        client: AsyncQdrantClient,
        *,
        dense_dimension: int,
        rrf_k: int = DEFAULT_RRF_K,
        dense_weight: float = DEFAULT_DENSE_WEIGHT,
        layout: VectorLayout = "shared",
        custom_sharding: bool = False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        promotion_timeout_s: float = DEFAULT_PROMOTION_TIMEOUT_S,
        promotion_poll_s: float = DEFAULT_PROMOTION_POLL_S,
    ) -> None:
        """``custom_sharding``: create the shared collection with custom sharding and route
        every request by shard key (a Qdrant server >= 1.16; qdrant-client's local mode has
        no shards). ``sleep`` paces a promotion's polling (injected so tests need not wait).
        """
        self._client = client
        self._dense_dimension = dense_dimension
        self._rrf_k = rrf_k
        self._dense_weight = dense_weight
        self._layout: VectorLayout = layout
        self._custom_sharding = custom_sharding and layout == "shared"
        self._sleep = sleep
        self._promotion_timeout_s = promotion_timeout_s
        self._promotion_poll_s = promotion_poll_s
        # Aliases known to exist: saves a round trip per call. Another process dropping a
        # company makes calls here fail loudly, never cross tenants.
        self._known: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def layout(self) -> VectorLayout:
        return self._layout

    def _alias(self, company_id: str) -> str:
        """Where the company's points are read and written: the one place that chooses."""
        validate_company_id(company_id)
        if self._layout == "shared":
            return shared_collection_for(self._dense_dimension)
        return namespace_for(company_id)

    def _shard_selector(self, company_id: str) -> models.ShardKeyWithFallback | None:
        """The company's own shard if it has been promoted, else the shared one."""
        if not self._custom_sharding:
            return None
        return models.ShardKeyWithFallback(
            target=tenant_shard_key(company_id), fallback=FALLBACK_SHARD_KEY
        )

    # --- collections and aliases --------------------------------------------------------

    async def _create_collection(self, name: str) -> None:
        await self._client.create_collection(
            collection_name=name,
            sharding_method=models.ShardingMethod.CUSTOM if self._custom_sharding else None,
            vectors_config={
                DENSE_VECTOR_NAME: models.VectorParams(
                    size=self._dense_dimension, distance=models.Distance.COSINE
                )
            },
            sparse_vectors_config={
                # Qdrant computes IDF over the collection at query time; our sparse values
                # carry only the saturated term frequency (see backend.embeddings.sparse).
                SPARSE_VECTOR_NAME: models.SparseVectorParams(modifier=models.Modifier.IDF)
            },
        )
        for key in KEYWORD_FIELDS:
            schema: models.PayloadSchemaType | models.KeywordIndexParams = (
                # is_tenant co-locates a tenant's points on disk: ready for a shared collection.
                models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
                if key == "company_id"
                else models.PayloadSchemaType.KEYWORD
            )
            await self._client.create_payload_index(name, key, field_schema=schema)
        for key in BOOL_FIELDS:
            await self._client.create_payload_index(
                name, key, field_schema=models.PayloadSchemaType.BOOL
            )
        for key in FLOAT_FIELDS:
            await self._client.create_payload_index(
                name, key, field_schema=models.PayloadSchemaType.FLOAT
            )
        if self._custom_sharding:
            # Where every company lives until it is promoted to a shard of its own.
            await self._client.create_shard_key(name, FALLBACK_SHARD_KEY)

    async def _aliased_collection_of(self, alias: str) -> str | None:
        """The concrete collection ``alias`` points at, if any."""
        response = await self._client.get_aliases()
        for description in response.aliases:
            if description.alias_name == alias:
                return description.collection_name
        return None

    async def _versions_of(self, alias: str) -> list[int]:
        response = await self._client.get_collections()
        versions = (alias_version(alias, c.name) for c in response.collections)
        return sorted(v for v in versions if v is not None)

    def _lock(self, alias: str) -> asyncio.Lock:
        return self._locks.setdefault(alias, asyncio.Lock())

    async def _exists(self, company_id: str) -> bool:
        alias = self._alias(company_id)
        if alias in self._known:
            return True
        if await self._aliased_collection_of(alias) is not None:
            self._known.add(alias)
            return True
        return False

    async def ensure_company(self, company_id: str) -> None:
        alias = self._alias(company_id)
        async with self._lock(alias):
            if await self._exists(company_id):
                return
            # A crash between creating the collection and the alias leaves a collection we
            # can reuse; otherwise start at version 1.
            versions = await self._versions_of(alias)
            if versions:
                collection = versioned_name(alias, versions[-1])
            else:
                collection = versioned_name(alias, 1)
                await self._create_collection(collection)
            await self._client.update_collection_aliases(
                change_aliases_operations=[
                    models.CreateAliasOperation(
                        create_alias=models.CreateAlias(
                            collection_name=collection, alias_name=alias
                        )
                    )
                ]
            )
            self._known.add(alias)

    async def reindex_swap(
        self, company_id: str, batches: AsyncIterable[Sequence[ChunkPoint]]
    ) -> str:
        """Replace the company's points with ``batches``, with no moment of an empty index.

        ``per_company``: build a fresh collection, then point the alias at it atomically;
        queries keep hitting the old collection until the swap, the old one is deleted
        after, and on failure the new collection is removed and the live one is untouched.

        ``shared``: the new points are written next to the old ones (a point with the same
        id is overwritten in place), then the company's points that the new index does not
        hold are deleted. Searches meanwhile see the old and the new points together; a
        failure leaves them so, and a retry finishes the job. Returns the collection name.
        """
        if self._layout == "shared":
            return await self._reindex_in_place(company_id, batches)
        alias = self._alias(company_id)
        async with self._lock(alias):
            previous = await self._aliased_collection_of(alias)
            versions = await self._versions_of(alias)
            collection = versioned_name(alias, (versions[-1] if versions else 0) + 1)
            await self._create_collection(collection)
            try:
                async for batch in batches:
                    validate_points(company_id, batch, self._dense_dimension)
                    if batch:
                        await self._client.upsert(collection, points=self._points(batch))
            except BaseException:
                await self._client.delete_collection(collection)
                raise
            operations: list[models.AliasOperations] = []
            if previous is not None:
                operations.append(
                    models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
                )
            operations.append(
                models.CreateAliasOperation(
                    create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
                )
            )
            # One call, one atomic alias change: readers see the old or the new collection.
            await self._client.update_collection_aliases(change_aliases_operations=operations)
            self._known.add(alias)
            if previous is not None:
                await self._client.delete_collection(previous)
            return collection

    async def _reindex_in_place(
        self, company_id: str, batches: AsyncIterable[Sequence[ChunkPoint]]
    ) -> str:
        await self.ensure_company(company_id)
        alias = self._alias(company_id)
        kept: list[uuid.UUID] = []
        async for batch in batches:
            await self.upsert(company_id, batch)
            kept.extend(point.id for point in batch)
        stale = _server_filter(company_id, None, exclude_ids=kept)
        await self._client.delete(
            alias,
            points_selector=models.FilterSelector(filter=stale),
            shard_key_selector=self._shard_selector(company_id),
        )
        return alias

    async def adopt_per_company(self, company_id: str, *, batch_size: int = 256) -> int:
        """Move a company's points from its ``per_company`` collection (``hd_acme``, the
        layout before the shared one) into the shared collection, then drop the old one.

        Points are copied as stored (vectors and payload, same ids), so re-running after an
        interruption overwrites rather than duplicates; the old collection is dropped only
        once every point is copied. Searches read the shared collection, so the company's
        results fill in as the copy runs. Returns how many points were copied (0 when the
        company has no old collection)."""
        if self._layout != "shared":
            raise BadRequest(
                "adopting a per-company collection needs HELPDESK_QDRANT_LAYOUT=shared",
                code="layout_mismatch",
            )
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        legacy_alias = namespace_for(company_id)
        legacy = await self._aliased_collection_of(legacy_alias)
        if legacy is None:
            return 0
        await self.ensure_company(company_id)
        copied = 0
        offset: models.ExtendedPointId | None = None
        while True:
            records, offset = await self._client.scroll(
                legacy,
                scroll_filter=_server_filter(company_id, None),
                limit=batch_size,
                offset=offset,
                with_payload=True,
                with_vectors=True,
            )
            if records:
                await self._client.upsert(
                    self._alias(company_id),
                    points=[
                        models.PointStruct(
                            id=record.id, vector=record.vector or {}, payload=record.payload
                        )
                        for record in records
                    ],
                    shard_key_selector=self._shard_selector(company_id),
                )
                copied += len(records)
            if offset is None:
                break
        await self._client.update_collection_aliases(
            change_aliases_operations=[
                models.DeleteAliasOperation(
                    delete_alias=models.DeleteAlias(alias_name=legacy_alias)
                )
            ]
        )
        for version in await self._versions_of(legacy_alias):
            await self._client.delete_collection(versioned_name(legacy_alias, version))
        _log.info("vectors.per_company_adopted", company_id=company_id, points=copied)
        return copied

    async def promote_tenant(self, company_id: str) -> Promotion:
        """Move a large company from the shared shard to a shard of its own, while it keeps
        being served (Qdrant's tiered multitenancy, server >= 1.16).

        1. create the company's shard key in state ``Partial``: requests keep going to the
           shared shard (the fallback) while it fills;
        2. ask Qdrant to replicate the company's points from the shared shard to it (writes
           arriving meanwhile reach both);
        3. wait until every replica of the new shard is ``Active``: from then on the
           company's requests, which name its shard key with the shared one as fallback, are
           served by its own shard;
        4. delete the company's copies from the shared shard.

        Re-running it after an interruption resumes: an existing shard key is not created
        again, the copy is asked for again while the shard is not yet active, and the
        clean-up is idempotent.
        """
        if not self._custom_sharding:
            raise BadRequest(
                "promoting a company to its own shard needs the shared layout on a Qdrant "
                "cluster with custom sharding (HELPDESK_QDRANT_URL, HELPDESK_QDRANT_LAYOUT="
                "shared, HELPDESK_QDRANT_CUSTOM_SHARDING=true)",
                code="sharding_unavailable",
            )
        await self.ensure_company(company_id)
        alias = self._alias(company_id)
        collection = await self._aliased_collection_of(alias)
        assert collection is not None  # ensure_company made it
        key = tenant_shard_key(company_id)
        promotion = Promotion(company_id=company_id, collection=collection)
        tenant_only = _server_filter(company_id, None)
        started = time.monotonic()
        async with self._lock(f"promote:{collection}:{key}"):
            listed = await self._client.list_shard_keys(collection)
            existing = {str(k.key) for k in listed.shard_keys or []}
            if key not in existing:
                await self._client.create_shard_key(
                    collection, key, initial_state=models.ReplicaState.PARTIAL
                )
                promotion.steps.append(f"created shard key {key!r} (Partial)")
            states = _shard_states(await self._client.collection_cluster_info(collection), key)
            if not states or any(s != models.ReplicaState.ACTIVE for s in states):
                await self._client.cluster_collection_update(
                    collection,
                    models.ReplicatePointsOperation(
                        replicate_points=models.ReplicatePoints(
                            filter=tenant_only, from_shard_key=FALLBACK_SHARD_KEY, to_shard_key=key
                        )
                    ),
                )
                promotion.steps.append(f"replicating points {FALLBACK_SHARD_KEY!r} -> {key!r}")
                await self._wait_active(collection, key)
                promotion.steps.append(f"shard {key!r} active")
            await self._client.delete(
                collection,
                points_selector=models.FilterSelector(filter=tenant_only),
                shard_key_selector=FALLBACK_SHARD_KEY,
            )
            promotion.steps.append(f"deleted {company_id}'s points from {FALLBACK_SHARD_KEY!r}")
        _log.info(
            "vectors.tenant_promoted",
            company_id=company_id,
            collection=collection,
            seconds=round(time.monotonic() - started, 3),
        )
        return promotion

    async def _wait_active(self, collection: str, key: str) -> None:
        waited = 0.0
        while True:
            info = await self._client.collection_cluster_info(collection)
            states = _shard_states(info, key)
            if states and all(s == models.ReplicaState.ACTIVE for s in states):
                return
            if any(s == models.ReplicaState.DEAD for s in states):
                raise RuntimeError(f"shard {key!r} of {collection} is dead; see the Qdrant logs")
            if waited >= self._promotion_timeout_s:
                raise TimeoutError(
                    f"shard {key!r} of {collection} not active after {waited:.0f} s "
                    f"(states: {[s.value for s in states]}); run the promotion again to resume"
                )
            await self._sleep(self._promotion_poll_s)
            waited += self._promotion_poll_s

    # --- contract -------------------------------------------------------------------------

    @staticmethod
    def _points(points: Sequence[ChunkPoint]) -> list[models.PointStruct]:
        return [
            models.PointStruct(
                id=str(point.id),
                # Named vectors are optional per point: a keyword-only point has no dense one.
                vector={SPARSE_VECTOR_NAME: _server_sparse(point.sparse)}
                | ({} if point.dense is None else {DENSE_VECTOR_NAME: list(point.dense)}),
                payload=point.payload.to_qdrant(),
            )
            for point in points
        ]

    async def upsert(self, company_id: str, points: Sequence[ChunkPoint]) -> None:
        validate_points(company_id, points, self._dense_dimension)
        if not points:
            return
        await self.ensure_company(company_id)
        await self._client.upsert(
            self._alias(company_id),
            points=self._points(points),
            shard_key_selector=self._shard_selector(company_id),
        )

    async def _delete(self, company_id: str, selector: models.Filter) -> None:
        if not await self._exists(company_id):
            return
        await self._client.delete(
            self._alias(company_id),
            points_selector=models.FilterSelector(filter=selector),
            shard_key_selector=self._shard_selector(company_id),
        )

    async def delete_documents(self, company_id: str, document_ids: Sequence[str]) -> None:
        validate_company_id(company_id)
        if document_ids:
            selector = _server_filter(company_id, VectorFilter(document_ids=tuple(document_ids)))
            await self._delete(company_id, selector)

    async def delete_requesters(self, company_id: str, requester_ids: Sequence[str]) -> None:
        validate_company_id(company_id)
        if requester_ids:
            selector = _server_filter(company_id, VectorFilter(requester_ids=tuple(requester_ids)))
            await self._delete(company_id, selector)

    async def delete_points(self, company_id: str, ids: Sequence[uuid.UUID]) -> None:
        validate_company_id(company_id)
        if ids:
            # By filter rather than by id, so the tenant condition applies to deletes too.
            await self._delete(company_id, _server_filter(company_id, None, point_ids=ids))

    async def _scored_points(
        self,
        company_id: str,
        *,
        dense: Sequence[float] | None,
        sparse: SparseVector | None,
        filter: VectorFilter | None,
        limit: int,
        mode: SearchMode,
        prefetch_limit: int | None,
        with_payload: bool | models.PayloadSelector,
    ) -> list[models.ScoredPoint]:
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
        if plan is None or not await self._exists(company_id):
            return []
        response = await self._client.query_points(
            self._alias(company_id),
            **_server_request(plan),
            with_payload=with_payload,
            shard_key_selector=self._shard_selector(company_id),
        )
        return response.points

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
        points = await self._scored_points(
            company_id,
            dense=dense,
            sparse=sparse,
            filter=filter,
            limit=limit,
            mode=mode,
            prefetch_limit=prefetch_limit,
            with_payload=True,
        )
        return [
            to_hit(point.id, point.score, ChunkPayload.from_qdrant(dict(point.payload or {})))
            for point in points
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
        points = await self._scored_points(
            company_id,
            dense=dense,
            sparse=sparse,
            filter=filter,
            limit=limit,
            mode=mode,
            prefetch_limit=prefetch_limit,
            with_payload=models.PayloadSelectorInclude(include=list(MATCH_FIELDS)),
        )
        return [to_match(point.id, point.score, point.payload) for point in points]

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
        """Points by id with their payloads (and dense vectors). Reads by id bypass the
        tenant filter, and the shared collection holds every company's points: the callers
        keep only this company's (``own_payloads``, ``own_dense_vectors``)."""
        validate_company_id(company_id)
        if not ids or not await self._exists(company_id):
            return []
        records = await self._client.retrieve(
            self._alias(company_id),
            ids=[str(i) for i in ids],
            with_payload=True,
            with_vectors=[DENSE_VECTOR_NAME] if dense else False,
            shard_key_selector=self._shard_selector(company_id),
        )
        return [
            (
                as_uuid(r.id),
                ChunkPayload.from_qdrant(dict(r.payload or {})),
                r.vector.get(DENSE_VECTOR_NAME) if isinstance(r.vector, dict) else None,
            )
            for r in records
        ]

    async def count(self, company_id: str, filter: VectorFilter | None = None) -> int:
        validate_company_id(company_id)
        if not await self._exists(company_id):
            return 0
        result = await self._client.count(
            self._alias(company_id),
            count_filter=_server_filter(company_id, filter),
            exact=True,
            shard_key_selector=self._shard_selector(company_id),
        )
        return result.count

    async def optimize(self, company_id: str) -> None:
        """A Qdrant server builds its indexes in the background by itself: nothing to do."""
        validate_company_id(company_id)

    async def drop_company(self, company_id: str) -> None:
        alias = self._alias(company_id)
        if self._layout == "shared":
            # Only this company's points; the collection stays for everyone else.
            await self._delete(company_id, _server_filter(company_id, None))
            if self._custom_sharding and await self._exists(company_id):
                collection = await self._aliased_collection_of(alias)
                key = tenant_shard_key(company_id)
                if collection is not None:
                    listed = await self._client.list_shard_keys(collection)
                    if key in {str(k.key) for k in listed.shard_keys or []}:
                        await self._client.delete_shard_key(collection, key)
            return
        async with self._lock(alias):
            aliased = await self._aliased_collection_of(alias)
            if aliased is not None:
                await self._client.update_collection_aliases(
                    change_aliases_operations=[
                        models.DeleteAliasOperation(
                            delete_alias=models.DeleteAlias(alias_name=alias)
                        )
                    ]
                )
            # Every version, including leftovers of an interrupted re-index.
            for version in await self._versions_of(alias):
                await self._client.delete_collection(versioned_name(alias, version))
            self._known.discard(alias)

    async def healthcheck(self) -> bool:
        try:
            await self._client.get_collections()
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self._client.close()
