"""Chunking by kind: tickets (Q&A first, internal notes apart), articles, reviews."""

from __future__ import annotations

import pytest

from backend.adapters.base import DocumentKind, DocumentPart, SourceDocument
from backend.ingest.chunking import (
    DEFAULT_CHUNK_SIZE,
    Chunk,
    Chunker,
    chunk_document,
)
from backend.ingest.normalize import normalize_document


def make(
    kind: DocumentKind, title: str, parts: list[DocumentPart], **extra: object
) -> SourceDocument:
    return SourceDocument.model_validate(
        {
            "source": "test",
            "external_id": f"{kind.value}:1",
            "kind": kind,
            "title": title,
            "parts": parts,
            **extra,
        }
    )


def resolved_ticket(status: str | None = "resolved") -> SourceDocument:
    return make(
        DocumentKind.TICKET,
        "CSV export returns Error 500",
        [
            DocumentPart(text="CSV export returns Error 500", label="subject"),
            DocumentPart(
                text="<p>Exporting the monthly report gives <b>Error 500</b>.</p>",
                format="html",
                label="description",
                author_role="customer",
            ),
            DocumentPart(
                text="Customer is on the legacy plan; row limit is 10k. Do not promise a fix.",
                label="note",
                author_role="agent",
                internal=True,
            ),
            DocumentPart(
                text="Could you try a smaller date range?", label="reply", author_role="agent"
            ),
            DocumentPart(
                text="Smaller ranges work, thanks!", label="reply", author_role="customer"
            ),
            DocumentPart(
                text="Exports over 10,000 rows time out; split the range by month.",
                label="reply",
                author_role="agent",
            ),
        ],
        status=status,
    )


def test_ticket_starts_with_a_question_and_resolution_chunk() -> None:
    chunks = chunk_document(resolved_ticket())
    first = chunks[0]
    assert first.index == 0
    assert first.section == "resolution"
    assert not first.internal
    assert first.text == (
        "Q: CSV export returns Error 500\nExporting the monthly report gives Error 500.\n\n"
        "Resolution: Exports over 10,000 rows time out; split the range by month."
    )
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_explicit_resolution_note_wins_over_the_last_reply() -> None:
    doc = resolved_ticket()
    parts = [
        *doc.parts,
        DocumentPart(
            text="Raised export limit to 50k rows.", label="resolution", author_role="agent"
        ),
    ]
    chunks = chunk_document(doc.model_copy(update={"parts": parts}))
    assert chunks[0].text.endswith("Resolution: Raised export limit to 50k rows.")


def test_open_ticket_labels_the_last_reply_as_such() -> None:
    chunks = chunk_document(resolved_ticket(status="open"))
    assert "Latest agent reply: Exports over 10,000 rows" in chunks[0].text
    assert "Resolution:" not in chunks[0].text


def test_internal_notes_never_share_a_chunk_with_public_text() -> None:
    chunks = chunk_document(resolved_ticket())
    internal = [c for c in chunks if c.internal]
    public = [c for c in chunks if not c.internal]
    assert len(internal) == 1
    assert internal[0].section == "internal notes"
    assert "legacy plan" in internal[0].text
    assert "not for customers" in internal[0].text
    assert "Smaller ranges work" not in internal[0].text
    assert all("legacy plan" not in c.text for c in public)
    thread = [c for c in public if c.section == "thread"]
    assert thread[0].text.startswith("CSV export returns Error 500\n\nCustomer: Exporting")
    assert "Agent: Could you try" in thread[0].text
    assert "Customer: Smaller ranges work" in thread[0].text


def test_long_threads_are_split_with_overlap_and_bounded_size() -> None:
    replies = [
        DocumentPart(
            text=f"Update {i}: we checked server {i} and the queue depth was normal, "
            "the timeout happens when the export job exceeds sixty seconds.",
            label="reply",
            author_role="agent" if i % 2 else "customer",
        )
        for i in range(60)
    ]
    doc = make(DocumentKind.TICKET, "Slow exports", replies, status="closed")
    chunks = Chunker(chunk_size=900, chunk_overlap=120).chunk(doc)
    thread = [c for c in chunks if c.section == "thread"]
    assert len(thread) >= 6
    assert all(len(c.text) <= 900 for c in chunks)
    assert all(c.text.startswith("Slow exports\n\n") for c in thread)
    # Consecutive chunks overlap: the end of one reappears at the start of the next.
    first_body, second_body = (c.text.removeprefix("Slow exports\n\n") for c in thread[:2])
    assert first_body[-40:] in second_body
    # Nothing is lost: every update appears in some chunk.
    joined = "\n".join(c.text for c in thread)
    assert all(f"Update {i}:" in joined for i in range(60))


def test_article_chunks_follow_headings_with_title_prefix() -> None:
    body = (
        "<h1>Set up single sign-on</h1><p>SSO lets your team log in with one account.</p>"
        "<h2>Okta</h2><p>" + "Create an app integration and paste the ACS URL. " * 40 + "</p>"
        "<h2>Azure AD</h2><h3>Claims</h3><ul><li>email</li><li>name</li></ul>"
    )
    doc = make(
        DocumentKind.ARTICLE,
        "Set up single sign-on",
        [
            DocumentPart(text="Set up single sign-on", label="subject"),
            DocumentPart(text=body, format="html", label="section"),
        ],
    )
    chunks = chunk_document(doc)
    assert all(c.text.startswith("Set up single sign-on\n") for c in chunks)
    assert chunks[0].section is None  # the h1 repeats the title
    assert chunks[0].text == (
        "Set up single sign-on\n\nSSO lets your team log in with one account."
    )
    okta = [c for c in chunks if c.section == "Okta"]
    assert len(okta) >= 2
    assert all(c.text.startswith("Set up single sign-on\nOkta\n\n") for c in okta)
    assert all(len(c.text) <= DEFAULT_CHUNK_SIZE for c in chunks)
    claims = [c for c in chunks if c.section == "Azure AD › Claims"]
    assert claims == [
        Chunk(
            index=claims[0].index,
            text="Set up single sign-on\nAzure AD › Claims\n\n- email\n- name",
            internal=False,
            section="Azure AD › Claims",
        )
    ]


def test_markdown_article_in_japanese() -> None:
    body = (
        "# 返品について\n\n"
        + "商品到着後30日以内であれば返品できます。" * 60
        + "\n\n## 送料\n\n送料はお客様負担です。"
    )
    doc = make(
        DocumentKind.ARTICLE,
        "返品ポリシー",
        [DocumentPart(text=body, format="markdown", label="section")],
    )
    normalized = normalize_document(doc)
    assert normalized.language == "ja"
    chunks = chunk_document(normalized)
    sections = [c.section for c in chunks]
    assert sections.count("返品について") >= 2
    assert sections[-1] == "返品について › 送料"
    # CJK text has no spaces: pieces end at a sentence boundary, not mid-word.
    assert all(c.text.endswith("。") for c in chunks)
    assert all(len(c.text) <= DEFAULT_CHUNK_SIZE for c in chunks)


def test_korean_review_is_one_chunk_with_rating_and_reply() -> None:
    doc = make(
        DocumentKind.REVIEW,
        "네이버 리뷰",
        [
            DocumentPart(
                text="배송이 빠르고 포장이 꼼꼼했어요. 재구매 의사 있습니다!",
                label="review",
                author_role="customer",
            ),
            DocumentPart(
                text="소중한 리뷰 감사합니다. 또 찾아주세요!",
                label="owner_reply",
                author_role="owner",
            ),
        ],
        rating=5,
    )
    normalized = normalize_document(doc)
    assert normalized.language == "ko"
    assert chunk_document(normalized) == [
        Chunk(
            index=0,
            text=(
                "네이버 리뷰\n\n"
                "Review (5/5): 배송이 빠르고 포장이 꼼꼼했어요. 재구매 의사 있습니다!\n\n"
                "Owner reply: 소중한 리뷰 감사합니다. 또 찾아주세요!"
            ),
            internal=False,
            section=None,
        )
    ]


def test_korean_ticket_thread() -> None:
    doc = make(
        DocumentKind.TICKET,
        "로그인이 안 됩니다",
        [
            DocumentPart(
                text="비밀번호를 재설정했는데도 로그인이 안 됩니다.",
                label="description",
                author_role="customer",
            ),
            DocumentPart(
                text="브라우저 캐시를 삭제한 후 다시 시도해 주세요.",
                label="reply",
                author_role="agent",
            ),
        ],
        status="closed",
    )
    chunks = chunk_document(doc)
    assert chunks[0].text == (
        "Q: 로그인이 안 됩니다\n비밀번호를 재설정했는데도 로그인이 안 됩니다.\n\n"
        "Resolution: 브라우저 캐시를 삭제한 후 다시 시도해 주세요."
    )
    assert [c.section for c in chunks] == ["resolution", "thread"]


def test_ticket_without_agent_reply_has_no_qa_chunk_and_empty_documents_have_title() -> None:
    question_only = make(
        DocumentKind.CONVERSATION,
        "Where is my order?",
        [
            DocumentPart(
                text="Order 1234 has not arrived.", label="description", author_role="customer"
            )
        ],
    )
    chunks = chunk_document(question_only)
    assert [c.section for c in chunks] == ["thread"]
    assert chunk_document(make(DocumentKind.TICKET, "Only a subject", [])) == [
        Chunk(index=0, text="Only a subject", internal=False, section="thread")
    ]


def test_chunker_validates_its_settings() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        Chunker(chunk_size=100)
    with pytest.raises(ValueError, match="chunk_overlap"):
        Chunker(chunk_size=1000, chunk_overlap=600)
