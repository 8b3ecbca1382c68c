"""Freshdesk v2: tickets with conversations, solution articles, deleted and spam tickets."""

from backend.adapters.freshdesk.adapter import (
    FreshdeskAdapter,
    FreshdeskCheckpoint,
    FreshdeskCredentials,
    FreshdeskPhase,
    FreshdeskSettings,
)

__all__ = [
    "FreshdeskAdapter",
    "FreshdeskCheckpoint",
    "FreshdeskCredentials",
    "FreshdeskPhase",
    "FreshdeskSettings",
]
