"""Ingest: normalize → chunk → embed → upsert."""
