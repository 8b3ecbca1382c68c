"""Hybrid search over a company's knowledge: filters, per-document dedupe, citation handles.

:class:`HybridRetriever` asks the vector store for dense + sparse candidates fused with RRF
(the store does the fusion), keeps the best chunk(s) of each document and returns
:class:`RetrievedPassage` values that carry everything a citation needs.
"""

from backend.retrieval.access import AGENT_SCOPE, CUSTOMER_SCOPE, AccessScope
from backend.retrieval.filters import SOLVED_STATUSES, SearchFilters
from backend.retrieval.passages import RetrievedPassage, make_snippet
from backend.retrieval.retriever import HybridRetriever, is_mostly_non_latin

__all__ = [
    "AGENT_SCOPE",
    "CUSTOMER_SCOPE",
    "SOLVED_STATUSES",
    "AccessScope",
    "HybridRetriever",
    "RetrievedPassage",
    "SearchFilters",
    "is_mostly_non_latin",
    "make_snippet",
]
