"""Logs, metrics and request tracing."""
