"""Prompt-injection screening for retrieved text (and customer text headed for a draft).

Retrieved passages are data written by whoever could edit an article, file a ticket or post
a review; none of them may steer the model. Passages are delimited in every prompt (see
:mod:`backend.assistant.prompts`), and passages that read like instructions to a model are
flagged here and left out of generation altogether: a delimiter lowers the odds that a model
obeys, leaving the passage out removes them. The extractive composer applies the same
screen to every sentence it would quote.

The text is normalised before matching, so cheap disguises do not slip past:

- NFKC folds full-width and "mathematical" letters (``ｉｇｎｏｒｅ``, ``𝐢𝐠𝐧𝐨𝐫𝐞``) and
  compatibility forms; zero-width characters and soft hyphens are dropped;
- look-alike letters of other scripts are folded to the Latin letter they imitate
  (Cyrillic ``о`` in ``Ignоre``, Greek ``ο``…), from Unicode's confusables table as shipped by
  the ``confusable_homoglyphs`` package; Hangul, kana and CJK are never folded, so the
  Korean, Japanese and Chinese patterns still see their own text;
- case is folded and runs of spaces become one.

The patterns aim at text addressed to an AI ("ignore previous instructions", "note to the
AI assistant", "you are now", "system prompt", chat-template and role tokens) in English,
Korean, Japanese, Chinese, German, French and Spanish, and not at ordinary support prose
("ignore the warning and click Next" does not match).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Final

from confusable_homoglyphs.confusables import confusables_data

# Scripts whose letters are text in their own right, never disguises of Latin letters.
_NEVER_FOLDED: Final = ("HANGUL", "CJK", "HIRAGANA", "KATAKANA", "HALFWIDTH", "IDEOGRAPHIC")
_INVISIBLE: Final = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


@functools.cache
def _confusable_fold() -> dict[int, str]:
    """Unicode's confusables table reduced to non-ASCII letter → the ASCII letter it mimics."""
    table: dict[int, str] = {}
    for char, homoglyphs in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        if unicodedata.name(char, "").startswith(_NEVER_FOLDED):
            continue
        latin = [h["c"] for h in homoglyphs if len(h["c"]) == 1 and h["c"].isascii()]
        letters = [c for c in latin if c.isalpha()]
        if letters or latin:
            table[ord(char)] = (letters or latin)[0]
    return table


def normalize_for_screening(text: str) -> str:
    """The text the patterns see (see the module docstring); not for display."""
    text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))
    if not text.isascii():
        text = text.translate(_confusable_fold())
    return re.sub(r"[ \t]+", " ", text.casefold())


_EARLIER = r"(?:previous|prior|above|earlier|preceding|former|original|all|old)"
_ORDERS = (
    r"(?:instructions?|prompts?|messages?|rules|directions|directives|guidelines|context|"
    r"guidance|commands?|orders)"
)
_DROP = r"(?:ignore|disregard|forget|override|bypass|skip|discard|drop|abandon|neglect)"
_AI = r"(?:ai|a\.i\.|assistant|bot|chatbot|language model|llm|model|gpt|claude|copilot)"

_PATTERNS: Final[tuple[re.Pattern[str], ...]] = tuple(
    re.compile(pattern, re.MULTILINE)
    for pattern in (
        # --- English
        rf"\b{_DROP}\s+(?:all\s+|any\s+|the\s+|your\s+|of\s+|my\s+)*{_EARLIER}\s+(?:\w+\s+)?"
        rf"{_ORDERS}",
        rf"\b{_DROP}\s+(?:all\s+|any\s+|the\s+)*(?:your|these|those)\s+{_ORDERS}",
        # "disregard everything written above", "ignore all of the above", "forget what
        # you were told before"
        rf"\b{_DROP}\s+(?:all\s+of\s+|everything\s+|anything\s+|whatever\s+|what\s+)?"
        r"(?:(?:was\s+|is\s+|you\s+were\s+|has\s+been\s+)?(?:written|said|stated|told|"
        r"given|mentioned|above)\s*)+(?:above|before|earlier|previously|so\s+far|prior)?",
        rf"\b{_DROP}\s+(?:all\s+of\s+)?the\s+above\b",
        rf"\bnote\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?{_AI}",
        rf"\b(?:dear|hey|attention|to\s+the)\s+{_AI}\s*[,:!]",
        rf"\b{_AI}\s*(?:assistant\s*)?[,:]\s*(?:please\s+)?{_DROP}\b",
        rf"\binstructions?\s+(?:to|for)\s+(?:the\s+|any\s+)?{_AI}\b",
        r"\byou\s+are\s+now\b",
        r"\bfrom\s+now\s+on,?\s+you\s+(?:are|will|must|should)\b",
        r"\bsystem\s+prompt\b",
        r"\b(?:new|updated|real|actual|revised)\s+instructions?\s*:",
        r"\bpretend\s+(?:to\s+be|you\s+are)\b",
        r"\bact\s+as\s+(?:if\s+you\s+(?:are|were)\s+)?(?:an?\s+)?(?:unrestricted|unfiltered|"
        r"jailbroken|different)\b",
        r"\b(?:reveal|print|repeat|show|output)\s+(?:me\s+)?(?:your|the)\s+(?:hidden\s+|"
        r"secret\s+|initial\s+)?(?:instructions|prompt|system\s+message)",
        r"\bas\s+an\s+(?:ai|a\.i\.|language\s+model|llm)\b",
        r"\b(?:jailbreak|developer\s+mode|dan\s+mode)\b",
        # --- chat-template and role markers that only make sense to a model
        r"<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id)\|>",
        r"\[/?inst\]|<<\s*/?sys\s*>>|\[/?(?:system|sys)\]",
        r"^\s*#{2,}\s*(?:system|instruction|assistant|user)\b",
        r"</?\s*(?:passage|passages|system|instructions?|im_start|assistant)\b[^>]*>",
        r"^\s*(?:system|assistant|developer)\s*(?:prompt|message)?\s*:\s*(?:you\b|ignore|"
        r"disregard|forget|override|from\s+now|new\s+instructions|always|never|do\s+not|"
        r"don't|respond|reply|answer)",
        # --- German
        r"\b(?:ignorier(?:e|en|t)?|vergiss|vergesst|vergessen\s+sie|missachte)\s+(?:bitte\s+)?"
        r"(?:alle\s+|die\s+|deine\s+|sämtliche\s+)*(?:vorherigen|bisherigen|obigen|vorigen|"
        r"früheren|vorangegangenen)\s+(?:anweisungen|instruktionen|befehle|regeln|vorgaben)",
        r"\b(?:ignorier(?:e|en)?|vergiss)\s+(?:bitte\s+)?alles\s+(?:oben|vorherige|bisherige|"
        r"davor|was\s+oben)",
        r"\bsystem-?\s?prompt\b",
        r"\bdu\s+bist\s+(?:jetzt|nun|ab\s+sofort|ab\s+jetzt)\b",
        r"\b(?:hinweis|notiz|nachricht)\s+(?:an|für)\s+(?:die|den)\s+(?:ki|assistenten|bot)\b",
        # --- French
        r"\b(?:ignore[zr]?|oublie[zr]?|ne\s+tiens\s+pas\s+compte\s+d[e'])\s*(?:toutes\s+|"
        r"tous\s+)?(?:les\s+|tes\s+|vos\s+)?(?:instructions|consignes|directives|règles)\s+"
        r"(?:précédentes|ci-dessus|antérieures|d'avant|initiales)",
        r"\b(?:ignore[zr]?|oublie[zr]?)\s+(?:tout\s+)?ce\s+qui\s+(?:précède|est\s+(?:écrit\s+)?"
        r"ci-dessus)",
        r"\b(?:tu\s+es|vous\s+êtes)\s+(?:maintenant|désormais|dorénavant)\b",
        r"\b(?:invite|prompt|message)\s+(?:du\s+)?système\b",
        r"\bnote\s+(?:à|pour)\s+l['’]\s?(?:ia|assistant)\b",
        # --- Spanish
        r"\b(?:ignora(?:r|d)?|olvida(?:r|d)?|haz\s+caso\s+omiso\s+de)\s+(?:todas\s+)?"
        r"(?:las\s+|tus\s+|sus\s+)?(?:instrucciones|indicaciones|órdenes|reglas)\s+"
        r"(?:anteriores|previas|de\s+arriba|iniciales)",
        r"\b(?:ignora|olvida)\s+todo\s+lo\s+(?:anterior|de\s+arriba|que\s+(?:está|se\s+dijo))",
        r"\b(?:a\s+partir\s+de\s+ahora|ahora)\s+(?:tú\s+)?eres\b",
        r"\b(?:prompt|mensaje|indicaciones)\s+del\s+sistema\b",
        r"\bnota\s+para\s+(?:la\s+|el\s+)?(?:ia|asistente)\b",
        # --- Korean
        r"(?:이전|앞의|앞선|위의|기존)\s*(?:의\s*)?(?:모든\s*)?(?:지시|지침|명령|프롬프트|내용)"
        r"(?:사항)?(?:을|를|은|는)?\s*(?:모두\s*)?(?:무시|잊어)",
        r"(?:이전|앞의|앞선|위의|기존)\s*(?:의\s*)?(?:모든\s*)?(?:지시|지침|명령|프롬프트)",
        r"(?:지시|지침|명령|프롬프트)(?:사항)?(?:을|를|은|는)?\s*(?:모두\s*)?(?:무시|잊어)",
        r"시스템\s*프롬프트",
        r"(?:너는|당신은|넌)\s*이제(?:부터)?",
        r"지금부터\s*(?:너는|당신은|넌)",
        r"(?:ai|인공지능|어시스턴트|챗봇)\s*(?:에게|한테)\s*(?:보내는\s*)?(?:메모|참고|알림|지시)",
        # --- Japanese
        r"(?:以前|前|上記|これまで|上)の(?:すべての|全ての)?(?:指示|命令|プロンプト|内容)を?"
        r"(?:すべて|全て)?(?:無視|忘れ)",
        r"(?:以前|前|上記|これまで)の(?:すべての|全ての)?(?:指示|命令|プロンプト)",
        r"(?:指示|命令|プロンプト)を(?:すべて|全て)?(?:無視|忘れ)",
        r"システム\s*プロンプト",
        r"あなたは(?:今から|これから|今後)",
        r"(?:ai|aiアシスタント|アシスタント)への(?:メモ|注意|指示)",
        # --- Chinese
        r"(?:忽略|无视|忘记|忽視|無視)(?:之前|以前|上面|上述|以上|先前)?(?:的)?(?:所有|全部)?"
        r"(?:指示|指令|提示|内容|內容|说明|規則|规则)",
        r"(?:忽略|无视)(?:以上|上述|上面)(?:所有)?",
        r"系统提示|系統提示",
        r"你现在是|你現在是|从现在开始你|你现在扮演",
        r"(?:给|給)(?:ai|人工智能|助手)的(?:备注|提示|说明)",
    )
)


# Knowledge passages come back request after request: screening each text once per process
# makes the ~1.5 ms per KB of matching a one-off (the entries are chunk-sized).
@functools.lru_cache(maxsize=4096)
def injection_reason(text: str) -> str | None:
    """The suspicious fragment (normalised) when ``text`` tries to instruct a model."""
    normalized = normalize_for_screening(text)
    for pattern in _PATTERNS:
        match = pattern.search(normalized)
        if match is not None:
            return match.group(0)
    return None


def looks_like_injection(text: str) -> bool:
    return injection_reason(text) is not None


_SENTENCE_END: Final = re.compile(r"(?<=[.!?。！？])\s+|\n+")


def without_injected_sentences(text: str) -> tuple[str, int]:
    """``text`` without the sentences that address a model, and how many were removed.

    For customer-written text going into a customer-facing draft: the customer's question
    is kept, an instruction to the assistant hidden in it is not.
    """
    if not looks_like_injection(text):
        return text, 0
    kept: list[str] = []
    removed = 0
    for sentence in _SENTENCE_END.split(text):
        if sentence.strip() and looks_like_injection(sentence):
            removed += 1
        else:
            kept.append(sentence)
    if not removed:
        # The instruction spans sentences: nothing of it may reach the model.
        return "", 1
    return " ".join(s for s in kept if s.strip()), removed
