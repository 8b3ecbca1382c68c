"""Webhooks in: platforms push "this item changed", we re-fetch it (see service.py)."""
