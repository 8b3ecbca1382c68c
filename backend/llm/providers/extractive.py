"""The extractive composer: grounded text with no model at all.

It writes only text that already exists in the request's passages (or, for summaries, in
the thread), wraps it in a fixed template for the task and language (greeting, closing,
sign-off) and cites the passage behind every sentence with ``[n]`` (``n`` = position in
``request.passages``). It never invents a fact: when nothing answers, it says so.

How it picks what to quote, in the way an agent would:

- **Sources by what they are.** Articles and agents' public replies (a ticket's resolution)
  are answers; customers' messages and reviews are evidence of a problem, never the answer
  to it. Ticket chunks carry role labels from ingest (``Resolution:``, ``Agent:``,
  ``Customer:``); passages may also name their ``author_role``. Evidence is quoted only when
  no answer source matches and the question is not a how/why question, and then says so.
- **One coherent passage.** The best answer source is chosen by its retrieval rank and how
  much of the question its best window covers; from it, one run of consecutive sentences
  (steps kept whole and in order, wrapped lines re-joined), trimmed to whole sentences and
  a length budget. A second source is added only when it covers a part of the question the
  first leaves open (a two-part question).
- **Nothing an agent would cut.** Questions, greetings, thanks, sign-offs and warnings that
  do not bear on the question are dropped; a reply's "Hi Priya," is removed before reuse.
- **Drafts** reuse the resolution of the most similar solved ticket when it fits, then the
  article's steps, greeting the customer by name in the customer's language. **Summaries**
  say issue, what was tried, status and next step from the thread's roles. **Review
  replies** are built in :mod:`backend.llm.providers.review_reply`.

It is the router's last resort and the default when no model is configured, so it must not
fail: it has no I/O and handles any input.

Terms are lower-cased words for space-delimited scripts and character bigrams for Hangul,
kana and CJK ideographs, so ``비밀번호를`` still matches ``비밀번호`` and unsegmented
Japanese matches at all.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from backend.language import base_language
from backend.llm.providers.review_reply import compose_review_reply
from backend.llm.types import (
    Completed,
    LLMRequest,
    LLMResult,
    Passage,
    TextDelta,
    Usage,
)

PROVIDER_NAME = "extractive"
MODEL_NAME = "extractive-v2"


@dataclass(frozen=True, slots=True)
class _Template:
    greeting: str
    friendly_greeting: str
    intro: str
    closing: str
    sign_off: str
    answer_intro: str
    answer_not_found: str
    reply_not_found: str
    summary_intro: str
    review_positive: str
    review_neutral: str
    review_negative: str
    review_next_step: str
    greeting_named: str = "{name}"
    friendly_greeting_named: str = "{name}"
    steps_intro: str = ""
    evidence_intro: str = ""
    summary_issue: str = "Issue:"
    summary_tried: str = "Tried:"
    summary_status: str = "Status:"
    summary_next: str = "Next step:"
    next_reply: str = "Reply to the customer."
    next_wait: str = "Wait for the customer's reply."
    next_done: str = "None: the ticket is solved."
    nothing_tried: str = "Nothing yet."


_EN = _Template(
    greeting="Hello,",
    friendly_greeting="Hi there,",
    intro="Thank you for contacting us.",
    closing="If you have any other questions, just reply to this message.",
    sign_off="Best regards,",
    answer_intro="From the knowledge base:",
    answer_not_found="Nothing in the knowledge base answers this question.",
    reply_not_found=(
        "We are looking into your request and will follow up with more details as soon as we can."
    ),
    summary_intro="Summary:",
    review_positive="Thank you for your kind review. We are glad you had a good experience.",
    review_neutral=(
        "Thank you for your feedback. We read every review and will use yours to improve."
    ),
    review_negative="We are sorry that your experience did not meet your expectations.",
    review_next_step=(
        "Please contact our support team so that we can look into this and make it right."
    ),
    greeting_named="Hello {name},",
    friendly_greeting_named="Hi {name},",
    steps_intro="Here is what to do:",
    evidence_intro="What customers report (their own words):",
)

_KO = _Template(
    greeting="안녕하세요, 고객님.",
    friendly_greeting="안녕하세요!",
    intro="문의해 주셔서 감사합니다.",
    closing="추가로 궁금하신 점이 있으시면 언제든지 이 메시지에 회신해 주세요.",
    sign_off="감사합니다.",
    answer_intro="지식 베이스 내용:",
    answer_not_found="지식 베이스에서 이 질문에 대한 답을 찾지 못했습니다.",
    reply_not_found="요청하신 내용을 확인하고 있으며, 확인되는 대로 자세히 안내해 드리겠습니다.",
    summary_intro="요약:",
    review_positive="소중한 리뷰를 남겨 주셔서 감사합니다. 만족스러운 경험이 되셨다니 기쁩니다.",
    review_neutral="소중한 의견 감사합니다. 남겨 주신 리뷰를 서비스 개선에 참고하겠습니다.",
    review_negative="이용에 불편을 드려 진심으로 죄송합니다.",
    review_next_step="고객센터로 연락해 주시면 내용을 확인하고 해결해 드리겠습니다.",
    greeting_named="안녕하세요, {name} 고객님.",
    friendly_greeting_named="안녕하세요, {name} 님!",
    steps_intro="아래 방법으로 해결해 보세요.",
    evidence_intro="고객이 보고한 내용(고객의 말 그대로):",
    summary_issue="문제:",
    summary_tried="시도한 조치:",
    summary_status="상태:",
    summary_next="다음 단계:",
    next_reply="고객에게 답변하세요.",
    next_wait="고객의 회신을 기다리세요.",
    next_done="없음: 해결된 티켓입니다.",
    nothing_tried="아직 없음.",
)

_JA = _Template(
    greeting="いつもご利用いただきありがとうございます。",
    friendly_greeting="こんにちは。",
    intro="お問い合わせいただきありがとうございます。",
    closing="ほかにご不明な点がございましたら、このメッセージにご返信ください。",
    sign_off="よろしくお願いいたします。",
    answer_intro="ナレッジベースの内容:",
    answer_not_found="ナレッジベースにこの質問への回答は見つかりませんでした。",
    reply_not_found="現在内容を確認しております。確認でき次第、詳しくご案内いたします。",
    summary_intro="要約:",
    review_positive="素敵なレビューをいただき、ありがとうございます。ご満足いただけて大変うれしく思います。",
    review_neutral="貴重なご意見をいただき、ありがとうございます。今後のサービス改善に活かしてまいります。",
    review_negative="ご期待に沿えず、誠に申し訳ございません。",
    review_next_step="お手数ですが、サポート窓口までご連絡いただければ、詳しく確認のうえ対応いたします。",
    greeting_named="{name}様",
    friendly_greeting_named="{name}さん、こんにちは。",
    steps_intro="以下の手順をお試しください。",
    evidence_intro="お客様からの報告(原文のまま):",
    summary_issue="問題:",
    summary_tried="試したこと:",
    summary_status="状況:",
    summary_next="次のステップ:",
    next_reply="お客様に返信してください。",
    next_wait="お客様からの返信を待ってください。",
    next_done="なし: 解決済みのチケットです。",
    nothing_tried="まだありません。",
)

# Languages without a template of their own get no greeting, intro or closing (we will not
# greet a German customer in English); the quoted sentences keep their source language, and
# the few things that must be said (nothing found, thanks, apology) fall back to English.
_GENERIC = _Template(
    greeting="",
    friendly_greeting="",
    intro="",
    closing="",
    sign_off="",
    answer_intro="",
    answer_not_found=_EN.answer_not_found,
    reply_not_found=_EN.reply_not_found,
    summary_intro="",
    review_positive=_EN.review_positive,
    review_neutral=_EN.review_neutral,
    review_negative=_EN.review_negative,
    review_next_step=_EN.review_next_step,
    greeting_named="",
    friendly_greeting_named="",
)

TEMPLATES: Mapping[str, _Template] = {"en": _EN, "ko": _KO, "ja": _JA}

_CJK = r"\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_CJK_RUN_RE = re.compile(f"[{_CJK}]+")
_UNSPACED_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff、。]")
_WORD_RE = re.compile(r"\w+")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*")
_BULLET_RE = re.compile(r"^\s*(?:[-*•·]|\d{1,2}[.)])\s+")
_MARKER_RE = re.compile(r"\s*\[\d{1,3}\]")
_FULL_STOP_END_RE = re.compile(r"[。！？]$")
_SENTENCE_END_RE = re.compile(r"[.!?:;。！？：]['\")\]]*$")

_STOPWORDS = frozenset(
    """a about after all also am an and any are as at be been but by can could did do does
    for from get got had has have how i if in into is it its just me my no not of on or our
    out so than that the their them then there these they this to too us was we were what
    when where which who why will with would you your yours hi hello please thanks thank""".split()  # noqa: SIM905
)

# Greetings, thanks and sign-offs quoted from someone else's message: the composer writes
# its own. A trailing first name ("Thanks Marcus.") belongs to the other conversation.
_SALUTATION_RE = re.compile(
    r"^((hi|hello|hey|dear [^,.]{0,40}|thanks?( you)?( (so|very) much)?( for [^.]{0,40})?|"
    r"(best |kind )?regards|cheers|안녕하세요[^.!?]{0,10}|감사합니다|고맙습니다|"
    r"こんにちは|ありがとうございます)( [A-Z][\w'-]*)?[\s,.!。！]*)+$",
    re.IGNORECASE,
)
# "Hi Priya, a firmware update fixes this." → "A firmware update fixes this."
_LEADING_SALUTATION_RE = re.compile(
    r"^(?:hi|hello|hey|dear)(?: [A-Z][\w'-]*)?\s*[,!]\s+(?=\S)", re.IGNORECASE
)
# Pleasantries an agent adds around an answer; never the answer itself.
_PLEASANTRY_RE = re.compile(
    r"^(?:hope (?:this|that) helps|let (?:me|us) know|feel free|glad (?:to|i could) help|"
    r"closing (?:this|as)|i(?:'ll| will) close|good luck|have a (?:nice|great|good))",
    re.IGNORECASE,
)
# Warnings and side notes: quoted only when they bear on the question.
_WARNING_RE = re.compile(
    r"^(?:warning|caution|important|note|heads up|⚠|주의|참고|注意|ご注意)\b"
    r"|\b(?:will|would) (?:erase|delete|remove|wipe) (?:all|every|your)\b"
    r"|\bfactory reset\b|初期化|초기화",
    re.IGNORECASE,
)
_QUESTION_END_RE = re.compile(r"[?？]['\")\]]*$|(?:까요|나요|습니까|ですか|ますか)[.。]?$")
# How/why questions want a fix or a cause: customers' reports never answer them.
_HOW_WHY_RE = re.compile(
    r"^\s*(?:how|why|what (?:should|can|do)|can i|can you|is there a way|where (?:do|can)|"
    r"what is the (?:fix|solution|cause))\b|어떻게|왜|방법|해결|どう|なぜ|方法|解決",
    re.IGNORECASE,
)

# Questions about what customers report: for these, customers' words are the answer.
_ABOUT_CUSTOMERS_RE = re.compile(
    r"\b(?:customers?|users?|reviewers?|people)\b.{0,30}\b(?:say|said|report|complain|think|"
    r"feel|mention)|\breviews?\b|\bcomplaints?\b|고객.{0,10}(?:반응|불만|후기|리뷰)|리뷰|후기|"
    r"レビュー|口コミ|お客様の声",
    re.IGNORECASE,
)

# Labels the chunker writes into ticket and review chunks, and the role each one marks.
_CHUNK_LABEL_RE = re.compile(
    r"^(resolution|latest agent reply|agent|customer|owner reply|internal note|system|"
    r"review(?: \([\d.]+/\d+\))?)\s*:\s*",
    re.IGNORECASE,
)
_LABEL_ROLES: Mapping[str, str] = {
    "resolution": "answer",
    "latest agent reply": "answer",
    "agent": "answer",
    "owner reply": "reply",
    "internal note": "internal",
    "customer": "evidence",
    "system": "evidence",
    "review": "evidence",
}
_AUTHOR_ROLES: Mapping[str, str] = {
    "agent": "answer",
    "owner": "reply",
    "customer": "evidence",
    "internal note": "internal",
    "system": "evidence",
}


def _terms(text: str) -> list[str]:
    terms: list[str] = []
    for word in _WORD_RE.findall(text.casefold()):
        if _CJK_RUN_RE.search(word):
            for run in _CJK_RUN_RE.findall(word):
                if len(run) == 1:
                    terms.append(run)
                else:
                    terms.extend(run[i : i + 2] for i in range(len(run) - 1))
            rest = _CJK_RUN_RE.sub(" ", word).split()
        else:
            rest = [word]
        for part in rest:
            if part in _STOPWORDS or (len(part) == 1 and not part.isdigit()):
                continue
            # Crude plural folding: "passwords" matches "password", "refunds" "refund".
            if len(part) > 4 and part.endswith("s") and not part.endswith("ss"):
                part = part[:-1]
            terms.append(part)
    return terms


def _join_sentences(sentences: Sequence[str]) -> str:
    out = ""
    for sentence in sentences:
        if out and not _FULL_STOP_END_RE.search(out):
            out += " "
        out += sentence
    return out


@dataclass(slots=True)
class _Unit:
    """A quotable piece of a passage: one sentence, or one whole step of a list."""

    text: str
    source: int  # index into the request's passages, or into the messages for summaries
    position: int  # order within its source
    terms: frozenset[str]
    role: str  # answer, reply, internal, evidence
    step: bool = False
    warning: bool = False
    question: bool = False
    cite: bool = True


@dataclass(slots=True)
class _Window:
    units: list[_Unit]
    score: float
    coverage: frozenset[str]


def _default_role(passage: Passage) -> str:
    if passage.author_role:
        return _AUTHOR_ROLES.get(passage.author_role.casefold(), "evidence")
    if passage.internal:
        return "internal"  # private notes are written by agents, for agents
    if passage.kind == "review":
        return "evidence"
    if passage.kind in ("ticket", "conversation"):
        # An unlabelled piece of a thread chunk: whose words they are is unknown.
        return "evidence"
    return "answer"


def _logical_lines(paragraph: str) -> list[tuple[str, bool]]:
    """(text, is_step) items of a paragraph: list items stay whole, and lines that a
    Markdown export wrapped mid-sentence are joined back."""
    items: list[tuple[str, bool]] = []
    for raw in paragraph.split("\n"):
        line = raw.strip()
        if not line:
            continue
        is_step = bool(_BULLET_RE.match(line))
        if (
            items
            and not is_step
            and not _CHUNK_LABEL_RE.match(line)
            and not _SENTENCE_END_RE.search(items[-1][0])
        ):
            text, step = items[-1]
            # Japanese and Chinese put no space between words; wrapped lines join directly.
            joiner = "" if _UNSPACED_RE.match(text[-1:]) and _UNSPACED_RE.match(line[:1]) else " "
            items[-1] = (f"{text}{joiner}{line}", step)
        else:
            items.append((line, is_step))
    return items


def _addresses_a_model(sentence: str) -> bool:
    """Retrieved text is data, never instructions: a sentence that addresses a model is not
    quoted, whatever its score, so a poisoned article cannot speak through our replies. The
    one injection screen of the service (NFKC, confusables folded, many languages); imported
    here because the assistant package imports this provider (a module-level import would
    be circular)."""
    from backend.assistant.injection import looks_like_injection

    return looks_like_injection(sentence)


def _clean(sentence: str) -> str | None:
    """The sentence as it can be quoted, or None when it is not quotable."""
    sentence = _MARKER_RE.sub("", sentence).strip()
    # A ticket chunk's question line restates the subject: not an answer to quote.
    if sentence.startswith("Q:"):
        return None
    stripped = _LEADING_SALUTATION_RE.sub("", sentence)
    if stripped != sentence and stripped:
        sentence = stripped[0].upper() + stripped[1:]
    # A chunk cut mid-sentence (the splitter's overlap) starts in lower case: a fragment.
    if sentence[:1].isascii() and sentence[:1].islower():
        return None
    # Headings, fragments and instructions aimed at a model are not quotable sentences.
    if len(_WORD_RE.findall(sentence)) < 2 and not _CJK_RUN_RE.search(sentence):
        return None
    if len(sentence) < 4 or _addresses_a_model(sentence):
        return None
    if _SALUTATION_RE.match(sentence) or _PLEASANTRY_RE.match(sentence):
        return None
    return sentence


def _split_sentences(text: str) -> list[str]:
    """The quotable sentences and steps of a text, in order (labels, fragments, greetings
    out)."""
    return [text for (text, _), _ in _segments_with_steps(text)]


def _units(passage: Passage, index: int) -> list[_Unit]:
    default = _default_role(passage)
    units: list[_Unit] = []
    for position, ((body, is_step), label_role) in enumerate(_segments_with_steps(passage.text)):
        role = label_role or default
        if passage.internal and role != "evidence":
            role = "internal"
        units.append(
            _Unit(
                text=body,
                source=index,
                position=position,
                terms=frozenset(_terms(body)),
                role=role,
                step=is_step,
                warning=bool(_WARNING_RE.search(body)),
                question=bool(_QUESTION_END_RE.search(body)),
            )
        )
    return units


def _segments_with_steps(text: str) -> list[tuple[tuple[str, bool], str | None]]:
    out: list[tuple[tuple[str, bool], str | None]] = []
    for paragraph in re.split(r"\n\s*\n", text):
        label_role: str | None = None
        for line, is_step in _logical_lines(paragraph):
            if line.startswith("Q:"):
                label_role = "question"
                continue
            label = _CHUNK_LABEL_RE.match(line)
            if label:
                key = re.sub(r" \(.*", "", label.group(1).casefold())
                label_role = _LABEL_ROLES.get(key, "evidence")
                line = line[label.end() :]
            if label_role == "question":
                continue
            if is_step:
                step = _clean(_BULLET_RE.sub("", line))
                if step:
                    out.append(((step, True), label_role))
                continue
            for raw in _SENTENCE_SPLIT_RE.split(line):
                sentence = _clean(raw)
                if sentence:
                    out.append(((sentence, False), label_role))
    return out


class ExtractiveComposer:
    """A provider that composes from passages. See the module docstring."""

    name = PROVIDER_NAME
    model = MODEL_NAME

    def __init__(
        self,
        *,
        max_sentences: int = 6,
        max_chars: int = 700,
        rank_decay: float = 1.0,
        second_source_gain: float = 0.4,
    ) -> None:
        self._max_sentences = max_sentences
        self._max_chars = max_chars
        # How fast trust in a passage falls with its retrieval rank: retrieval saw the whole
        # question with a model, the composer only its words.
        self._rank_decay = rank_decay
        # The share of the question a second source must answer that the first leaves open.
        self._second_source_gain = second_source_gain

    async def complete(self, req: LLMRequest) -> LLMResult:
        return self.compose(req)

    async def stream(self, req: LLMRequest) -> AsyncIterator[TextDelta | Completed]:
        result = self.compose(req)
        for chunk in re.findall(r"\S+\s*", result.text):
            yield TextDelta(chunk)
            await asyncio.sleep(0)  # let other streams on the loop make progress
        yield Completed(result)

    # ----------------------------------------------------------------------------- compose

    def compose(self, req: LLMRequest) -> LLMResult:
        template = TEMPLATES.get(base_language(req.language) or "", _GENERIC)
        tone = req.tone or {}
        if req.task == "summarize":
            text, cited = self._summary(req, template)
        elif req.task == "answer":
            text, cited = self._answer(req, template)
        elif req.task == "draft_reply":
            text, cited = self._reply(req, template, tone)
        else:
            text, cited = self._review_reply(req)
        return LLMResult(
            text=text,
            provider=self.name,
            model=self.model,
            # No model ran, so no model tokens were spent.
            usage=Usage(0, 0),
            cost_usd=0.0,
            finish_reason="stop",
            cited_passage_ids=cited,
        )

    def _answer(self, req: LLMRequest, template: _Template) -> tuple[str, tuple[str, ...]]:
        query = req.query_text
        if _ABOUT_CUSTOMERS_RE.search(query):
            # "What do customers say about …": their own words are the answer here.
            reports = self._pick(req, query, roles=("evidence",), max_sources=3)
            if reports:
                return (
                    _lines(template.evidence_intro, self._render(req.passages, reports)),
                    _cited(req.passages, reports),
                )
        picked = self._pick(req, query, roles=("answer", "internal", "reply"))
        if picked:
            return _lines(template.answer_intro, self._render(req.passages, picked)), _cited(
                req.passages, picked
            )
        # Customers' words answer "what do customers say about …", never "how do I …".
        if not _HOW_WHY_RE.search(query):
            evidence = self._pick(req, query, roles=("evidence",), max_sources=3)
            if evidence:
                return (
                    _lines(template.evidence_intro, self._render(req.passages, evidence)),
                    _cited(req.passages, evidence),
                )
        return template.answer_not_found, ()

    def _reply(
        self, req: LLMRequest, template: _Template, tone: Mapping[str, str]
    ) -> tuple[str, tuple[str, ...]]:
        concise = tone.get("style", "").casefold() == "concise"
        query = req.query_text
        # The resolution of the most similar solved ticket, when it fits, then the article's
        # steps; either may be missing.
        tickets = [i for i, p in enumerate(req.passages) if p.kind in ("ticket", "conversation")]
        articles = [i for i, p in enumerate(req.passages) if i not in tickets]
        resolution = self._pick(
            req, query, roles=("answer",), only=tickets, max_sources=1, min_relevance=0.25
        )
        steps = self._pick(req, query, roles=("answer",), only=articles, max_sources=1)
        blocks: list[str] = []
        if resolution:
            blocks.append(self._render(req.passages, resolution))
        if steps:
            seen = {re.sub(r"\W+", "", u.text.casefold()) for u in resolution}
            steps = [u for u in steps if re.sub(r"\W+", "", u.text.casefold()) not in seen]
            if steps:
                lead = template.steps_intro if resolution and any(u.step for u in steps) else ""
                blocks.append(_lines(lead, self._render(req.passages, steps)))
        picked = [*resolution, *steps]
        body = "\n\n".join(blocks)
        middle = "\n\n".join(
            s for s in (None if concise else template.intro, body or template.reply_not_found) if s
        )
        return self._wrap(template, tone, middle, req, closing=not concise), _cited(
            req.passages, picked
        )

    def _review_reply(self, req: LLMRequest) -> tuple[str, tuple[str, ...]]:
        candidates = [
            unit
            for index, passage in enumerate(req.passages)
            if not passage.internal
            for unit in _units(passage, index)
            if unit.role == "answer" and not unit.question
        ]
        return compose_review_reply(
            req,
            candidates=[(u.text, u.source, u.terms) for u in candidates],
            terms=_terms,
        )

    def _wrap(
        self,
        template: _Template,
        tone: Mapping[str, str],
        middle: str,
        req: LLMRequest,
        *,
        closing: bool,
    ) -> str:
        friendly = tone.get("style", "").casefold() == "friendly"
        name = (req.customer_name or "").strip()
        if tone.get("greeting"):
            greeting = _fill_name(tone["greeting"], name)
        elif name:
            named = template.friendly_greeting_named if friendly else template.greeting_named
            greeting = named.format(name=name) if named else ""
        else:
            greeting = template.friendly_greeting if friendly else template.greeting
        closing_line = template.closing if closing else ""
        sign_off = tone.get("sign_off") or template.sign_off
        signature = tone.get("signature", "")
        blocks = [greeting, middle, closing_line, "\n".join(s for s in (sign_off, signature) if s)]
        return "\n\n".join(block.strip() for block in blocks if block.strip())

    # --------------------------------------------------------------------------- selection

    def _pick(
        self,
        req: LLMRequest,
        query: str,
        *,
        roles: Sequence[str],
        only: Sequence[int] | None = None,
        max_sources: int = 2,
        min_relevance: float = 0.0,
    ) -> list[_Unit]:
        """The best window of the best source, plus windows of other sources that cover
        what it leaves open; in quoting order."""
        by_source: dict[int, list[_Unit]] = {}
        for index, passage in enumerate(req.passages):
            if only is not None and index not in only:
                continue
            # Private notes are internal knowledge: never quoted in text for a customer.
            if passage.internal and req.customer_facing:
                continue
            units = [u for u in _units(passage, index) if u.role in roles]
            if units:
                by_source[index] = units
        query_terms = set(_terms(query))
        if not by_source or not query_terms:
            return []
        all_units = [u for units in by_source.values() for u in units]
        frequency = Counter(t for u in all_units for t in u.terms)
        total = len(all_units)
        title_terms = {t for i in by_source for t in _terms(req.passages[i].title)}
        # Only words the sources contain can be covered; the others weigh nothing.
        weights = {
            term: math.log(1 + (total + 1) / (frequency[term] + 1))
            for term in query_terms
            if frequency[term] or term in title_terms
        }
        if not weights:
            return []
        query_weight = sum(weights.values())
        budget = self._char_budget(req)

        windows: list[tuple[float, _Window]] = []
        # Rank counts within a kind of source: three similar tickets ranked above the
        # article do not make the article the fourth-best answer, only the best article.
        seen_of_kind: Counter[str] = Counter()
        for index, units in sorted(by_source.items()):
            kind = req.passages[index].kind
            rank = seen_of_kind[kind]
            seen_of_kind[kind] += 1
            window = self._best_window(
                units, weights, frozenset(_terms(req.passages[index].title)), budget
            )
            if window is None:
                continue
            relevance = sum(weights[t] for t in window.coverage) / query_weight
            if relevance <= min_relevance:
                continue
            prior = _source_trust(req.passages[index], window) / (1.0 + self._rank_decay * rank)
            windows.append((prior * (0.25 + relevance), window))
        if not windows:
            return []
        windows.sort(key=lambda pair: -pair[0])
        chosen = [windows[0][1]]
        covered = set(chosen[0].coverage)
        used = sum(len(u.text) for u in chosen[0].units)
        for _, window in windows[1:]:
            if len(chosen) >= max_sources:
                break
            new = window.coverage - covered
            gain = sum(weights[t] for t in new) / query_weight
            # Only a part of the question the first source leaves open earns a second one.
            if gain < self._second_source_gain:
                continue
            units = self._fit(window.units, budget - used)
            if not units:
                continue
            chosen.append(_Window(units, window.score, window.coverage))
            covered |= window.coverage
            used += sum(len(u.text) for u in units)
        picked: list[_Unit] = []
        seen: set[str] = set()
        for window in chosen:
            for unit in window.units:
                key = re.sub(r"\W+", "", unit.text.casefold())
                if key in seen or any(_near_duplicate(unit, p) for p in picked):
                    continue
                seen.add(key)
                picked.append(unit)
        return picked[: self._max_sentences]

    def _best_window(
        self,
        units: list[_Unit],
        weights: Mapping[str, float],
        title_terms: frozenset[str],
        budget: int,
    ) -> _Window | None:
        """The run of consecutive units, within ``budget`` characters, that covers most of
        the question; questions and off-topic warnings are skipped, not quoted."""

        def bears(unit: _Unit) -> bool:
            return any(t in weights for t in unit.terms)

        usable = [u for u in units if not u.question and (not u.warning or bears(u))]
        if not usable:
            return None
        best: _Window | None = None
        title_coverage = title_terms & weights.keys()
        for start in range(min(len(usable), 12)):
            if not bears(usable[start]) and start > 0 and not usable[start].step:
                continue
            taken: list[_Unit] = []
            chars = 0
            for unit in usable[start:]:
                if taken and chars + len(unit.text) > budget:
                    break
                taken.append(unit)
                chars += len(unit.text)
            body_coverage = frozenset(t for u in taken for t in u.terms if t in weights)
            if body_coverage:
                taken = _trim(taken, weights)
            elif not (start == 0 and title_coverage):
                # A source whose title names the question answers it from its first lines
                # (an FAQ entry); otherwise words that match nothing are not an answer.
                continue
            coverage = body_coverage | title_coverage
            score = sum(weights[t] for t in coverage) * (1.1 if start == 0 else 1.0)
            if best is None or score > best.score:
                best = _Window(taken, score, coverage)
        return best

    @staticmethod
    def _fit(units: list[_Unit], budget: int) -> list[_Unit]:
        kept: list[_Unit] = []
        chars = 0
        for unit in units:
            if chars + len(unit.text) > budget:
                break
            kept.append(unit)
            chars += len(unit.text)
        return kept

    def _char_budget(self, req: LLMRequest) -> int:
        # A reply carries a resolution and an article's steps: room for both. Never quote
        # more than the caller's token budget could have held (~3 chars a token).
        room = self._max_chars * 3 // 2 if req.task == "draft_reply" else self._max_chars
        return min(room, req.max_tokens * 3)

    # ---------------------------------------------------------------------------- summary

    def _summary(self, req: LLMRequest, template: _Template) -> tuple[str, tuple[str, ...]]:
        messages = [
            (i, p) for i, p in enumerate(req.passages) if p.author_role or p.kind == "ticket"
        ]
        if not messages:
            return self._centroid_summary(req, template)
        issue: list[_Unit] = []
        tried: list[_Unit] = []
        last_public_role: str | None = None
        for index, passage in messages:
            role = (passage.author_role or "").casefold()
            units = [u for u in _units(passage, index) if not u.question or role == "customer"]
            if role == "customer":
                last_public_role = "customer"
                if not issue:
                    issue = [u for u in units if not u.question][:2] or units[:1]
                else:
                    # A customer's follow-up often says what they already did.
                    tried += [u for u in units if not u.question][:1]
            elif role in ("agent", "internal note"):
                if role == "agent":
                    last_public_role = "agent"
                tried += [u for u in units if not u.question][:1]
        lines: list[str] = []
        if issue:
            lines.append(f"- {template.summary_issue} {self._render(req.passages, issue)}")
        tried_text = (
            " ".join(self._render(req.passages, [u], internal_mark=True) for u in tried[-3:])
            if tried
            else template.nothing_tried
        )
        lines.append(f"- {template.summary_tried} {tried_text}")
        status = (req.ticket_status or "").strip()
        if status:
            lines.append(f"- {template.summary_status} {status}")
        solved = status.casefold() in ("resolved", "closed", "solved", "done")
        next_step = (
            template.next_done
            if solved
            else template.next_wait
            if last_public_role == "agent"
            else template.next_reply
        )
        lines.append(f"- {template.summary_next} {next_step}")
        return _lines(template.summary_intro, "\n".join(lines)), _cited(
            req.passages, [*issue, *tried[-3:]]
        )

    def _centroid_summary(
        self, req: LLMRequest, template: _Template
    ) -> tuple[str, tuple[str, ...]]:
        units: list[_Unit] = []
        for index, message in enumerate(req.messages):
            if message.role == "system":
                continue
            for position, (text, _) in enumerate(_segments_with_steps(message.content)):
                units.append(
                    _Unit(
                        text[0], index, position, frozenset(_terms(text[0])), "evidence", cite=False
                    )
                )
        # The thread's own vocabulary, weighted by frequency, stands in for a question.
        weights = Counter(t for u in units for t in u.terms)
        scored = sorted(
            units,
            key=lambda u: -sum(weights[t] for t in u.terms) / math.sqrt(len(u.terms) or 1),
        )
        picked: list[_Unit] = []
        for unit in scored:
            if len(picked) > self._max_sentences or not unit.terms:
                break
            if not any(_near_duplicate(unit, p) for p in picked):
                picked.append(unit)
        picked.sort(key=lambda u: (u.source, u.position))
        if not picked:
            return template.answer_not_found, ()
        return _lines(template.summary_intro, "\n".join(f"- {u.text}" for u in picked)), ()

    # --------------------------------------------------------------------------- rendering

    @staticmethod
    def _render(
        passages: Sequence[Passage], picked: Sequence[_Unit], *, internal_mark: bool = False
    ) -> str:
        """Prose runs end with their source's marker; each step is its own cited line."""
        out: list[str] = []
        prose: list[_Unit] = []

        def flush() -> None:
            if prose:
                marker = f" [{prose[0].source + 1}]" if prose[0].cite and passages else ""
                out.append(_join_sentences([u.text for u in prose]) + marker)
                prose.clear()

        number = 0
        for unit in picked:
            if prose and prose[0].source != unit.source:
                flush()
            if unit.step:
                flush()
                number += 1
                marker = f" [{unit.source + 1}]" if unit.cite and passages else ""
                out.append(f"{number}. {unit.text}{marker}")
            else:
                prose.append(unit)
        flush()
        text = ""
        for piece in out:
            if text:
                text += "\n" if re.match(r"\d+\. ", piece) else " "
            text += piece
        if internal_mark and picked and passages and passages[picked[0].source].internal:
            text = f"({_INTERNAL_MARK}) {text}"
        return text


_INTERNAL_MARK = "internal"


_SOLVED = frozenset({"resolved", "closed", "solved", "done"})


def _source_trust(passage: Passage, window: _Window) -> float:
    """How much an answer from this kind of source is worth, other things equal: the
    company's articles first, then what agents wrote on solved tickets, then replies on
    tickets still open (not known to work) and private notes."""
    role = window.units[0].role
    if role == "internal":
        return 0.8
    if role == "reply":
        return 0.6  # an owner's reply to a review: a statement, rarely instructions
    if passage.kind in ("ticket", "conversation"):
        solved = passage.status is None or passage.status.casefold() in _SOLVED
        return 0.9 if solved else 0.7
    return 1.0


def _fill_name(greeting: str, name: str) -> str:
    if "{name}" not in greeting:
        return greeting
    if name:
        return greeting.replace("{name}", name)
    # No name known: "Hi {name}," becomes "Hi,".
    return re.sub(r"\s*\{name\}", "", greeting)


def _trim(units: list[_Unit], weights: Mapping[str, float]) -> list[_Unit]:
    """Whole sentences only, and none at the end that neither bears on the question nor
    belongs to the steps being quoted."""
    end = len(units)
    while (
        end > 0 and not units[end - 1].step and not any(t in weights for t in units[end - 1].terms)
    ):
        end -= 1
    return units[:end]


def _cited(passages: Sequence[Passage], picked: Sequence[_Unit]) -> tuple[str, ...]:
    cited: list[str] = []
    for unit in picked:
        if unit.cite and passages and passages[unit.source].id not in cited:
            cited.append(passages[unit.source].id)
    return tuple(cited)


def _near_duplicate(a: _Unit, b: _Unit) -> bool:
    if not a.terms or not b.terms:
        return False
    return len(a.terms & b.terms) / len(a.terms | b.terms) >= 0.8


def _lines(*parts: str) -> str:
    return "\n".join(part for part in parts if part)
