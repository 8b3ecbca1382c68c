from __future__ import annotations

from pathlib import Path

import pytest

from backend.errors import InvalidCompanyId
from backend.vectors import (
    EdgeVectorStore,
    QdrantServerVectorStore,
    build_vector_store,
    namespace_for,
    point_id,
)
from backend.vectors.namespace import collection_version, versioned_collection_for


def test_point_ids_are_deterministic_uuid5() -> None:
    first = point_id("acme", "freshdesk", "123", 0)
    assert first == point_id("acme", "freshdesk", "123", 0)
    assert first.version == 5


def test_point_ids_never_change_between_releases() -> None:
    # Stored points are addressed by these ids: a change would duplicate every chunk on the
    # next ingest instead of overwriting it.
    assert str(point_id("acme", "freshdesk", "123", 0)) == "27115821-b9c5-576e-b839-c19d9d384559"


def test_point_ids_differ_by_every_part() -> None:
    ids = {
        point_id("acme", "freshdesk", "123", 0),
        point_id("globex", "freshdesk", "123", 0),
        point_id("acme", "zendesk", "123", 0),
        point_id("acme", "freshdesk", "124", 0),
        point_id("acme", "freshdesk", "123", 1),
        # parts must not run into each other
        point_id("acme", "freshdesk1", "23", 0),
    }
    assert len(ids) == 6


def test_point_id_rejects_bad_input() -> None:
    with pytest.raises(InvalidCompanyId):
        point_id("ACME", "freshdesk", "1", 0)
    with pytest.raises(ValueError, match="chunk_index"):
        point_id("acme", "freshdesk", "1", -1)


def test_names_come_from_one_place() -> None:
    assert namespace_for("acme") == "hd_acme"
    assert versioned_collection_for("acme", 3) == "hd_acme_v3"
    assert collection_version("acme", "hd_acme_v3") == 3
    assert collection_version("acme", "hd_acme-eu_v3") is None
    assert collection_version("acme", "hd_acme_vx") is None
    with pytest.raises(InvalidCompanyId):
        namespace_for("../etc")


async def test_factory_picks_the_engine(tmp_path: Path) -> None:
    embedded = build_vector_store(None, None, tmp_path, dense_dimension=8)
    assert isinstance(embedded, EdgeVectorStore)
    await embedded.close()
    server = build_vector_store(":memory:", None, tmp_path, dense_dimension=8)
    assert isinstance(server, QdrantServerVectorStore)
    assert await server.healthcheck() is True
    await server.close()
