"""Public review exports recognised by their own column names, and --map for the rest.

Fixtures are written from the platforms' documented export shapes: Trustpilot's business
CSV export, Google Takeout's Business Profile ``reviews.json`` (the API's review objects),
Naver Smart Place and Kakao Map CSV exports (Korean headers).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from platform_replay import FIXTURES
from typer.testing import CliRunner

from backend.adapters.base import SourceDocument
from backend.adapters.reviews.export import (
    ReviewExportAdapter,
    ReviewExportSettings,
    parse_column_map,
)
from backend.cli import app

REVIEWS = FIXTURES / "reviews"


async def import_export(name: str, **settings: object) -> dict[str, SourceDocument]:
    adapter = ReviewExportAdapter(
        settings=ReviewExportSettings.model_validate({"path": str(REVIEWS / name), **settings})
    )
    page = await adapter.fetch_page(adapter.initial_checkpoint())
    assert page.failures == []
    return {document.external_id: document for document in page.documents}


async def test_trustpilot_export() -> None:
    documents = await import_export("trustpilot_export.csv")
    assert list(documents) == [
        "review:trustpilot:65f1c0a2e4b0d12a9c3e7f01",
        "review:trustpilot:65f2d7b1a8c0e23b7d4f8a02",
        "review:trustpilot:65f3e8c2b9d1f34c8e5a9b03",
    ]
    replied = documents["review:trustpilot:65f1c0a2e4b0d12a9c3e7f01"]
    assert replied.title == "Fast delivery"
    assert replied.status == "replied"
    assert replied.rating == 5
    assert replied.requester == "Hannah M."
    assert replied.created_at == datetime(2024, 3, 13, 9, 12, 44, tzinfo=UTC)
    assert replied.updated_at == datetime(2024, 3, 13, 15, 40, 2, tzinfo=UTC)
    [review, reply] = replied.parts
    assert review.label == "review" and review.text.startswith("Ordered on Monday")
    assert (
        reply.label == "owner_reply" and reply.text == "Thanks Hannah, glad it paired first time!"
    )
    assert replied.metadata["platform"] == "trustpilot"
    # Columns with no field of their own stay findable, not lost.
    assert replied.metadata["extra"]["Reference Id"] == "ORD-4471"

    unreplied = documents["review:trustpilot:65f2d7b1a8c0e23b7d4f8a02"]
    assert unreplied.status == "unreplied" and unreplied.title == "Stopped working after a week"
    assert documents["review:trustpilot:65f3e8c2b9d1f34c8e5a9b03"].language == "fr"


async def test_google_takeout_reviews() -> None:
    documents = await import_export("google_takeout_reviews.json")
    assert list(documents) == [
        "review:google:AbFvOqn1xYzA",
        "review:google:AbFvOqn2BcDe",
        "review:google:AbFvOqn3FgHi",
    ]
    first = documents["review:google:AbFvOqn1xYzA"]
    assert first.rating == 5 and first.requester == "Priya Raman"
    assert first.status == "replied"
    assert first.parts[1].text == "Thank you Priya, see you again soon!"
    assert first.created_at == datetime(2024, 2, 20, 10, 15, 30, 123456, tzinfo=UTC)
    assert first.parts[1].created_at == datetime(2024, 2, 21, 8, tzinfo=UTC)
    assert documents["review:google:AbFvOqn2BcDe"].rating == 2
    assert documents["review:google:AbFvOqn2BcDe"].status == "unreplied"
    rating_only = documents["review:google:AbFvOqn3FgHi"]
    assert rating_only.rating == 4 and rating_only.parts == []
    assert rating_only.title == "4-star google review by 김지훈"


async def test_naver_smart_place_export() -> None:
    documents = await import_export(
        "naver_smartplace_export.csv", platform="naver", language="ko", timezone="Asia/Seoul"
    )
    replied = documents["review:naver:NV-20240301-01"]
    assert replied.requester == "jiyo****"
    assert replied.status == "replied" and replied.parts[1].text == "방문해 주셔서 감사합니다!"
    # Written 2024.03.01 14:22 Korean time; the visit date stays as a fact beside it.
    assert replied.created_at == datetime(2024, 3, 1, 5, 22, tzinfo=UTC)
    assert replied.parts[1].created_at == datetime(2024, 3, 2, 0, 10, tzinfo=UTC)
    assert replied.metadata["extra"]["방문일"] == "2024.02.28"
    assert replied.rating is None  # Naver place reviews carry keywords, not stars
    assert documents["review:naver:NV-20240302-02"].status == "unreplied"


async def test_kakao_map_export() -> None:
    documents = await import_export(
        "kakao_map_export.csv", platform="kakao", language="ko", timezone="Asia/Seoul"
    )
    [first, second] = documents.values()
    assert first.requester == "카카오맛집러" and first.rating == 4
    assert first.status == "replied" and first.parts[1].text == "소중한 후기 감사합니다"
    assert first.created_at == datetime(2024, 3, 4, 15, tzinfo=UTC)
    assert second.status == "unreplied" and second.rating == 1


async def test_any_other_export_with_a_column_map() -> None:
    columns = parse_column_map(
        [
            "review_id=Ref",
            "title=Headline",
            "text=Feedback",
            "date=When",
            "reply=Our answer",
            "author=Who",
        ]
    )
    documents = await import_export("custom_export.csv", platform="survey", columns=columns)
    first = documents["review:survey:C-1"]
    assert first.title == "Great support" and first.requester == "Ana"
    assert first.status == "replied" and first.parts[1].text == "Thank you!"
    assert first.created_at == datetime(2024, 1, 10, tzinfo=UTC)
    assert "extra" not in first.metadata  # every column was used
    assert documents["review:survey:C-2"].status == "unreplied"


def test_column_map_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="FIELD=COLUMN"):
        parse_column_map(["headline=Title"])
    with pytest.raises(ValueError, match="FIELD=COLUMN"):
        parse_column_map(["title"])
    assert parse_column_map(["title=A", "title=B"]) == {"title": ["A", "B"]}


def test_cli_refuses_a_bad_map_before_importing() -> None:
    result = CliRunner().invoke(
        app,
        [
            "ingest",
            "reviews",
            str(REVIEWS / "custom_export.csv"),
            "--company",
            "acme",
            "--map",
            "headline=Headline",
        ],
    )
    assert result.exit_code == 2
    # Rich wraps the message in a box; compare without the layout.
    assert "FIELD=COLUMN" in "".join(result.output.split())
