"""How a fetched document is kept in the object store, so it can be indexed again.

The object store holds each document as the adapter built it (``SourceDocument``, with the
platform's raw payload inside), so a re-index — a new embedding model, a chunking change —
rebuilds chunks and vectors from here without fetching anything from the platform again.

Objects written before this format held only the platform's raw payload: they still serve a
data-subject access export (:func:`raw_payload`), but cannot be re-indexed
(:func:`read_stored_document` returns ``None``) until the connector syncs them again.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from backend.adapters.base import SourceDocument

STORED_FORMAT = "source-document/1"


def stored_payload(document: SourceDocument) -> dict[str, Any]:
    """The JSON object kept for ``document``."""
    return {"format": STORED_FORMAT, "document": document.model_dump(mode="json")}


def read_stored_document(payload: Any) -> SourceDocument | None:
    """The document kept in ``payload``; ``None`` for an older raw-only object."""
    if not isinstance(payload, dict) or payload.get("format") != STORED_FORMAT:
        return None
    try:
        return SourceDocument.model_validate(payload.get("document"))
    except ValidationError:
        return None


def raw_payload(payload: Any) -> Any:
    """The platform's payload as fetched (what an access request exports).

    For a document without a raw payload (built from a file, say) that is the document itself.
    """
    if isinstance(payload, dict) and payload.get("format") == STORED_FORMAT:
        document = payload.get("document")
        if isinstance(document, dict):
            raw = document.get("raw")
            return raw if raw else {k: v for k, v in document.items() if k != "raw"}
    return payload
