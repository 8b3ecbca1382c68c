"""HTTP handlers only: validation, dependencies and responses. No SQL, no Qdrant, no models."""
