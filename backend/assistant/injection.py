"""Prompt-injection screening for retrieved text.

Retrieved passages are data written by whoever could edit an article, file a ticket or post
a review; none of them may steer the model. Passages are delimited in every prompt (see
:mod:`backend.assistant.prompts`), and passages that read like instructions to a model are
flagged here and left out of generation altogether: a delimiter lowers the odds that a model
obeys, leaving the passage out removes them.

The patterns aim at text addressed to an AI ("ignore previous instructions", "you are now",
"system prompt", chat-template tokens) in English, Korean, Japanese and Chinese, and not at
ordinary support prose ("ignore the warning and click Next" does not match).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

_EARLIER = r"(?:previous|prior|above|earlier|preceding|former|original|all)"
_ORDERS = r"(?:instructions?|prompts?|messages?|rules|directions|directives|guidelines|context)"

_PATTERNS: Final[tuple[re.Pattern[str], ...]] = tuple(
    re.compile(pattern, re.IGNORECASE | re.MULTILINE)
    for pattern in (
        # English
        rf"\b(?:ignore|disregard|forget|override|bypass|skip)\s+(?:all\s+|any\s+|the\s+|your\s+|of\s+)*"
        rf"{_EARLIER}\s+(?:\w+\s+)?{_ORDERS}",
        rf"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+|the\s+)*(?:your|these|those)\s+{_ORDERS}",
        r"\byou\s+are\s+now\b",
        r"\bfrom\s+now\s+on,?\s+you\s+(?:are|will|must|should)\b",
        r"\bsystem\s+prompt\b",
        r"\b(?:new|updated|real)\s+instructions?\s*:",
        r"\bpretend\s+(?:to\s+be|you\s+are)\b",
        r"\b(?:reveal|print|repeat|show)\s+(?:me\s+)?(?:your|the)\s+(?:hidden\s+|secret\s+)?"
        r"(?:instructions|prompt|system\s+message)",
        r"\bas\s+an\s+(?:ai|a\.i\.|language\s+model|llm)\b",
        r"\b(?:jailbreak|developer\s+mode|DAN\s+mode)\b",
        # Chat-template and role markers that only make sense to a model
        r"<\|(?:im_start|im_end|system|user|assistant|endoftext)\|>",
        r"\[/?INST\]|<<SYS>>|<</SYS>>",
        r"^\s*#{2,}\s*(?:system|instruction|assistant)\b",
        r"</?\s*(?:passage|passages|system|instructions?)\b[^>]*>",
        # Korean
        r"(?:이전|앞의|앞선|위의|기존)\s*(?:의\s*)?(?:모든\s*)?(?:지시|지침|명령|프롬프트)",
        r"(?:지시|지침|명령|프롬프트)(?:사항)?(?:을|를|은|는)?\s*(?:모두\s*)?(?:무시|잊어)",
        r"시스템\s*프롬프트",
        r"(?:너는|당신은|넌)\s*이제(?:부터)?",
        r"지금부터\s*(?:너는|당신은|넌)",
        # Japanese
        r"(?:以前|前|上記|これまで)の(?:すべての|全ての)?(?:指示|命令|プロンプト)",
        r"(?:指示|命令|プロンプト)を(?:すべて|全て)?(?:無視|忘れ)",
        r"システム\s*プロンプト",
        r"あなたは(?:今から|これから|今後)",
        # Chinese
        r"忽略(?:之前|以前|上面|上述)?(?:的)?(?:所有)?(?:指示|指令|提示)",
        r"系统提示",
        r"你现在是",
    )
)


def _normalized(text: str) -> str:
    # NFKC folds full-width letters ("ｉｇｎｏｒｅ") and zero-width characters are dropped,
    # two cheap tricks that would otherwise slip past the patterns.
    text = re.sub(r"[\u200b\u200c\u200d\u2060\ufeff]", "", text)
    return re.sub(r"[ \t]+", " ", unicodedata.normalize("NFKC", text))


def injection_reason(text: str) -> str | None:
    """The suspicious fragment when ``text`` tries to instruct a model, else ``None``."""
    normalized = _normalized(text)
    for pattern in _PATTERNS:
        match = pattern.search(normalized)
        if match is not None:
            return match.group(0)
    return None


def looks_like_injection(text: str) -> bool:
    return injection_reason(text) is not None
