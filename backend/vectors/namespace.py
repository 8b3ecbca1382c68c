"""Where a company's chunks live, and what their point ids are.

Every tenant name in the vector layer is built here, and only here: the embedded engine
uses :func:`namespace_for` as the shard directory, the server engine as the alias in front
of the versioned collection. Moving to one shared collection partitioned by a tenant payload
index (Qdrant's advice beyond about a thousand tenants) changes this module and the engines'
collection lookup, nothing else.
"""

from __future__ import annotations

import uuid

from backend.tenancy.company_id import validate_company_id

# A fixed namespace makes point ids stable across processes, machines and re-indexes.
_POINT_NAMESPACE = uuid.UUID("6f1c2a0e-8d4b-5c3e-9a7f-1b2c3d4e5f60")

_PREFIX = "hd_"


def namespace_for(company_id: str) -> str:
    """The tenant namespace: shard directory name (edge) or collection alias (server)."""
    return _PREFIX + validate_company_id(company_id)


def versioned_collection_for(company_id: str, version: int) -> str:
    """The concrete server collection behind the alias, e.g. ``hd_acme_v2``."""
    if version < 1:
        raise ValueError("collection versions start at 1")
    return f"{namespace_for(company_id)}_v{version}"


def collection_version(company_id: str, collection_name: str) -> int | None:
    """The version encoded in ``collection_name`` if it belongs to ``company_id``."""
    prefix = namespace_for(company_id) + "_v"
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
