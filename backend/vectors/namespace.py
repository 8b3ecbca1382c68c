"""Where a company's chunks live, and what their point ids are.

Every tenant name in the vector layer is built here, and only here: the embedded engine
uses :func:`namespace_for` as the shard directory. The server engine has two layouts:
``shared`` (the default) keeps every company in one collection per vector layout,
:func:`shared_collection_for`, partitioned by the ``company_id`` tenant index, with a large
company on its own shard key (:func:`tenant_shard_key`); ``per_company`` puts each company
in its own collection behind the alias :func:`namespace_for`. Either way the versioned
collection behind the alias is :func:`versioned_collection_for`'s name.
"""

from __future__ import annotations

import uuid
from typing import Literal

from backend.tenancy.company_id import validate_company_id

# A fixed namespace makes point ids stable across processes, machines and re-indexes.
_POINT_NAMESPACE = uuid.UUID("6f1c2a0e-8d4b-5c3e-9a7f-1b2c3d4e5f60")

_PREFIX = "hd_"

VectorLayout = Literal["shared", "per_company"]

# The shard key of every company not promoted to its own shard (custom sharding). Company
# ids are slugs of lower-case letters, digits and hyphens: no company can be named this.
FALLBACK_SHARD_KEY = "_shared"


def shared_collection_for(dense_dimension: int) -> str:
    """The alias of the collection every company shares, one per vector layout (a model
    change with another dimension gets a new one), e.g. ``hd_shared_384d``. Company ids
    hold no underscore, so no company's own alias or collection can take this name."""
    if dense_dimension < 1:
        raise ValueError("dense_dimension must be positive")
    return f"{_PREFIX}shared_{dense_dimension}d"


def tenant_shard_key(company_id: str) -> str:
    """The shard key of a company promoted to its own shard."""
    return validate_company_id(company_id)


def namespace_for(company_id: str) -> str:
    """The tenant namespace: shard directory name (edge) or collection alias (server)."""
    return _PREFIX + validate_company_id(company_id)


def versioned_collection_for(company_id: str, version: int) -> str:
    """The concrete server collection behind the alias, e.g. ``hd_acme_v2``."""
    return versioned_name(namespace_for(company_id), version)


def versioned_name(alias: str, version: int) -> str:
    """The concrete collection behind ``alias`` at ``version``, e.g. ``hd_shared_384d_v1``."""
    if version < 1:
        raise ValueError("collection versions start at 1")
    return f"{alias}_v{version}"


def collection_version(company_id: str, collection_name: str) -> int | None:
    """The version encoded in ``collection_name`` if it belongs to ``company_id``."""
    return alias_version(namespace_for(company_id), collection_name)


def alias_version(alias: str, collection_name: str) -> int | None:
    """The version encoded in ``collection_name`` if it stands behind ``alias``."""
    prefix = alias + "_v"
    suffix = collection_name.removeprefix(prefix)
    if suffix == collection_name or not suffix.isdigit():
        return None
    return int(suffix)


def point_id(company_id: str, source: str, document_id: str, chunk_index: int) -> uuid.UUID:
    """Deterministic id of one chunk: re-ingesting the same chunk overwrites, never duplicates."""
    validate_company_id(company_id)
    if chunk_index < 0:
        raise ValueError("chunk_index must be >= 0")
    # "\x1f" (unit separator) cannot occur in slugs or platform ids, so parts never blur.
    name = "\x1f".join((company_id, source, document_id, str(chunk_index)))
    return uuid.uuid5(_POINT_NAMESPACE, name)
