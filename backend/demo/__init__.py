"""Sample data for the demo company: Lumen Home, a (fictional) maker of smart-home devices.

Everything lives under ``data/`` as the exports our file adapters read, in English and Korean:

- ``kb/``: a Markdown knowledge base (front matter gives title, language, URL, tags), read by
  the ``article_folder`` adapter.
- ``tickets.jsonl``: solved and open tickets, one JSON object a line, read by the
  ``file_export`` adapter. Each record also carries its ``conversation`` (replies, and private
  notes with ``internal: true``) in the raw payload.
- ``reviews/``: an online-store review export (JSONL, 1-5 stars) and a Naver review export
  (CSV with Korean column names, Seoul local time, one review without a rating), read by the
  ``review_export`` adapter.

Two open tickets have answers that are plainly in the knowledge base: ``LH-1042`` (English:
the hub drops off a dual-band mesh Wi-Fi → the "2.4 GHz only" article) and ``LH-2015``
(Korean: return shipping cost and refund timing → the refund policy article).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
"""Where the sample exports live (inside the package, so an installed wheel has them too)."""

KB_DIR = DATA_DIR / "kb"
TICKETS_FILE = DATA_DIR / "tickets.jsonl"
STORE_REVIEWS_FILE = DATA_DIR / "reviews" / "store_reviews.jsonl"
NAVER_REVIEWS_FILE = DATA_DIR / "reviews" / "naver_reviews.csv"

TICKET_SOURCE = "file_export"
"""The source the sample tickets are stored under (the file adapter's source name)."""

SAMPLE_OPEN_TICKET_ID = "LH-1042"
"""An open English ticket whose answer is in the knowledge base (source ``file_export``,
document external id ``ticket:LH-1042``)."""

SAMPLE_OPEN_TICKET_ID_KO = "LH-2015"
"""An open Korean ticket whose answer is in the knowledge base (source ``file_export``)."""

KB_BASE_URL = "https://help.lumenhome.example"


def demo_sources() -> list[tuple[str, dict[str, Any]]]:
    """(platform, adapter settings) for each sample export, ready for ``build_adapter``.

    None of these adapters takes credentials: pass ``{}``.
    """
    return [
        ("article_folder", {"root": str(KB_DIR), "base_url": KB_BASE_URL}),
        (
            "file_export",
            {
                "path": str(TICKETS_FILE),
                "format": "jsonl",
                # Records say "type": "ticket"; the default only matters for records that don't.
                "default_kind": "ticket",
            },
        ),
        (
            "review_export",
            {"path": str(STORE_REVIEWS_FILE), "format": "jsonl", "platform": "lumen-store"},
        ),
        (
            "review_export",
            {
                "path": str(NAVER_REVIEWS_FILE),
                "format": "csv",
                "platform": "naver",
                # Naver exports are in Seoul local time, without a zone, and have no language
                # column.
                "timezone": "Asia/Seoul",
                "language": "ko",
                "rating_scale": 5,
            },
        ),
    ]


__all__ = [
    "DATA_DIR",
    "KB_BASE_URL",
    "SAMPLE_OPEN_TICKET_ID",
    "SAMPLE_OPEN_TICKET_ID_KO",
    "TICKET_SOURCE",
    "demo_sources",
]
