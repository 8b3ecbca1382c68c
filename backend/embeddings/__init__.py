"""Dense (sentence-transformers or an embeddings API) and sparse (lexical) text encoders."""

from backend.embeddings.dense import (
    DenseEncoder,
    EmbeddingError,
    OpenAICompatibleEncoder,
    SentenceTransformerEncoder,
    build_dense_encoder,
)
from backend.embeddings.sparse import SparseEncoder, term_id, tokenize

__all__ = [
    "DenseEncoder",
    "EmbeddingError",
    "OpenAICompatibleEncoder",
    "SentenceTransformerEncoder",
    "SparseEncoder",
    "build_dense_encoder",
    "term_id",
    "tokenize",
]
