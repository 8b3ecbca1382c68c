"""Normalization: platform text (HTML, Markdown, email bodies) → clean text, language, hash.

Pure functions, no I/O. Ingest runs every :class:`~backend.adapters.base.SourceDocument`
through :func:`normalize_document` before chunking; the resulting content hash decides
whether a document changed and needs embedding again.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson
from selectolax.lexbor import LexborHTMLParser, LexborNode

from backend.adapters.base import (
    AuthorRole,
    DocumentKind,
    PartFormat,
    PartLabel,
    SourceDocument,
)

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

__all__ = [
    "NormalizedDocument",
    "NormalizedPart",
    "content_hash",
    "detect_language",
    "document_reference",
    "html_to_text",
    "markdown_to_text",
    "normalize_document",
    "normalize_part_text",
    "normalize_whitespace",
    "strip_quoted_reply",
    "without_people",
]

HASH_VERSION: Final = 2
"""Bump when normalization changes in a way that should re-embed every document."""

# --- HTML ------------------------------------------------------------------------------------

_DROPPED_TAGS: Final = frozenset(
    {"script", "style", "noscript", "template", "head", "svg", "iframe", "object", "embed"}
)
_BLOCK_TAGS: Final = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "details", "dialog", "div", "dl",
        "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hgroup", "hr",
        "main", "nav", "ol", "p", "pre", "section", "summary", "table", "ul", "tbody",
        "thead", "tfoot", "caption",
    }
)  # fmt: skip
_HEADING_LEVELS: Final = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Quoted history that mail clients and helpdesks wrap around earlier messages.
_QUOTE_SELECTORS: Final = (
    "blockquote",
    "div.gmail_quote",
    "div.freshdesk_quote",
    "div.yahoo_quoted",
    "div#appendonsend",  # Outlook: everything after this marker is the quoted original
    "div#divRplyFwdMsg",
)

# Private-use sentinels for breaks decided by the markup, so that whitespace inside text
# nodes (which HTML collapses) can be told apart from the breaks we mean to keep.
_LINE: Final = "\ue000"  # <br>: two in a row make a blank line
_PARA: Final = "\ue001"  # block boundary: a blank line, however many meet
_SOFT: Final = "\ue002"  # list item or table row: one newline, however many meet
_CELL: Final = "\ue003"  # table cell boundary: " | " between cells
_SENTINELS: Final = (_LINE, _PARA, _SOFT, _CELL)


def html_to_text(html: str, *, keep_headings: bool = False, drop_quotes: bool = False) -> str:
    """Render HTML as plain text: paragraphs, list items and line breaks survive.

    ``keep_headings`` writes ``<h2>`` as ``## …`` so the Markdown section splitter can
    follow an article's structure. ``drop_quotes`` removes quoted email history
    (``<blockquote>``, Gmail/Freshdesk/Outlook quote containers), for ticket messages.
    """
    if not html.strip():
        return ""
    tree = LexborHTMLParser(html)
    for selector in _DROPPED_TAGS:
        for node in tree.css(selector):
            node.decompose()
    if drop_quotes:
        for selector in _QUOTE_SELECTORS:
            for node in tree.css(selector):
                if selector == "div#appendonsend":
                    _drop_following_siblings(node)
                node.decompose()
    root = tree.body or tree.root
    if root is None:
        return ""
    out: list[str] = []
    _render(root, out, keep_headings=keep_headings)
    return _finish("".join(out))


def _drop_following_siblings(node: LexborNode) -> None:
    sibling = node.next
    while sibling is not None:
        following = sibling.next
        sibling.decompose()
        sibling = following


def _render(root: LexborNode, out: list[str], *, keep_headings: bool) -> None:
    # An explicit stack instead of recursion: pathological nesting in mail HTML must not
    # hit Python's recursion limit. Entries are (node, None) to enter, ("close", text) to
    # emit text after a node's children.
    stack: list[tuple[LexborNode | None, str | None]] = [(root, None)]
    pre_depth = 0
    while stack:
        node, closing = stack.pop()
        if node is None:
            if closing == "</pre>":
                pre_depth -= 1
            elif closing is not None:
                out.append(closing)
            continue
        tag = node.tag or ""
        if tag == "-text":
            text = node.text_content or ""
            out.append(text if pre_depth else re.sub(r"\s+", " ", text))
            continue
        if tag.startswith("-") or tag in _DROPPED_TAGS:
            continue  # comments, doctype
        after: str | None = None
        if tag == "br":
            out.append(_LINE)
            continue
        if tag == "hr":
            out.append(_PARA)
            continue
        if tag in _HEADING_LEVELS:
            out.append(_PARA + ("#" * _HEADING_LEVELS[tag] + " " if keep_headings else ""))
            after = _PARA
        elif tag == "li":
            out.append(_SOFT + "- ")
            after = _SOFT
        elif tag == "tr":
            out.append(_SOFT)
            after = _SOFT
        elif tag in ("td", "th"):
            out.append(_CELL)
        elif tag == "img":
            alt = (node.attributes.get("alt") or "").strip()
            if alt:
                out.append(f" {alt} ")
            continue
        elif tag in _BLOCK_TAGS:
            out.append(_PARA)
            after = _PARA
        if tag == "pre":
            pre_depth += 1
            stack.append((None, _PARA))
            stack.append((None, "</pre>"))
        elif after is not None:
            stack.append((None, after))
        children: list[LexborNode] = []
        child = node.child
        while child is not None:
            children.append(child)
            child = child.next
        stack.extend((c, None) for c in reversed(children))


def _finish(text: str) -> str:
    """Turn break sentinels into newlines and tidy whitespace."""
    # A paragraph break absorbs neighbouring line breaks and spaces.
    text = re.sub(rf"[\s{_LINE}{_SOFT}]*{_PARA}[\s{_LINE}{_SOFT}{_PARA}]*", "\n\n", text)
    text = re.sub(rf"[ \t]*(?:{_SOFT}[ \t]*)+", "\n", text)
    text = re.sub(rf"[ \t]*{_LINE}[ \t]*", "\n", text)
    # Cells: nothing before the first cell of a row, " | " between the others.
    text = re.sub(rf"(^|\n)[ \t]*{_CELL}", r"\1", text)
    text = re.sub(rf"[ \t]*{_CELL}[ \t]*", " | ", text)
    return normalize_whitespace(text)


# --- Markdown --------------------------------------------------------------------------------

_MD_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*$", re.MULTILINE)
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)")
_MD_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_MD_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+\S+.*$", re.MULTILINE)
_MD_EMPHASIS = re.compile(r"(\*\*|\*|~~)(?=\S)(.+?)(?<=\S)\1")
# Underscores only emphasise at word edges, so snake_case_names survive.
_MD_UNDERSCORE_EMPHASIS = re.compile(r"(?<!\w)(__|_)(?=\S)(.+?)(?<=\S)\1(?!\w)")
_MD_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_MD_HTML_TAG = re.compile(r"</?[a-zA-Z][^>\n]*>")
_MD_BLOCKQUOTE = re.compile(r"^ {0,3}>[ \t]?", re.MULTILINE)
_MD_LIST = re.compile(r"^([ \t]*)(?:[*+-]|\d+[.)])[ \t]+", re.MULTILINE)
_MD_TABLE_RULE = re.compile(
    r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*\n?", re.MULTILINE
)
_MD_HRULE = re.compile(r"^ {0,3}([-*_])([ \t]*\1){2,}[ \t]*$", re.MULTILINE)
_MD_SETEXT = re.compile(r"^(.+)\n(=+|-+)[ \t]*$", re.MULTILINE)


def markdown_to_text(markdown: str, *, keep_headings: bool = True) -> str:
    """Strip Markdown syntax lightly: links keep their text, code keeps its content.

    Headings stay as ``# …`` lines when ``keep_headings`` (the article chunker splits on
    them); list items keep a ``- `` marker so steps stay readable.
    """
    text = markdown.replace("\r\n", "\n").replace("\r", "\n")
    text = _MD_SETEXT.sub(lambda m: ("# " if m.group(2)[0] == "=" else "## ") + m.group(1), text)
    text = _MD_FENCE.sub("", text)
    text = _MD_REF_DEF.sub("", text)
    text = _MD_IMAGE.sub(lambda m: m.group(1), text)
    text = _MD_LINK.sub(lambda m: m.group(1), text)
    text = _MD_REF_LINK.sub(lambda m: m.group(1), text)
    text = _MD_INLINE_CODE.sub(lambda m: m.group(1), text)
    text = _MD_EMPHASIS.sub(lambda m: m.group(2), text)
    text = _MD_UNDERSCORE_EMPHASIS.sub(lambda m: m.group(2), text)
    text = _MD_HTML_TAG.sub("", text)
    text = _MD_BLOCKQUOTE.sub("", text)
    text = _MD_TABLE_RULE.sub("", text)
    text = _MD_HRULE.sub("", text)
    text = _MD_LIST.sub(lambda m: m.group(1) + "- ", text)
    text = re.sub(
        r"(?m)^[ \t]*\|(.*)\|[ \t]*$",
        lambda m: " | ".join(cell.strip() for cell in m.group(1).split("|")),
        text,
    )
    heading = re.compile(r"(?m)^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
    text = heading.sub(r"\1 \2" if keep_headings else r"\2", text)
    return normalize_whitespace(text)


# --- Plain text, email ---------------------------------------------------------------------


def normalize_whitespace(text: str) -> str:
    """NFC, unified newlines, no control characters, single spaces, at most one blank line."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    # Non-breaking and other Unicode spaces become plain spaces; zero-width ones vanish.
    text = re.sub(r"[\u200b\u200c\u200d\u2060\ufeff]", "", text)
    text = "".join(
        " " if (unicodedata.category(ch) == "Zs" or ch == "\t") else ch
        for ch in text
        if ch in "\n\t" or unicodedata.category(ch)[0] != "C" or ch in _SENTINELS
    )
    lines = [re.sub(r" {2,}", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_QUOTE_HEADERS: Final = (
    # English (Gmail, Apple Mail, Thunderbird); Gmail may wrap the header over two lines.
    re.compile(r"^[ \t]*On\b[^\n]{0,300}(?:\n[^\n]{0,300})?\bwrote:[ \t]*$", re.M | re.I),
    # Korean Gmail: "2024년 5월 2일 (목) 오전 10:03, 홍길동 <a@b.kr>님이 작성:"
    re.compile(r"^[^\n]{0,300}님이 작성:[ \t]*$", re.M),
    # Japanese Gmail: "2024年5月2日(木) 10:03 山田太郎 <a@b.jp>:" and "…さんは書きました:"
    re.compile(r"^[ \t]*\d{4}年\d{1,2}月\d{1,2}日[^\n]{0,300}[:：][ \t]*$", re.M),
    re.compile(r"^[^\n]{0,300}(?:は|が)書きました[:：][ \t]*$", re.M),
    # Outlook
    re.compile(r"^[ \t]*-{2,}[ \t]*(?:Original Message|Forwarded message)[ \t]*-{2,}", re.M | re.I),
    re.compile(r"^[ \t]*From:[^\n]+\n[ \t]*(?:Sent|Date):[^\n]+\n", re.M),
    re.compile(r"^[ \t]*(?:보낸 사람|差出人):[^\n]+\n", re.M),
)
_SIGNATURES: Final = (
    re.compile(r"^-- ?$", re.M),  # RFC 3676 signature separator
    re.compile(
        r"^[ \t]*(?:Sent from my \w+|Get Outlook for \w+|iPhone에서 보냄|iPhoneから送信)\b.*$",
        re.M | re.I,
    ),
)


def strip_quoted_reply(text: str) -> str:
    """Cut quoted history and signatures off an email-born message.

    Only cuts when something remains: a message that is nothing but a quote keeps its text.
    """
    cut = len(text)
    for pattern in (*_QUOTE_HEADERS, *_SIGNATURES):
        match = pattern.search(text)
        if match and match.start() < cut and text[: match.start()].strip():
            cut = match.start()
    # A trailing run of "> " lines is quoted history too.
    lines = text[:cut].rstrip().split("\n")
    while lines and lines[-1].lstrip().startswith(">"):
        lines.pop()
    kept = "\n".join(lines).strip()
    if not kept or any(pattern.match(kept) for pattern in _QUOTE_HEADERS):
        return text.strip()  # the message is all quote: keep it whole
    return kept


def normalize_part_text(
    text: str, text_format: PartFormat, *, keep_headings: bool = False, email: bool = False
) -> str:
    """Normalize one part by its declared format; ``email`` also strips quoted replies."""
    if text_format == "html":
        result = html_to_text(text, keep_headings=keep_headings, drop_quotes=email)
    elif text_format == "markdown":
        result = markdown_to_text(text, keep_headings=keep_headings)
    else:
        result = normalize_whitespace(text)
    return strip_quoted_reply(result) if email else result


# --- Language ------------------------------------------------------------------------------


def _script_counts(text: str) -> tuple[int, int, int, int]:
    """(letters, Hangul, Kana, Han) character counts."""
    letters = hangul = kana = han = 0
    for ch in text:
        code = ord(ch)
        if 0xAC00 <= code <= 0xD7A3 or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
            hangul += 1
        elif 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9D:
            kana += 1
        elif 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF:
            han += 1
        elif not ch.isalpha():
            continue
        letters += 1
    return letters, hangul, kana, han


SUPPORTED_LANGUAGES: Final = frozenset({
    "en", "ko", "ja", "zh", "de", "fr", "es", "pt", "it", "nl", "ru", "pl", "tr", "ar",
    "he", "hi", "th", "vi", "id", "ms", "sv", "da", "no", "fi", "cs", "sk", "hu", "ro",
    "el", "uk", "bg", "hr", "sr", "sl", "lt", "lv", "et", "ca", "fa", "bn", "ta", "tl",
})  # fmt: skip
"""Languages the statistical detector may answer (ISO 639-1)."""


@functools.cache
def _identifier() -> LanguageIdentifier:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    # Restricting the model to languages a helpdesk meets makes short texts far more
    # reliable: the full model spreads "thanks" over Pidgin, Acehnese and Wu Chinese.
    identifier.set_languages(sorted(SUPPORTED_LANGUAGES))
    return identifier


DETECTION_SAMPLE_CHARS: Final = 5000
"""Characters of a text that language detection reads."""


def detect_language(text: str, *, min_confidence: float = 0.3) -> str | None:
    """The ISO 639-1 code of ``text`` (``"en"``, ``"ko"``, ``"ja"``…) or ``None`` if unsure.

    Scripts decide first: statistical detectors confuse short Korean and Japanese texts
    (a one-line Korean review is often called Chinese), while Hangul is only Korean and
    kana only Japanese. Han characters without kana are left to the model (Chinese, or
    kanji-only Japanese headings).
    """
    # The opening of a text says its language as well as the whole does, and a bounded
    # sample keeps this cheap on any input (a 24 MB ticket took 10 s counting characters).
    text = text[:DETECTION_SAMPLE_CHARS]
    letters, hangul, kana, han = _script_counts(text)
    if letters < 2:
        return None
    if hangul and hangul >= 0.3 * (letters - han) and hangul >= kana:
        return "ko"
    if kana and (kana + han) >= 0.3 * letters:
        return "ja"
    language, confidence = _identifier().classify(text)
    if confidence < min_confidence:
        # Short Latin-script text ("ok thanks") is often ambiguous; say so rather than guess.
        return None
    return str(language)


# --- Hash ----------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def content_hash(title: str, text: str, metadata: Mapping[str, Any] | None = None) -> str:
    """sha256 hex of normalized content, title and the metadata that reaches the index.

    Stable across runs and processes: keys are sorted, the serialization is canonical JSON,
    and ``HASH_VERSION`` lets a normalization change force a re-embed.
    """
    payload = {"v": HASH_VERSION, "title": title, "text": text, "meta": dict(metadata or {})}
    data = orjson.dumps(
        payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=_json_default
    )
    return hashlib.sha256(data).hexdigest()


# --- Documents -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NormalizedPart:
    text: str
    label: PartLabel
    internal: bool
    author_role: AuthorRole | None = None
    created_at: datetime | None = None
    author_name: str | None = None
    author_email: str | None = None
    author_id: str | None = None
    attachment_name: str | None = None


@dataclass(frozen=True, slots=True)
class NormalizedDocument:
    """A document's clean text, ready for chunking and for the documents table."""

    kind: DocumentKind
    title: str
    parts: tuple[NormalizedPart, ...]
    language: str | None
    content_hash: str
    status: str | None = None
    rating: float | None = None
    reference: str | None = None
    """How a citation names the document: ``ticket #123``, ``incident INC0010001``,
    ``article "Returns"`` (see :func:`document_reference`)."""

    @property
    def public_text(self) -> str:
        """Text that may be shown to customers (no internal notes)."""
        return "\n\n".join(p.text for p in self.parts if not p.internal)

    @property
    def text(self) -> str:
        """All text, internal notes included (for the documents table)."""
        return "\n\n".join(p.text for p in self.parts)


_EMAIL_KINDS: Final = frozenset({DocumentKind.TICKET, DocumentKind.CONVERSATION})
_EMAIL_LABELS: Final = frozenset({"description", "reply", "note"})


def _parts_signature(parts: Iterable[NormalizedPart]) -> str:
    # The label and the internal flag are part of the content: a note made public changes
    # what may be quoted to customers, so it must be re-indexed.
    # The author's name and an attachment's file name reach chunk text, so they count too.
    return "\n\u241e\n".join(
        f"{p.label}|{int(p.internal)}|{p.author_role or ''}|{p.author_name or ''}|"
        f"{p.attachment_name or ''}|{p.text}"
        for p in parts
    )


PEOPLE_METADATA_KEYS: Final = frozenset(
    {"requester_name", "responder_name", "assignee_name", "caller_name"}
)
"""Document metadata that names people (dropped with :func:`without_people`)."""


def without_people(document: SourceDocument) -> SourceDocument:
    """``document`` without authors' names and addresses, for companies that ask for PII
    redaction (``"pii_redaction": true`` in their settings).

    Messages keep their role (customer, agent) and platform user id, so threads still read in
    order and a GDPR erasure still finds the requester; names and emails stay out of the
    index text, the documents table and the prompts built from them.
    """
    parts = [
        part.model_copy(update={"author_name": None, "author_email": None})
        if part.author_name or part.author_email
        else part
        for part in document.parts
    ]
    metadata = {k: v for k, v in document.metadata.items() if k not in PEOPLE_METADATA_KEYS}
    return document.model_copy(update={"parts": parts, "metadata": metadata})


def document_reference(document: SourceDocument) -> str:
    """How a citation names ``document``: ``ticket #123``, ``incident INC0010001``, ...

    The platform's own number wins (ServiceNow's ``INC…``); otherwise the id after the
    entity prefix of ``external_id``. Articles and reviews are named by their title.
    """
    if document.kind in (DocumentKind.ARTICLE, DocumentKind.REVIEW):
        return f'{document.kind.value} "{normalize_whitespace(document.title)}"'
    entity, _, identifier = document.external_id.rpartition(":")
    number = document.metadata.get("number")
    if isinstance(number, str) and number:
        return f"{entity or document.kind.value} {number}"
    return f"{entity or document.kind.value} #{identifier}"


def normalize_document(document: SourceDocument) -> NormalizedDocument:
    """Normalize every part, detect the language and compute the content hash."""
    is_email = document.kind in _EMAIL_KINDS
    keep_headings = document.kind == DocumentKind.ARTICLE
    parts: list[NormalizedPart] = []
    for part in document.parts:
        text = normalize_part_text(
            part.text,
            part.format,
            keep_headings=keep_headings,
            email=is_email and part.label in _EMAIL_LABELS,
        )
        if text:
            parts.append(
                NormalizedPart(
                    text=text,
                    label=part.label,
                    internal=part.internal,
                    author_role=part.author_role,
                    created_at=part.created_at,
                    author_name=part.author_name,
                    author_email=part.author_email,
                    author_id=part.author_id,
                    attachment_name=part.attachment_name,
                )
            )
    title = normalize_whitespace(document.title)
    sample = "\n".join([title, *(p.text for p in parts if not p.internal)])
    language = document.language or detect_language(sample)
    metadata = {
        "kind": document.kind.value,
        "url": document.url,
        "status": document.status,
        "language": language,
        "rating": document.rating,
        "tags": sorted(document.tags),
        "requester": document.requester,
        "metadata": document.metadata,
    }
    return NormalizedDocument(
        kind=document.kind,
        title=title,
        parts=tuple(parts),
        language=language,
        content_hash=content_hash(title, _parts_signature(parts), metadata),
        status=document.status,
        rating=document.rating,
        reference=document_reference(document),
    )
