"""The extractive composer: grounded text with no model at all.

It writes only sentences that already exist in the request's passages (or, for summaries
without passages, in the thread itself), picked by lexical overlap with the question or
ticket, de-duplicated and cut to a length budget, then wraps them in a fixed template for the
task and language (greeting, closing, sign-off; rating-aware for reviews) and cites each
passage it quotes with ``[n]`` (``n`` = position in ``request.passages``). It never invents
a fact: when nothing in the passages matches, it says so instead of guessing.

It is the router's last resort and the default when no model is configured, so it must not
fail: it has no I/O and handles any input.

Scoring: sentences are scored against the query's terms weighted by inverse sentence
frequency, normalised by sentence length, greedily picked with already-covered terms
discounted (so a second sentence adds something new). Terms are lower-cased words for
space-delimited scripts and character bigrams for Hangul, kana and CJK ideographs, so
``비밀번호를`` still matches ``비밀번호`` and unsegmented Japanese matches at all.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from backend.llm.types import (
    ChatMessage,
    Completed,
    LLMRequest,
    LLMResult,
    Passage,
    TextDelta,
    Usage,
)

PROVIDER_NAME = "extractive"
MODEL_NAME = "extractive-v1"


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
)

TEMPLATES: Mapping[str, _Template] = {"en": _EN, "ko": _KO, "ja": _JA}

_CJK = r"\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_CJK_RUN_RE = re.compile(f"[{_CJK}]+")
_WORD_RE = re.compile(r"\w+")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])\s*|\n+")
_BULLET_RE = re.compile(r"^\s*(?:[-*•·]|\d{1,2}[.)])\s+")
_MARKER_RE = re.compile(r"\s*\[\d{1,3}\]")
_FULL_STOP_END_RE = re.compile(r"[。！？]$")

_STOPWORDS = frozenset(
    """a about after all also am an and any are as at be been but by can could did do does
    for from get got had has have how i if in into is it its just me my no not of on or our
    out so than that the their them then there these they this to too us was we were what
    when where which who why will with would you your yours hi hello please thanks thank""".split()  # noqa: SIM905
)


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


def _normalise_language(language: str) -> str:
    return re.split(r"[-_]", language.strip().casefold(), maxsplit=1)[0]


def _join_sentences(sentences: Sequence[str]) -> str:
    out = ""
    for sentence in sentences:
        if out and not _FULL_STOP_END_RE.search(out):
            out += " "
        out += sentence
    return out


@dataclass(slots=True)
class _Sentence:
    text: str
    source: int  # index into the request's passages, or into the messages for summaries
    position: int
    terms: frozenset[str]
    title_terms: frozenset[str]
    cite: bool


class ExtractiveComposer:
    """A provider that composes from passages. See the module docstring."""

    name = PROVIDER_NAME
    model = MODEL_NAME

    def __init__(
        self,
        *,
        max_sentences: int = 4,
        max_chars: int = 900,
        relative_score_floor: float = 0.3,
    ) -> None:
        self._max_sentences = max_sentences
        self._max_chars = max_chars
        self._floor = relative_score_floor

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
        template = TEMPLATES.get(_normalise_language(req.language), _GENERIC)
        tone = req.tone or {}
        if req.task == "summarize":
            text, cited = self._summary(req, template)
        elif req.task == "answer":
            text, cited = self._answer(req, template)
        elif req.task == "draft_reply":
            text, cited = self._reply(req, template, tone)
        else:
            text, cited = self._review_reply(req, template, tone)
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
        body, cited = self._body(req, req.query_text, self._max_sentences)
        if not body:
            return template.answer_not_found, ()
        return _lines(template.answer_intro, body), cited

    def _summary(self, req: LLMRequest, template: _Template) -> tuple[str, tuple[str, ...]]:
        sentences = self._candidates(req)
        if not sentences:
            sentences = self._thread_sentences(req.messages)
        # Centroid summary: the thread's own vocabulary, weighted by frequency, is the query.
        weights = Counter(term for s in sentences for term in s.terms)
        picked = self._select(
            sentences, dict(weights), self._max_sentences + 1, self._char_budget(req)
        )
        if not picked:
            return template.answer_not_found, ()
        bullets = [f"- {line}" for line in self._render(req.passages, picked, per_sentence=True)]
        cited = self._cited(req.passages, picked)
        return _lines(template.summary_intro, "\n".join(bullets)), cited

    def _reply(
        self, req: LLMRequest, template: _Template, tone: Mapping[str, str]
    ) -> tuple[str, tuple[str, ...]]:
        concise = tone.get("style", "").casefold() == "concise"
        body, cited = self._body(req, req.query_text, self._max_sentences)
        middle = _join_sentences(
            [
                s
                for s in (None if concise else template.intro, body or template.reply_not_found)
                if s
            ]
        )
        return self._wrap(template, tone, middle, closing=not concise), cited

    def _review_reply(
        self, req: LLMRequest, template: _Template, tone: Mapping[str, str]
    ) -> tuple[str, tuple[str, ...]]:
        sentiment = _sentiment(req.rating, req.rating_scale)
        parts: list[str] = []
        cited: tuple[str, ...] = ()
        if sentiment == "positive":
            parts.append(template.review_positive)
        elif sentiment == "negative":
            parts.append(template.review_negative)
            # A published reply quotes at most a couple of relevant policy sentences.
            body, cited = self._body(req, req.query_text, 2)
            if body:
                parts.append(body)
            parts.append(template.review_next_step)
        else:
            parts.append(template.review_neutral)
        # A review reply is published, not a conversation: no "reply to this message" closing.
        return self._wrap(template, tone, _join_sentences(parts), closing=False), cited

    def _wrap(
        self, template: _Template, tone: Mapping[str, str], middle: str, *, closing: bool
    ) -> str:
        friendly = tone.get("style", "").casefold() == "friendly"
        greeting = tone.get("greeting") or (
            template.friendly_greeting if friendly else template.greeting
        )
        closing_line = template.closing if closing else ""
        sign_off = tone.get("sign_off") or template.sign_off
        signature = tone.get("signature", "")
        blocks = [greeting, middle, closing_line, "\n".join(s for s in (sign_off, signature) if s)]
        return "\n\n".join(block.strip() for block in blocks if block.strip())

    # --------------------------------------------------------------------------- selection

    def _body(self, req: LLMRequest, query: str, max_sentences: int) -> tuple[str, tuple[str, ...]]:
        sentences = self._candidates(req)
        query_terms = set(_terms(query))
        if not sentences or not query_terms:
            return "", ()
        document_frequency = Counter(term for s in sentences for term in s.terms | s.title_terms)
        total = len(sentences)
        weights = {
            term: math.log(1 + total / document_frequency[term])
            for term in query_terms
            if document_frequency[term]
        }
        picked = self._select(sentences, weights, max_sentences, self._char_budget(req))
        if not picked:
            return "", ()
        return " ".join(self._render(req.passages, picked)), self._cited(req.passages, picked)

    def _candidates(self, req: LLMRequest) -> list[_Sentence]:
        # The one injection screen of the service; imported here because the assistant
        # package imports this provider (a module-level import would be circular).
        from backend.assistant.injection import looks_like_injection

        sentences: list[_Sentence] = []
        for index, passage in enumerate(req.passages):
            # Private notes are internal knowledge: never quoted in text for a customer.
            if passage.internal and req.customer_facing:
                continue
            title_terms = frozenset(_terms(passage.title))
            # Retrieved text is data, never instructions: in a passage that addresses a
            # model (the assistant normally leaves such passages out before they get here),
            # no sentence that does is quoted, whatever its score.
            screened = looks_like_injection(passage.text)
            for position, text in enumerate(_split_sentences(passage.text)):
                if screened and looks_like_injection(text):
                    continue
                sentences.append(
                    _Sentence(text, index, position, frozenset(_terms(text)), title_terms, True)
                )
        return sentences

    @staticmethod
    def _thread_sentences(messages: Sequence[ChatMessage]) -> list[_Sentence]:
        sentences: list[_Sentence] = []
        for index, message in enumerate(messages):
            if message.role == "system":
                continue
            for position, text in enumerate(_split_sentences(message.content)):
                terms = frozenset(_terms(text))
                sentences.append(_Sentence(text, index, position, terms, frozenset(), False))
        return sentences

    def _char_budget(self, req: LLMRequest) -> int:
        # Never quote more than the caller's token budget could have held (~3 chars a token).
        return min(self._max_chars, req.max_tokens * 3)

    def _select(
        self,
        sentences: list[_Sentence],
        weights: dict[str, float],
        max_sentences: int,
        max_chars: int,
    ) -> list[_Sentence]:
        """Greedy pick by weighted overlap; covered terms count less, near-duplicates never."""
        covered: set[str] = set()
        picked: list[_Sentence] = []
        seen_keys: set[str] = set()
        used_chars = 0
        best_first: float | None = None
        remaining = list(sentences)
        while remaining and len(picked) < max_sentences:
            scored = [(self._score(s, weights, covered), s) for s in remaining]
            # Ties go to the earlier passage (retrieval rank) and the earlier sentence.
            score, best = max(scored, key=lambda p: (p[0], -p[1].source, -p[1].position))
            if score <= 0 or (best_first is not None and score < self._floor * best_first):
                break
            remaining.remove(best)
            key = re.sub(r"\W+", "", best.text.casefold())
            if key in seen_keys or any(_near_duplicate(best, p) for p in picked):
                continue
            if used_chars + len(best.text) > max_chars:
                continue
            best_first = best_first if best_first is not None else score
            seen_keys.add(key)
            picked.append(best)
            used_chars += len(best.text)
            covered |= best.terms
        picked.sort(key=lambda s: (s.source, s.position))
        return picked

    @staticmethod
    def _score(sentence: _Sentence, weights: dict[str, float], covered: set[str]) -> float:
        if not sentence.terms:
            return 0.0
        overlap = 0.0
        for term in sentence.terms:
            weight = weights.get(term)
            if weight:
                overlap += weight * (0.7 if term in covered else 1.0)
        if overlap == 0:
            return 0.0  # a title match alone never makes a sentence relevant
        overlap += 0.5 * sum(
            weights.get(term, 0.0) for term in sentence.title_terms - sentence.terms
        )
        # Help-centre articles lead with the main step; later sentences add detail.
        lead_bonus = 1 + 0.25 / (1 + sentence.position)
        return lead_bonus * overlap / math.sqrt(len(sentence.terms))

    @staticmethod
    def _render(
        passages: Sequence[Passage], picked: list[_Sentence], *, per_sentence: bool = False
    ) -> list[str]:
        """Sentences grouped by source, each group followed by its citation marker."""
        groups: list[tuple[_Sentence, list[str]]] = []
        for sentence in picked:
            if groups and groups[-1][0].source == sentence.source and not per_sentence:
                groups[-1][1].append(sentence.text)
            else:
                groups.append((sentence, [sentence.text]))
        rendered = []
        for first, texts in groups:
            marker = f" [{first.source + 1}]" if first.cite and passages else ""
            rendered.append(_join_sentences(texts) + marker)
        return rendered

    @staticmethod
    def _cited(passages: Sequence[Passage], picked: list[_Sentence]) -> tuple[str, ...]:
        cited: list[str] = []
        for sentence in picked:
            if sentence.cite and passages[sentence.source].id not in cited:
                cited.append(passages[sentence.source].id)
        return tuple(cited)


# Greetings and thanks quoted from someone else's message: the composer writes its own.
_SALUTATION_RE = re.compile(
    r"^((hi|hello|hey|dear [^,.]{0,40}|thanks?( you)?( (so|very) much)?( for [^.]{0,40})?|"
    r"(best |kind )?regards|cheers|안녕하세요[^.!?]{0,10}|감사합니다|고맙습니다|"
    r"こんにちは|ありがとうございます)[\s,.!。！]*)+$",
    re.IGNORECASE,
)


# Labels the chunker writes into ticket chunks ("Q: …", "Resolution: …", "Agent: …").
_CHUNK_LABEL_RE = re.compile(
    r"^(?:resolution|latest agent reply|agent|customer|owner reply|review \(\d/\d\))\s*:\s*",
    re.IGNORECASE,
)


def _split_sentences(text: str) -> list[str]:
    sentences = []
    for raw in _SENTENCE_SPLIT_RE.split(text):
        sentence = _MARKER_RE.sub("", _BULLET_RE.sub("", raw)).strip()
        # A ticket chunk's question line restates the subject: not an answer to quote.
        if sentence.startswith("Q:"):
            continue
        sentence = _CHUNK_LABEL_RE.sub("", sentence)
        # A chunk cut mid-sentence (the splitter's overlap) starts in lower case: a fragment.
        if sentence[:1].isascii() and sentence[:1].islower():
            continue
        # Headings, fragments and instructions aimed at a model are not quotable sentences.
        if len(_WORD_RE.findall(sentence)) < 2 and not _CJK_RUN_RE.search(sentence):
            continue
        if len(sentence) < 4:
            continue
        if _SALUTATION_RE.match(sentence):
            continue
        sentences.append(sentence)
    return sentences


def _near_duplicate(a: _Sentence, b: _Sentence) -> bool:
    if not a.terms or not b.terms:
        return False
    return len(a.terms & b.terms) / len(a.terms | b.terms) >= 0.8


def _sentiment(rating: float | None, scale: float) -> str:
    if rating is None or scale <= 0:
        return "neutral"
    share = rating / scale
    if share >= 0.7:  # 4-5 of 5, 7-10 of 10
        return "positive"
    if share <= 0.5:  # 1-2 of 5, 1-5 of 10
        return "negative"
    return "neutral"


def _lines(*parts: str) -> str:
    return "\n".join(part for part in parts if part)
