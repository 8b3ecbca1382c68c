"""Review exports (Naver-style JSONL, Kakao-style CSV) through the review_export adapter."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from platform_replay import FIXTURES

from backend.adapters.files.tabular import parse_export_date
from backend.adapters.reviews.export import (
    ReviewExportAdapter,
    ReviewExportCheckpoint,
    ReviewExportSettings,
)
from backend.adapters.reviews.ratings import normalize_rating, parse_rating

NAVER = FIXTURES / "reviews" / "naver_reviews.jsonl"
KAKAO = FIXTURES / "reviews" / "kakao_export.csv"


async def test_naver_jsonl_infers_the_ten_point_scale_and_reports_bad_rows() -> None:
    adapter = ReviewExportAdapter(
        settings=ReviewExportSettings(
            path=str(NAVER), platform="naver", language="ko", timezone="Asia/Seoul"
        )
    )
    page = await adapter.fetch_page(adapter.initial_checkpoint())
    assert not page.has_more
    documents = {doc.external_id: doc for doc in page.documents}
    assert list(documents) == [
        "review:naver:18820001",
        "review:naver:18820002",
        "review:naver:18820003",
        "review:naver:18820006",
    ]
    best = documents["review:naver:18820001"]
    assert best.source == "review_export"
    assert best.rating == 5.0
    assert best.metadata["rating_original"] == "10"
    assert best.metadata["rating_scale"] == 10
    assert best.metadata["platform"] == "naver"
    assert best.metadata["extra"] == {"movie_id": "201641"}
    assert best.requester == "mool****"
    assert best.language == "ko"
    assert best.parts[0].text == "배우들 연기가 정말 좋았어요. 마지막 장면에서 울컥했네요"
    # "23.11.02" is Naver's yy.mm.dd in Korean time: 2023-11-02 00:00 KST.
    assert best.created_at == datetime(2023, 11, 1, 15, 0, tzinfo=UTC)
    assert documents["review:naver:18820002"].rating == normalize_rating(3, 10)
    missing = documents["review:naver:18820003"]
    assert missing.rating is None
    assert "rating_original" not in missing.metadata
    assert missing.title == "naver review by ddun****"

    failures = {failure.where: failure for failure in page.failures}
    assert set(failures) == {"naver_reviews.jsonl:4", "naver_reviews.jsonl:5"}
    assert "invalid JSON" in failures["naver_reviews.jsonl:4"].message
    assert not any(failure.retryable for failure in page.failures)


async def test_kakao_csv_with_korean_headers_replies_and_malformed_rows() -> None:
    adapter = ReviewExportAdapter(
        settings=ReviewExportSettings(path=str(KAKAO), rating_scale=5, timezone="Asia/Seoul")
    )
    page = await adapter.fetch_page(adapter.initial_checkpoint())
    documents = {doc.external_id: doc for doc in page.documents}
    assert list(documents) == ["review:kakao:K-1001", "review:kakao:K-1002", "review:kakao:K-1004"]
    replied = documents["review:kakao:K-1001"]
    assert replied.rating == 5.0
    assert [(p.label, p.author_role) for p in replied.parts] == [
        ("review", "customer"),
        ("owner_reply", "owner"),
    ]
    assert replied.parts[0].text == "포장 꼼꼼하고 배송 빨라요, 재구매 의사 있습니다"
    assert replied.status == "replied"
    assert documents["review:kakao:K-1002"].rating is None
    assert documents["review:kakao:K-1004"].created_at == datetime(2024, 3, 3, 15, 0, tzinfo=UTC)
    messages = {failure.where: failure.message for failure in page.failures}
    assert set(messages) == {"kakao_export.csv:3", "kakao_export.csv:5"}
    assert "columns" in messages["kakao_export.csv:3"]
    assert "outside 1..5" in messages["kakao_export.csv:5"]


async def test_explicit_columns_json_export_and_derived_ids(tmp_path: Path) -> None:
    export = tmp_path / "reviews.json"
    rows = [
        {"글": "재방문 의사 100%", "점": 4.5, "닉": "lee", "언제": "2024/02/01"},
        {"글": "별로였어요", "점": None, "닉": "kim", "언제": "1706745600"},
    ]
    export.write_text(json.dumps({"reviews": rows}, ensure_ascii=False), encoding="utf-8")
    settings = ReviewExportSettings(
        path=str(export),
        platform="Kakao Map",
        columns={"text": "글", "rating": "점", "author": "닉", "date": "언제"},
    )
    first = await ReviewExportAdapter(settings=settings).fetch_page(ReviewExportCheckpoint())
    again = await ReviewExportAdapter(settings=settings).fetch_page(ReviewExportCheckpoint())
    assert first.failures == []
    ids = [doc.external_id for doc in first.documents]
    assert ids == [doc.external_id for doc in again.documents]
    assert all(i.startswith("review:kakao-map:sha256-") for i in ids)
    assert first.documents[0].rating == 4.5
    assert first.documents[1].rating is None
    assert first.documents[1].created_at == datetime(2024, 2, 1, tzinfo=UTC)


async def test_batches_resume_from_json_and_a_replaced_export_starts_over(tmp_path: Path) -> None:
    export = tmp_path / "naver.jsonl"
    shutil.copy(NAVER, export)
    adapter = ReviewExportAdapter(settings=ReviewExportSettings(path=str(export), batch_size=2))
    seen: list[str] = []
    failures = 0
    stored = adapter.initial_checkpoint().model_dump_json()
    for _ in range(10):
        page = await ReviewExportAdapter(
            settings=ReviewExportSettings(path=str(export), batch_size=2)
        ).fetch_page(ReviewExportCheckpoint.model_validate_json(stored))
        seen += [doc.external_id for doc in page.documents]
        failures += len(page.failures)
        stored = page.checkpoint.model_dump_json()
        if not page.has_more:
            break
    assert len(seen) == len(set(seen)) == 4
    assert failures == 2

    finished = ReviewExportCheckpoint.model_validate_json(stored)
    idle = await adapter.fetch_page(finished)
    assert idle.documents == [] and not idle.has_more

    with export.open("a", encoding="utf-8") as handle:
        handle.write(
            json.dumps({"review": "새로 추가된 리뷰", "rating": "6", "review_id": "18820007"})
            + "\n"
        )
    os.utime(export, ns=(1, 1_700_000_000_000_000_000))
    restarted = await adapter.fetch_page(finished)
    assert restarted.checkpoint.fingerprint != finished.fingerprint
    assert [doc.external_id for doc in restarted.documents][:2] == [
        "review:export:18820001",
        "review:export:18820002",
    ]


async def test_missing_file_is_a_blocking_failure(tmp_path: Path) -> None:
    adapter = ReviewExportAdapter(settings=ReviewExportSettings(path=str(tmp_path / "none.csv")))
    page = await adapter.fetch_page(adapter.initial_checkpoint())
    [failure] = page.failures
    assert failure.message == "file not found"
    assert page.blocked


@pytest.mark.parametrize(
    ("raw", "scale", "expected"),
    [("10", 10, 5.0), ("1", 10, 1.0), ("8", 10, 4.11), ("4,5", 5, 4.5), ("8/10", 10, 4.11)],
)
def test_rating_normalization(raw: str, scale: int, expected: float) -> None:
    number = parse_rating(raw)
    assert number is not None
    assert normalize_rating(number, scale) == expected


def test_rating_errors_and_dates() -> None:
    assert parse_rating("") is None
    with pytest.raises(ValueError, match="could not convert"):
        parse_rating("다섯")
    with pytest.raises(ValueError, match="outside"):
        normalize_rating(11, 10)
    assert parse_export_date("2024년 3월 4일 13:05") == datetime(2024, 3, 4, 13, 5, tzinfo=UTC)
    assert parse_export_date("2024-03-04T10:00:00+09:00") == datetime(2024, 3, 4, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="unrecognized"):
        parse_export_date("어제")
