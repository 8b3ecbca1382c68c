"""Prometheus metrics (on the default registry, which every module shares).

Labels stay low-cardinality: routes are the route *templates*, and per-company counters are
bounded — the first ``MAX_TRACKED_COMPANIES`` companies a process sees get their own series,
the rest are counted under ``_other`` — so a platform with thousands of tenants cannot blow
up the time-series database.
"""

from __future__ import annotations

import threading

from prometheus_client import Counter, Histogram

MAX_TRACKED_COMPANIES = 200

HTTP_REQUESTS = Counter(
    "helpdesk_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "helpdesk_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
COMPANY_REQUESTS = Counter(
    "helpdesk_company_requests_total",
    f"Authenticated requests per company (first {MAX_TRACKED_COMPANIES} companies seen by "
    "this process; the rest under '_other').",
    ["company"],
)


class BoundedLabel:
    """Maps an unbounded value set onto at most ``limit`` label values plus ``_other``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if value in self._seen or len(self._seen) < self._limit:
                self._seen.add(value)
                return value
        return "_other"


company_label = BoundedLabel(MAX_TRACKED_COMPANIES)


def count_company_request(company_id: str) -> None:
    COMPANY_REQUESTS.labels(company=company_label(company_id)).inc()
