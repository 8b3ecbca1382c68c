"""The server engine: a Qdrant server (or qdrant-client's ``:memory:`` mode in tests).

Each company gets a versioned collection (``hd_acme_v1``) behind an alias (``hd_acme``).
Reads and writes go through the alias, so :meth:`QdrantServerVectorStore.reindex_swap` can
build ``hd_acme_v2`` next to the live collection and switch the alias atomically.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable, Sequence

from qdrant_client import AsyncQdrantClient, models

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
    collection_version,
    namespace_for,
    versioned_collection_for,
)
from backend.vectors.store import (
    DEFAULT_DENSE_WEIGHT,
    DEFAULT_RRF_K,
    rrf_weights,
    validate_points,
    validate_query,
)
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
    own_payloads,
)


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


def _server_filter(
    company_id: str,
    vector_filter: VectorFilter | None,
    *,
    point_ids: Sequence[uuid.UUID] | None = None,
) -> models.Filter:
    must: list[models.Condition] = [
        _to_server_condition(c) for c in conditions_for(company_id, vector_filter)
    ]
    if point_ids is not None:
        must.append(models.HasIdCondition(has_id=[str(i) for i in point_ids]))
    return models.Filter(must=must)


def _server_sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))


def _as_uuid(raw: int | str | uuid.UUID) -> uuid.UUID:
    return raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))


class QdrantServerVectorStore:
    """:class:`~backend.vectors.store.VectorStore` on a Qdrant server, via an injected client."""

    def __init__(
        self,
        client: AsyncQdrantClient,
        *,
        dense_dimension: int,
        rrf_k: int = DEFAULT_RRF_K,
        dense_weight: float = DEFAULT_DENSE_WEIGHT,
    ) -> None:
        self._client = client
        self._dense_dimension = dense_dimension
        self._rrf_k = rrf_k
        self._dense_weight = dense_weight
        # Companies whose alias is known to exist: saves a round trip per call. Another
        # process dropping a company makes calls here fail loudly, never cross tenants.
        self._known: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    # --- collections and aliases --------------------------------------------------------

    async def _create_collection(self, name: str) -> None:
        await self._client.create_collection(
            collection_name=name,
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

    async def _aliased_collection(self, company_id: str) -> str | None:
        """The concrete collection the company's alias points at, if any."""
        alias = namespace_for(company_id)
        response = await self._client.get_aliases()
        for description in response.aliases:
            if description.alias_name == alias:
                return description.collection_name
        return None

    async def _collection_versions(self, company_id: str) -> list[int]:
        response = await self._client.get_collections()
        versions = (collection_version(company_id, c.name) for c in response.collections)
        return sorted(v for v in versions if v is not None)

    def _lock(self, company_id: str) -> asyncio.Lock:
        return self._locks.setdefault(company_id, asyncio.Lock())

    async def _exists(self, company_id: str) -> bool:
        namespace = namespace_for(company_id)
        if namespace in self._known:
            return True
        if await self._aliased_collection(company_id) is not None:
            self._known.add(namespace)
            return True
        return False

    async def ensure_company(self, company_id: str) -> None:
        namespace = namespace_for(company_id)
        async with self._lock(company_id):
            if await self._exists(company_id):
                return
            # A crash between creating the collection and the alias leaves a collection we
            # can reuse; otherwise start at version 1.
            versions = await self._collection_versions(company_id)
            if versions:
                collection = versioned_collection_for(company_id, versions[-1])
            else:
                collection = versioned_collection_for(company_id, 1)
                await self._create_collection(collection)
            await self._client.update_collection_aliases(
                change_aliases_operations=[
                    models.CreateAliasOperation(
                        create_alias=models.CreateAlias(
                            collection_name=collection, alias_name=namespace
                        )
                    )
                ]
            )
            self._known.add(namespace)

    async def reindex_swap(
        self, company_id: str, batches: AsyncIterable[Sequence[ChunkPoint]]
    ) -> str:
        """Build a fresh collection from ``batches``, then point the alias at it atomically.

        Queries keep hitting the old collection until the swap; the old one is deleted after.
        Returns the new collection's name. On failure the new collection is removed and the
        live one is untouched.
        """
        namespace = namespace_for(company_id)
        async with self._lock(company_id):
            previous = await self._aliased_collection(company_id)
            versions = await self._collection_versions(company_id)
            collection = versioned_collection_for(company_id, (versions[-1] if versions else 0) + 1)
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
                    models.DeleteAliasOperation(
                        delete_alias=models.DeleteAlias(alias_name=namespace)
                    )
                )
            operations.append(
                models.CreateAliasOperation(
                    create_alias=models.CreateAlias(
                        collection_name=collection, alias_name=namespace
                    )
                )
            )
            # One call, one atomic alias change: readers see the old or the new collection.
            await self._client.update_collection_aliases(change_aliases_operations=operations)
            self._known.add(namespace)
            if previous is not None:
                await self._client.delete_collection(previous)
            return collection

    # --- contract -------------------------------------------------------------------------

    @staticmethod
    def _points(points: Sequence[ChunkPoint]) -> list[models.PointStruct]:
        return [
            models.PointStruct(
                id=str(point.id),
                vector={
                    DENSE_VECTOR_NAME: list(point.dense),
                    SPARSE_VECTOR_NAME: _server_sparse(point.sparse),
                },
                payload=point.payload.to_qdrant(),
            )
            for point in points
        ]

    async def upsert(self, company_id: str, points: Sequence[ChunkPoint]) -> None:
        validate_points(company_id, points, self._dense_dimension)
        if not points:
            return
        await self.ensure_company(company_id)
        await self._client.upsert(namespace_for(company_id), points=self._points(points))

    async def _delete(self, company_id: str, selector: models.Filter) -> None:
        if not await self._exists(company_id):
            return
        await self._client.delete(
            namespace_for(company_id), points_selector=models.FilterSelector(filter=selector)
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
        validate_company_id(company_id)
        candidates = validate_query(
            dense=dense,
            sparse=sparse,
            limit=limit,
            mode=mode,
            prefetch_limit=prefetch_limit,
            dense_dimension=self._dense_dimension,
        )
        if not await self._exists(company_id):
            return []
        query_filter = _server_filter(company_id, filter)
        # An empty sparse query (only stopwords, or punctuation) matches nothing; skip it.
        has_sparse = sparse is not None and not sparse.is_empty
        collection = namespace_for(company_id)
        if mode is SearchMode.DENSE:
            assert dense is not None
            response = await self._client.query_points(
                collection,
                query=list(dense),
                using=DENSE_VECTOR_NAME,
                query_filter=query_filter,
                limit=limit,
                with_payload=with_payload,
            )
        elif mode is SearchMode.SPARSE:
            if not has_sparse:
                return []
            assert sparse is not None
            response = await self._client.query_points(
                collection,
                query=_server_sparse(sparse),
                using=SPARSE_VECTOR_NAME,
                query_filter=query_filter,
                limit=limit,
                with_payload=with_payload,
            )
        else:
            assert dense is not None
            prefetch = [
                models.Prefetch(
                    query=list(dense),
                    using=DENSE_VECTOR_NAME,
                    filter=query_filter,
                    limit=candidates,
                )
            ]
            if has_sparse:
                assert sparse is not None
                prefetch.append(
                    models.Prefetch(
                        query=_server_sparse(sparse),
                        using=SPARSE_VECTOR_NAME,
                        filter=query_filter,
                        limit=candidates,
                    )
                )
            response = await self._client.query_points(
                collection,
                prefetch=prefetch,
                query=models.RrfQuery(
                    rrf=models.Rrf(
                        k=self._rrf_k, weights=rrf_weights(self._dense_weight, len(prefetch))
                    )
                ),
                query_filter=query_filter,
                limit=limit,
                with_payload=with_payload,
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
            VectorHit(
                id=_as_uuid(point.id),
                score=float(point.score),
                payload=ChunkPayload.from_qdrant(dict(point.payload or {})),
            )
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
        return [
            VectorMatch.from_fields(_as_uuid(point.id), float(point.score), point.payload)
            for point in points
        ]

    async def payloads(
        self, company_id: str, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ChunkPayload]:
        validate_company_id(company_id)
        if not ids or not await self._exists(company_id):
            return {}
        records = await self._client.retrieve(
            namespace_for(company_id), ids=[str(i) for i in ids], with_payload=True
        )
        return own_payloads(
            company_id,
            ((_as_uuid(r.id), ChunkPayload.from_qdrant(dict(r.payload or {}))) for r in records),
        )

    async def count(self, company_id: str, filter: VectorFilter | None = None) -> int:
        validate_company_id(company_id)
        if not await self._exists(company_id):
            return 0
        result = await self._client.count(
            namespace_for(company_id), count_filter=_server_filter(company_id, filter), exact=True
        )
        return result.count

    async def optimize(self, company_id: str) -> None:
        """A Qdrant server builds its indexes in the background by itself: nothing to do."""
        validate_company_id(company_id)

    async def drop_company(self, company_id: str) -> None:
        namespace = namespace_for(company_id)
        async with self._lock(company_id):
            aliased = await self._aliased_collection(company_id)
            if aliased is not None:
                await self._client.update_collection_aliases(
                    change_aliases_operations=[
                        models.DeleteAliasOperation(
                            delete_alias=models.DeleteAlias(alias_name=namespace)
                        )
                    ]
                )
            # Every version, including leftovers of an interrupted re-index.
            for version in await self._collection_versions(company_id):
                await self._client.delete_collection(versioned_collection_for(company_id, version))
            self._known.discard(namespace)

    async def healthcheck(self) -> bool:
        try:
            await self._client.get_collections()
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self._client.close()
