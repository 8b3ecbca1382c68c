"""Replies out: review replies with approval and publishing, negative-review alerts, and
ticket drafts posted to the helpdesk as private notes."""
