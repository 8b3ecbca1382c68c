"""Shaping the analytics rollups into per-day figures (percentiles from latency histograms).

Latencies are rolled up as a histogram with logarithmic buckets (bucket ``b`` holds
``floor(ln(1 + ms) * 10) = b``, about 10% wide at every scale), so p50 and p95 of any day,
task or window are read from bucket counts, never from raw rows; a percentile is reported
as the middle of its bucket, within about 5% of the exact value.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

NO_LATENCY_BUCKET = -1


def bucket_of(latency_ms: float) -> int:
    """The bucket a latency falls in (the migration's SQL computes the same)."""
    return math.floor(math.log(1 + max(latency_ms, 0)) * 10)


def bucket_value_ms(bucket: int) -> float:
    """The middle of a bucket, in milliseconds."""
    return math.exp((bucket + 0.5) / 10) - 1


def percentile(histogram: Mapping[int, int], fraction: float) -> float | None:
    """The ``fraction`` percentile (0 < fraction <= 1) of a bucket → count histogram."""
    counted = sorted((b, n) for b, n in histogram.items() if b != NO_LATENCY_BUCKET and n > 0)
    total = sum(n for _, n in counted)
    if total == 0:
        return None
    rank = fraction * total
    running = 0
    for bucket, count in counted:
        running += count
        if running >= rank:
            return round(bucket_value_ms(bucket), 1)
    return round(bucket_value_ms(counted[-1][0]), 1)


def _merge(into: dict[int, int], histogram: Mapping[str, Any]) -> None:
    for bucket, calls in histogram.items():
        into[int(bucket)] = into.get(int(bucket), 0) + int(calls)


def _figures(calls: int, hits: int, histogram: Mapping[int, int]) -> dict[str, Any]:
    return {
        "calls": calls,
        "cache_hits": hits,
        "cache_hit_rate": round(hits / calls, 4) if calls else None,
        "latency_p50_ms": percentile(histogram, 0.5),
        "latency_p95_ms": percentile(histogram, 0.95),
    }


def assistant_days(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per day and task: calls, cache hit rate, latency p50/p95 (providers merged)."""
    histograms: dict[tuple[date, str], dict[int, int]] = defaultdict(dict)
    calls: dict[tuple[date, str], int] = defaultdict(int)
    hits: dict[tuple[date, str], int] = defaultdict(int)
    for row in rows:
        key = (row["day"], row["task"])
        _merge(histograms[key], row["latency_histogram"])
        calls[key] += int(row["calls"])
        hits[key] += int(row["cache_hits"])
    return [
        {"day": day, "task": task, **_figures(calls[(day, task)], hits[(day, task)], histogram)}
        for (day, task), histogram in sorted(histograms.items())
    ]


def assistant_totals(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per task over the whole window."""
    histograms: dict[str, dict[int, int]] = defaultdict(dict)
    calls: dict[str, int] = defaultdict(int)
    hits: dict[str, int] = defaultdict(int)
    for row in rows:
        _merge(histograms[row["task"]], row["latency_histogram"])
        calls[row["task"]] += int(row["calls"])
        hits[row["task"]] += int(row["cache_hits"])
    return [
        {"task": task, **_figures(calls[task], hits[task], histogram)}
        for task, histogram in sorted(histograms.items())
    ]


def provider_days(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per day and provider: calls, tokens and cost (tasks merged)."""
    totals: dict[tuple[date, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["day"], row["provider"] or "none")
        entry = totals.setdefault(
            key,
            {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0},
        )
        entry["calls"] += int(row["calls"])
        entry["prompt_tokens"] += int(row["prompt_tokens"])
        entry["completion_tokens"] += int(row["completion_tokens"])
        entry["cost_usd"] += float(row["cost_usd"])
    return [
        {"day": day, "provider": provider, **values, "cost_usd": round(values["cost_usd"], 6)}
        for (day, provider), values in sorted(totals.items())
    ]


def draft_acceptance(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Drafts inserted as is, inserted then edited, discarded, and the share of each."""
    outcomes = {"inserted": 0, "edited": 0, "discarded": 0}
    for row in rows:
        if row["outcome"] in outcomes:
            outcomes[row["outcome"]] += int(row["entries"])
    total = sum(outcomes.values())
    return {
        **outcomes,
        "reported": total,
        "acceptance_rate": round((outcomes["inserted"] + outcomes["edited"]) / total, 4)
        if total
        else None,
        "edited_rate": round(outcomes["edited"] / total, 4) if total else None,
    }
