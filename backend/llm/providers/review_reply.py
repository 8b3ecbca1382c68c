"""Review replies without a model: rating-aware and content-aware, in the review's language.

What an owner writes under a review, from what the review says:

- **The rating and the words.** Each sentence of the review (split again at "but",
  "하지만", "でも", "mais", "pero", "aber"…) is read as praise or complaint from small cue
  lexicons; a 4-star review that complains about a small dessert is *mixed*, and its reply
  thanks for what was liked and apologises for the dessert, instead of "glad you had a good
  experience".
- **What it was about.** The thing praised or criticised is named with the reviewer's own
  word when it is a known aspect (food, dessert, delivery, app, staff… per language);
  otherwise the complaint is quoted back in the reviewer's words, in quotation marks.
- **What happens next.** Negative and mixed replies point at the company's contact channel
  (tone ``contact`` in the company settings) and may quote one relevant policy passage, with
  its citation. The company's signature closes the reply.
- **Language.** English, Korean, Japanese, French, Spanish and German have their own
  phrases. A review in any other language is answered in English, and says so in the
  template-free way an agent would: nothing is machine-translated or guessed.

Everything it writes is either a fixed phrase of the language's table, the reviewer's own
words, or a quoted passage with its ``[n]`` marker.
"""

# Phrase tables in six languages: their lines are as long as their sentences.
# ruff: noqa: E501

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from backend.language import base_language, rating_sentiment
from backend.llm.types import LLMRequest


@dataclass(frozen=True, slots=True)
class ReviewPhrases:
    greeting: str
    greeting_named: str
    positive: str  # thanks, and glad it went well: a positive review that names nothing
    positive_thanks: str  # thanks alone, followed by what the reviewer liked
    neutral: str
    negative: str
    next_step: str
    next_step_contact: str  # {contact}
    praise_aspect: str  # {aspect}
    complaint_aspect: str  # {aspect}, in a mixed review
    trouble_aspect: str  # {aspect}, in a negative review
    complaint_quote: str  # {quote}
    mixed_thanks: str
    shared_with_team: str
    welcome_back: str
    sign_off: str
    quote_open: str = "“"
    quote_close: str = "”"


PHRASES: Mapping[str, ReviewPhrases] = {
    "en": ReviewPhrases(
        greeting="Hello,",
        greeting_named="Hi {name},",
        positive="Thank you for your kind review. We are glad you had a good experience.",
        positive_thanks="Thank you for your kind review.",
        neutral="Thank you for your feedback. We read every review and will use yours to improve.",
        negative="We are sorry that your experience did not meet your expectations.",
        next_step=(
            "Please contact our support team so that we can look into this and make it right."
        ),
        next_step_contact="Please contact us at {contact} so that we can look into this.",
        praise_aspect="It is great to hear that you liked the {aspect}.",
        complaint_aspect="We are sorry the {aspect} did not live up to your expectations.",
        trouble_aspect="We are sorry about the trouble with the {aspect}.",
        complaint_quote="Thank you for pointing this out: {quote}.",
        mixed_thanks="Thank you for your review and for the honest feedback.",
        shared_with_team="We have shared your comments with our team.",
        welcome_back="We look forward to seeing you again.",
        sign_off="Best regards,",
    ),
    "ko": ReviewPhrases(
        greeting="안녕하세요, 고객님.",
        greeting_named="안녕하세요, {name} 님.",
        positive="소중한 리뷰를 남겨 주셔서 감사합니다. 만족스러운 경험이 되셨다니 기쁩니다.",
        positive_thanks="소중한 리뷰를 남겨 주셔서 감사합니다.",
        neutral="소중한 의견 감사합니다. 남겨 주신 리뷰를 서비스 개선에 참고하겠습니다.",
        negative="이용에 불편을 드려 진심으로 죄송합니다.",
        next_step="고객센터로 연락해 주시면 내용을 확인하고 해결해 드리겠습니다.",
        next_step_contact="{contact}(으)로 연락해 주시면 내용을 확인하고 해결해 드리겠습니다.",
        praise_aspect="{aspect}에 만족하셨다니 정말 기쁩니다.",
        complaint_aspect="말씀하신 {aspect} 부분은 아쉬움을 드려 죄송합니다.",
        trouble_aspect="{aspect} 문제로 불편을 드려 진심으로 죄송합니다.",
        complaint_quote="말씀해 주신 내용 감사합니다: {quote}.",
        mixed_thanks="솔직한 리뷰를 남겨 주셔서 감사합니다.",
        shared_with_team="남겨 주신 의견은 담당 팀과 공유하겠습니다.",
        welcome_back="다음에 또 찾아 주시기를 기다리겠습니다.",
        sign_off="감사합니다.",
    ),
    "ja": ReviewPhrases(
        greeting="いつもご利用いただきありがとうございます。",
        greeting_named="{name}様",
        positive=(
            "素敵なレビューをいただき、ありがとうございます。ご満足いただけて大変うれしく思います。"
        ),
        positive_thanks="素敵なレビューをいただき、ありがとうございます。",
        neutral=(
            "貴重なご意見をいただき、ありがとうございます。今後のサービス改善に活かしてまいります。"
        ),
        negative="ご期待に沿えず、誠に申し訳ございません。",
        next_step=(
            "お手数ですが、サポート窓口までご連絡いただければ、詳しく確認のうえ対応いたします。"
        ),
        next_step_contact="お手数ですが、{contact}までご連絡いただければ、詳しく確認のうえ対応いたします。",
        praise_aspect="{aspect}にご満足いただけたとのこと、大変うれしく思います。",
        complaint_aspect="{aspect}についてはご期待に沿えず、申し訳ございません。",
        trouble_aspect="{aspect}の件でご不便をおかけし、誠に申し訳ございません。",
        complaint_quote="ご指摘いただきありがとうございます: {quote}。",
        mixed_thanks="率直なレビューをいただき、ありがとうございます。",
        shared_with_team="いただいたご意見は担当チームと共有いたします。",
        welcome_back="またのご利用を心よりお待ちしております。",
        sign_off="よろしくお願いいたします。",
        quote_open="「",
        quote_close="」",
    ),
    "fr": ReviewPhrases(
        greeting="Bonjour,",
        greeting_named="Bonjour {name},",
        positive="Merci beaucoup pour votre avis. Nous sommes ravis que votre expérience vous ait plu.",
        positive_thanks="Merci beaucoup pour votre avis.",
        neutral="Merci pour votre retour. Nous lisons chaque avis et nous en tiendrons compte.",
        negative="Nous sommes désolés que votre expérience n'ait pas été à la hauteur de vos attentes.",
        next_step="N'hésitez pas à contacter notre service client afin que nous puissions y remédier.",
        next_step_contact="N'hésitez pas à nous contacter à {contact} afin que nous puissions y remédier.",
        praise_aspect="Nous sommes ravis que « {aspect} » vous ait plu.",
        complaint_aspect="Nous sommes désolés que « {aspect} » ne vous ait pas donné satisfaction.",
        trouble_aspect="Nous sommes désolés pour le désagrément concernant « {aspect} ».",
        complaint_quote="Merci de nous l'avoir signalé : {quote}.",
        mixed_thanks="Merci pour votre avis et pour ce retour honnête.",
        shared_with_team="Nous avons transmis vos remarques à notre équipe.",
        welcome_back="Au plaisir de vous revoir bientôt.",
        sign_off="Cordialement,",
        quote_open="« ",
        quote_close=" »",
    ),
    "es": ReviewPhrases(
        greeting="Hola:",
        greeting_named="Hola, {name}:",
        positive="Muchas gracias por su reseña. Nos alegra mucho que haya tenido una buena experiencia.",
        positive_thanks="Muchas gracias por su reseña.",
        neutral="Gracias por su opinión. Leemos todas las reseñas y la tendremos en cuenta para mejorar.",
        negative="Lamentamos que su experiencia no haya estado a la altura de sus expectativas.",
        next_step="Le rogamos que contacte con nuestro equipo de atención para que podamos solucionarlo.",
        next_step_contact="Le rogamos que nos escriba a {contact} para que podamos solucionarlo.",
        praise_aspect="Nos alegra que le haya gustado «{aspect}».",
        complaint_aspect="Lamentamos que «{aspect}» no haya estado a la altura de sus expectativas.",
        trouble_aspect="Lamentamos mucho las molestias con «{aspect}».",
        complaint_quote="Gracias por comentárnoslo: {quote}.",
        mixed_thanks="Gracias por su reseña y por su opinión sincera.",
        shared_with_team="Hemos trasladado sus comentarios a nuestro equipo.",
        welcome_back="Esperamos volver a verle pronto.",
        sign_off="Saludos cordiales,",
        quote_open="«",
        quote_close="»",
    ),
    "de": ReviewPhrases(
        greeting="Guten Tag,",
        greeting_named="Hallo {name},",
        positive="Vielen Dank für Ihre freundliche Bewertung. Es freut uns, dass Sie zufrieden waren.",
        positive_thanks="Vielen Dank für Ihre freundliche Bewertung.",
        neutral="Vielen Dank für Ihr Feedback. Wir lesen jede Bewertung und lernen daraus.",
        negative="Es tut uns leid, dass Ihre Erfahrung nicht Ihren Erwartungen entsprach.",
        next_step="Bitte wenden Sie sich an unseren Kundenservice, damit wir das klären können.",
        next_step_contact="Bitte schreiben Sie uns an {contact}, damit wir das klären können.",
        praise_aspect="Es freut uns, dass Ihnen „{aspect}“ gefallen hat.",
        complaint_aspect="Es tut uns leid, dass „{aspect}“ nicht Ihren Erwartungen entsprach.",
        trouble_aspect="Es tut uns leid, dass es mit „{aspect}“ Probleme gab.",
        complaint_quote="Danke für den Hinweis: {quote}.",
        mixed_thanks="Vielen Dank für Ihre Bewertung und Ihr ehrliches Feedback.",
        shared_with_team="Wir haben Ihre Anmerkungen an unser Team weitergegeben.",
        welcome_back="Wir freuen uns auf Ihren nächsten Besuch.",
        sign_off="Viele Grüße",
        quote_open="„",
        quote_close="“",
    ),
}

# Cue words: a sentence (or a clause after "but") with more complaint cues than praise
# cues is a complaint. Stems match as prefixes of words (Latin) or substrings (CJK).
_NEGATIVE: Mapping[str, tuple[str, ...]] = {
    "en": (
        "not", "n't", "never", "too", "small", "tiny", "cold", "slow", "late", "rude",
        "expensive", "overpriced", "bad", "poor", "terrible", "awful", "worst", "disappoint",
        "broken", "dirty", "noisy", "bland", "waited", "problem", "issue", "unfortunately",
        "lacking", "missing", "annoying", "offline", "drop", "fail", "stale", "soggy", "bit",
        "off", "wrong", "forgot", "unhelpful", "crowded", "overcooked",
    ),
    "ko": (
        "별로", "아쉽", "아쉬", "작아", "작았", "작네", "적어", "적었", "늦", "불친절", "비싸",
        "최악", "실망", "않", "끊겨", "끊기", "안 돼", "안돼", "문제", "불편", "느려", "느리", "차가",
    ),
    "ja": (
        "残念", "小さ", "少な", "遅", "高い", "最悪", "不満", "冷め", "まずい", "不親切",
        "切れ", "問題", "悪い", "ひどい",
    ),
    "fr": (
        "pas", "trop", "petit", "froid", "lent", "cher", "décev", "déçu", "mauvais", "horrible",
        "attente", "problème", "dommage", "malheureusement", "sale", "bruyant",
    ),
    "es": (
        "no", "demasiado", "pequeñ", "frí", "lent", "caro", "mal", "decepci", "terrible",
        "espera", "problema", "lástima", "sucio", "ruidoso",
    ),
    "de": (
        "nicht", "zu", "klein", "kalt", "langsam", "teuer", "enttäusch", "schlecht",
        "schrecklich", "warten", "problem", "leider", "kaputt", "schmutzig", "laut",
    ),
}  # fmt: skip
_POSITIVE: Mapping[str, tuple[str, ...]] = {
    "en": (
        "great", "good", "love", "lovely", "excellent", "amazing", "delicious", "friendly",
        "fast", "easy", "perfect", "nice", "wonderful", "fantastic", "best", "recommend",
        "helpful", "tasty", "beautiful", "accurate", "useful", "enjoy", "awesome",
    ),
    "ko": ("좋", "맛있", "친절", "최고", "만족", "추천", "예쁘", "예뻐", "쉬워", "쉽", "빠르", "훌륭"),
    "ja": ("美味し", "おいし", "良", "よか", "最高", "満足", "親切", "素晴らし", "好き", "簡単", "使いやす", "便利"),
    "fr": ("bon", "excellent", "délicieu", "super", "parfait", "génial", "sympa", "aimable",
           "recommande", "ador", "rapide", "agréable"),
    "es": ("buen", "excelente", "delicios", "genial", "perfect", "amable", "recomiendo",
           "encant", "rápid", "agradable"),
    "de": ("gut", "toll", "super", "lecker", "perfekt", "freundlich", "empfehle", "schnell",
           "schön", "ausgezeichnet", "prima"),
}  # fmt: skip
_CONTRAST_RE: Mapping[str, re.Pattern[str]] = {
    "en": re.compile(r",?\s+\b(?:but|however|although|though|except)\b\s*", re.IGNORECASE),
    "ko": re.compile(r"\s*(?:하지만|그런데|그러나|다만)\s*|(?<=지만)\s+|(?<=는데)\s+"),
    "ja": re.compile(r"(?:ですが|でも|けど|けれど|しかし|ただ)、?|(?<=[いた])が、"),
    "fr": re.compile(r",?\s+\b(?:mais|cependant|pourtant|sauf)\b\s*", re.IGNORECASE),
    "es": re.compile(r",?\s+\b(?:pero|aunque|sin embargo|excepto)\b\s*", re.IGNORECASE),
    "de": re.compile(r",?\s+\b(?:aber|jedoch|allerdings|nur)\b\s*", re.IGNORECASE),
}
# Things a review is about, in the reviewer's words (lower-case; Latin ones as whole words).
_ASPECTS: Mapping[str, tuple[str, ...]] = {
    "en": (
        "food", "meal", "dish", "dessert", "portion", "portions", "coffee", "drinks", "service",
        "staff", "waiter", "waitress", "price", "prices", "delivery", "shipping", "packaging",
        "app", "setup", "installation", "hub", "bulbs", "bulb", "plug", "camera", "battery",
        "quality", "room", "breakfast", "location", "atmosphere", "music", "support",
        "product", "order", "refund", "taste", "menu", "pasta", "pizza", "burger", "cake", "bread",
        "salad", "soup", "automations", "monitoring", "scene", "wait",
    ),
    "ko": ("디저트", "음식", "서비스", "직원", "가격", "배송", "포장", "앱", "설치", "허브",
           "전구", "플러그", "카메라", "품질", "맛", "분위기", "커피", "케이크", "매장",
           "자동화", "색감", "연결", "환불", "반품"),
    "ja": ("デザート", "料理", "サービス", "店員", "スタッフ", "価格", "値段", "配送", "梱包",
           "アプリ", "設定", "ハブ", "電球", "品質", "味", "雰囲気", "コーヒー", "ケーキ",
           "接客", "接続", "返金", "返品"),
    "fr": ("nourriture", "plat", "dessert", "portion", "service", "personnel", "serveur",
           "prix", "livraison", "emballage", "application", "installation", "qualité",
           "ambiance", "café", "accueil", "attente", "chambre", "gâteau"),
    "es": ("comida", "plato", "postre", "porción", "ración", "servicio", "personal",
           "camarero", "precio", "envío", "entrega", "aplicación", "instalación", "calidad",
           "ambiente", "café", "atención", "espera", "habitación", "tarta"),
    "de": ("essen", "gericht", "dessert", "nachtisch", "portion", "service", "personal",
           "bedienung", "preis", "lieferung", "versand", "verpackung", "app", "installation",
           "qualität", "atmosphäre", "kaffee", "kuchen", "wartezeit", "zimmer"),
}  # fmt: skip
_CJK_LANGUAGES = frozenset({"ko", "ja"})
_SENTENCE_RE = re.compile(r"[^.!?。！？\n]+[.!?。！？]*")
_WORD_RE = re.compile(r"[\w'’]+")
_MAX_QUOTE = 90
_MAX_POLICY = 240


@dataclass(frozen=True, slots=True)
class _Clause:
    text: str
    polarity: int  # +1 praise, -1 complaint, 0 neither
    aspect: str | None


def _has(stem_list: Sequence[str], text: str, language: str) -> int:
    if language in _CJK_LANGUAGES:
        return sum(text.count(stem) for stem in stem_list)
    words = [w.casefold() for w in _WORD_RE.findall(text)]
    return sum(1 for w in words for stem in stem_list if w == stem or w.startswith(stem))


def _aspect(text: str, language: str) -> str | None:
    candidates = _ASPECTS.get(language, ())
    if language in _CJK_LANGUAGES:
        found: list[tuple[int, int, str]] = [
            (text.find(a), -len(a), a) for a in candidates if a in text
        ]
        # The first thing the clause names (the subject, in Korean and Japanese).
        return min(found)[2] if found else None
    words: list[str] = _WORD_RE.findall(text)
    for position, word in enumerate(words):
        if word.casefold() in candidates:
            # As the reviewer wrote it ("Bedienung"), but a capital that only starts the
            # sentence ("Hub goes offline…") is not part of the word outside German.
            return word.casefold() if position == 0 and language != "de" else word
    return None


def read_review(text: str, language: str) -> list[_Clause]:
    """The review's clauses, each with its polarity and the aspect it names."""
    contrast = _CONTRAST_RE.get(language)
    clauses: list[_Clause] = []
    for match in _SENTENCE_RE.finditer(text):
        sentence = match.group(0).strip()
        if not sentence:
            continue
        pieces = [p for p in (contrast.split(sentence) if contrast else [sentence]) if p.strip()]
        for piece in pieces:
            negative = _has(_NEGATIVE.get(language, ()), piece, language)
            positive = _has(_POSITIVE.get(language, ()), piece, language)
            polarity = -1 if negative > positive else 1 if positive > negative else 0
            clauses.append(_Clause(piece.strip(), polarity, _aspect(piece, language)))
    return clauses


def _quote(text: str, phrases: ReviewPhrases) -> str:
    text = text.strip().rstrip(".!。！")
    if len(text) > _MAX_QUOTE:
        text = text[:_MAX_QUOTE].rsplit(" ", 1)[0] + "…"
    return f"{phrases.quote_open}{text}{phrases.quote_close}"


def _first_name(author: str | None) -> str | None:
    if not author:
        return None
    name = author.strip().split()[0] if author.strip() else ""
    # Handles and initials ("minsu88", "K.") are not names to greet anyone by.
    if len(name) < 2 or not name.replace("-", "").isalpha() or name.endswith("."):
        return None
    return name


def compose_review_reply(
    req: LLMRequest,
    *,
    candidates: Sequence[tuple[str, int, frozenset[str]]],
    terms: Callable[[str], list[str]],
) -> tuple[str, tuple[str, ...]]:
    """(reply text, cited passage ids). ``candidates`` are quotable policy sentences
    (text, passage index, terms) from the request's public passages."""
    language = base_language(req.language) or "en"
    phrases = PHRASES.get(language, PHRASES["en"])
    read_as = language if language in PHRASES else "en"
    tone = req.tone or {}
    review = req.query_text
    clauses = read_review(review, read_as)
    praise = [c for c in clauses if c.polarity > 0]
    complaints = [c for c in clauses if c.polarity < 0]
    by_rating = rating_sentiment(req.rating, req.rating_scale)
    if by_rating == "positive" and complaints:
        mood = "mixed"
    elif by_rating == "neutral":
        mood = "mixed" if (praise or complaints) else "neutral"
    elif by_rating == "negative" or (req.rating is None and complaints and not praise):
        mood = "negative"
    else:
        mood = "positive"

    parts: list[str] = []
    cited: tuple[str, ...] = ()
    praised = next((c.aspect for c in praise if c.aspect), None)
    complained = next((c for c in complaints if c.aspect), None) or (
        complaints[0] if complaints else None
    )
    if complained is not None and complained.aspect is None:
        # "I asked for a refund; three weeks on, nothing": the complaint is about the thing
        # a neighbouring clause named.
        named = next((c.aspect for c in clauses if c.aspect and c.polarity <= 0), None)
        if named:
            complained = _Clause(complained.text, complained.polarity, named)

    def complaint_line(clause: _Clause) -> str:
        if clause.aspect:
            return phrases.complaint_aspect.format(aspect=clause.aspect)
        return phrases.complaint_quote.format(quote=_quote(clause.text, phrases))

    contact = tone.get("contact", "").strip()
    next_step = phrases.next_step_contact.format(contact=contact) if contact else phrases.next_step
    if mood == "positive":
        if praised:
            parts.append(phrases.positive_thanks)
            parts.append(phrases.praise_aspect.format(aspect=praised))
        else:
            parts.append(phrases.positive)
        parts.append(phrases.welcome_back)
    elif mood == "neutral":
        parts.append(phrases.neutral)
    elif mood == "mixed":
        parts.append(phrases.mixed_thanks)
        if praised:
            parts.append(phrases.praise_aspect.format(aspect=praised))
        if complained:
            parts.append(complaint_line(complained))
        parts.append(phrases.shared_with_team)
        if contact:
            parts.append(next_step)
    else:
        if complained and complained.aspect:
            parts.append(phrases.trouble_aspect.format(aspect=complained.aspect))
        else:
            parts.append(phrases.negative)
        policy, cited = _policy(review, candidates, req, terms)
        if policy:
            parts.append(policy)
        parts.append(next_step)

    name = _first_name(req.customer_name)
    greeting = tone.get("greeting") or (
        phrases.greeting_named.format(name=name) if name else phrases.greeting
    )
    if "{name}" in greeting:
        greeting = (
            greeting.replace("{name}", name) if name else re.sub(r"\s*\{name\}", "", greeting)
        )
    # In a language without its own phrases, the company's English house style still fits.
    sign_off = tone.get("sign_off") or phrases.sign_off
    signature = tone.get("signature", "")
    # Japanese runs its sentences together; every other language spaces them.
    body = ("" if language == "ja" else " ").join(parts)
    blocks = [greeting, body, "\n".join(s for s in (sign_off, signature) if s)]
    return "\n\n".join(b.strip() for b in blocks if b.strip()), cited


def _policy(
    review: str,
    candidates: Sequence[tuple[str, int, frozenset[str]]],
    req: LLMRequest,
    terms: Callable[[str], list[str]],
) -> tuple[str, tuple[str, ...]]:
    """At most two sentences of the one passage that bears most on the review, cited."""
    review_terms = set(terms(review))
    if not review_terms or not candidates:
        return "", ()
    scored = [
        (len(t & review_terms) / (len(t) ** 0.5 or 1), text, index)
        for text, index, t in candidates
        if t & review_terms
    ]
    if not scored:
        return "", ()
    best_index = max(scored, key=lambda s: (s[0], -s[2]))[2]
    # A published reply quotes one short sentence of policy, not the article.
    short = [s for s in scored if s[2] == best_index and len(s[1]) <= _MAX_POLICY]
    if not short:
        return "", ()
    text = max(short, key=lambda s: s[0])[1]
    return f"{text} [{best_index + 1}]", (req.passages[best_index].id,)
