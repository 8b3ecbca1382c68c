"""Zendesk: tickets via the incremental cursor export, comments, Help Center articles."""

from backend.adapters.zendesk.adapter import ZendeskAdapter
from backend.adapters.zendesk.models import ZendeskCheckpoint, ZendeskCredentials, ZendeskSettings

__all__ = ["ZendeskAdapter", "ZendeskCheckpoint", "ZendeskCredentials", "ZendeskSettings"]
