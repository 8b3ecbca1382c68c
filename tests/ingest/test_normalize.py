"""Normalization: HTML/Markdown/email text, language detection and content hashes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.adapters.base import DocumentKind, DocumentPart, SourceDocument
from backend.ingest.normalize import (
    content_hash,
    detect_language,
    html_to_text,
    markdown_to_text,
    normalize_document,
    normalize_whitespace,
    strip_quoted_reply,
)

FRESHDESK_REPLY_HTML = """
<html><head><style>.x{color:red}</style><script>track()</script></head><body>
<div dir="ltr">Hi Mina,</div><div><br></div>
<div>The export fails with &quot;Error&nbsp;500&quot; &amp; the page goes blank.<br>
Steps I tried:</div>
<ol><li>Open <b>Reports</b></li><li>Click <a href="https://x">Export CSV</a></li></ol>
<table><tr><th>Plan</th><th>Rows</th></tr><tr><td>Pro</td><td>12&#8239;000</td></tr></table>
<pre>ERR 500
  at export()</pre>
<div class="freshdesk_quote"><blockquote class="freshdesk_quote">On Mon, support wrote:
<p>Could you send a screenshot?</p></blockquote></div>
</body></html>
"""


def test_html_keeps_structure_and_drops_scripts() -> None:
    text = html_to_text(FRESHDESK_REPLY_HTML)
    assert "track()" not in text
    assert "color:red" not in text
    assert 'The export fails with "Error 500" & the page goes blank.\nSteps I tried:' in text
    assert "- Open Reports\n- Click Export CSV" in text
    assert "Plan | Rows\nPro | 12 000" in text
    assert "ERR 500\nat export()" in text
    assert text.startswith("Hi Mina,\n\nThe export")
    assert "\n\n\n" not in text
    # Quoted history is kept unless asked to go (articles quote on purpose).
    assert "Could you send a screenshot?" in text
    assert "screenshot" not in html_to_text(FRESHDESK_REPLY_HTML, drop_quotes=True)


def test_html_headings_become_markdown_for_articles() -> None:
    html = "<h1>Reset a password</h1><p>Intro</p><h2>From the app</h2><p>Tap <i>Forgot</i>.</p>"
    assert html_to_text(html, keep_headings=True) == (
        "# Reset a password\n\nIntro\n\n## From the app\n\nTap Forgot."
    )
    assert html_to_text(html) == "Reset a password\n\nIntro\n\nFrom the app\n\nTap Forgot."


def test_html_survives_deep_nesting_and_empty_input() -> None:
    assert html_to_text("<div>" * 5000 + "deep" + "</div>" * 5000) == "deep"
    assert html_to_text("   ") == ""
    assert html_to_text("<p>a<br><br>b</p>") == "a\n\nb"


def test_markdown_is_stripped_lightly() -> None:
    markdown = (
        "Setup Guide\n===========\n\nInstall **the app** from [the store](https://x.io/a_(b)).\n"
        "![diagram](d.png)\n\n## Configure\n1. Open `settings.yml`\n2. Set *token* in "
        "snake_case_name\n\n| key | value |\n|-----|-------|\n| a | 1 |\n\n```bash\npip "
        "install x\n```\n> Note: restart after.\n\n[docs]: https://x.io\n"
    )
    assert markdown_to_text(markdown) == (
        "# Setup Guide\n\nInstall the app from the store.\ndiagram\n\n## Configure\n"
        "- Open settings.yml\n- Set token in snake_case_name\n\nkey | value\na | 1\n\n"
        "pip install x\n\nNote: restart after."
    )
    assert markdown_to_text("## Heading\ntext", keep_headings=False) == "Heading\ntext"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Thanks, that fixed it!\n\nOn Tue, May 2, 2024 at 10:03 AM Support <s@acme.io>\n"
            "wrote:\n> Please clear the cache\n> and retry",
            "Thanks, that fixed it!",
        ),
        (
            "감사합니다. 해결되었습니다.\n\n2024년 5월 2일 (목) 오전 10:03, 고객지원 "
            "<help@acme.kr>님이 작성:\n> 캐시를 삭제해 보세요",
            "감사합니다. 해결되었습니다.",
        ),
        (
            "ありがとうございます。直りました。\n\n2024年5月2日(木) 10:03 サポート "
            "<help@acme.jp>:\n> キャッシュを削除してください",
            "ありがとうございます。直りました。",
        ),
        ("Works now.\n-- \nJohn Smith\nACME Corp", "Works now."),
        ("Still broken.\n\nSent from my iPhone", "Still broken."),
        (
            "See below.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nold",
            "See below.",
        ),
        ("Reply text\n> quoted line\n> another", "Reply text"),
        # Nothing but a quote: keep it rather than return nothing.
        ("On Mon, Bob wrote:\n> only quoted", "On Mon, Bob wrote:\n> only quoted"),
    ],
)
def test_quoted_replies_and_signatures_are_cut(message: str, expected: str) -> None:
    assert strip_quoted_reply(message) == expected


def test_whitespace_is_normalized() -> None:
    text = "  a\u00a0\u00a0b\u200b\tc \r\n\r\n\r\n\r\nd\x07  "
    assert normalize_whitespace(text) == "a b c\n\nd"
    # NFC: a decomposed Hangul syllable equals the composed one.
    assert normalize_whitespace("\u1100\u1161") == "가"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("결제가 안 돼요", "ko"),
        ("환불", "ko"),
        ("Windows 10에서 Outlook이 안 열려요", "ko"),
        ("ログインできません", "ja"),
        ("パスワード", "ja"),
        ("東京駅の近くの店舗で返品できますか", "ja"),
        ("My invoice shows the wrong amount after the upgrade", "en"),
        ("Das Passwort funktioniert nach dem Update nicht mehr", "de"),
        ("Mi pedido no ha llegado todavía", "es"),
        ("退款什么时候到账？", "zh"),
    ],
)
def test_language_detection(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_language_detection_declines_when_unsure() -> None:
    assert detect_language("") is None
    assert detect_language("12345 !!!") is None
    assert detect_language("ok") is None


def test_content_hash_is_stable_and_sensitive() -> None:
    base = content_hash("Title", "Body", {"status": "open", "tags": ["a"]})
    assert base == content_hash("Title", "Body", {"tags": ["a"], "status": "open"})
    assert len(base) == 64
    assert base != content_hash("Title", "Body.", {"status": "open", "tags": ["a"]})
    assert base != content_hash("Title!", "Body", {"status": "open", "tags": ["a"]})
    assert base != content_hash("Title", "Body", {"status": "closed", "tags": ["a"]})
    when = datetime(2025, 1, 2, tzinfo=UTC)
    assert content_hash("t", "b", {"at": when}) == content_hash("t", "b", {"at": when})


def ticket(**overrides: object) -> SourceDocument:
    fields: dict[str, object] = {
        "source": "freshdesk",
        "external_id": "ticket:42",
        "kind": DocumentKind.TICKET,
        "title": "  Export   fails ",
        "status": "resolved",
        "tags": ["billing", "export"],
        "updated_at": datetime(2025, 3, 1, tzinfo=UTC),
        "parts": [
            DocumentPart(text="Export fails", label="subject", author_role="customer"),
            DocumentPart(
                text="<p>Export gives <b>Error 500</b>.</p>",
                format="html",
                label="description",
                author_role="customer",
            ),
            DocumentPart(
                text="Legacy plan, 10k row limit", label="note", author_role="agent", internal=True
            ),
            DocumentPart(
                text="Please narrow the date range.\n\nOn Mon, Mina <c@x.io> wrote:\n> Export",
                label="reply",
                author_role="agent",
            ),
        ],
    }
    fields.update(overrides)
    return SourceDocument.model_validate(fields)


def test_normalize_document() -> None:
    doc = normalize_document(ticket())
    assert doc.title == "Export fails"
    assert [p.text for p in doc.parts] == [
        "Export fails",
        "Export gives Error 500.",
        "Legacy plan, 10k row limit",
        "Please narrow the date range.",
    ]
    assert [p.internal for p in doc.parts] == [False, False, True, False]
    assert doc.language == "en"
    assert "Legacy plan" not in doc.public_text
    assert "Legacy plan" in doc.text


def test_document_hash_ignores_timestamps_but_not_content() -> None:
    original = normalize_document(ticket()).content_hash
    assert normalize_document(ticket()).content_hash == original
    later = ticket(updated_at=datetime(2025, 4, 1, tzinfo=UTC))
    assert normalize_document(later).content_hash == original
    assert normalize_document(ticket(status="open")).content_hash != original
    assert normalize_document(ticket(tags=["export", "billing"])).content_hash == original
    made_public = ticket()
    parts = list(made_public.parts)
    parts[2] = parts[2].model_copy(update={"internal": False})
    assert normalize_document(made_public.model_copy(update={"parts": parts})).content_hash != (
        original
    )


def test_stated_language_wins_and_korean_documents_are_detected() -> None:
    assert normalize_document(ticket(language="fr")).language == "fr"
    korean = ticket(
        title="결제 오류",
        parts=[DocumentPart(text="카드 결제가 계속 실패합니다", label="description")],
    )
    assert normalize_document(korean).language == "ko"
