"""Small text utilities shared by providers and the composer: token estimates, citations."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from backend.llm.types import Passage

# Hangul, kana and CJK ideographs: tokenizers spend roughly one token per character on them,
# against roughly four characters per token for Latin-script text.
_CJK_RE = re.compile(
    r"[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"
)
_CITATION_RE = re.compile(r"\[(\d{1,3})\]")


def estimate_tokens(text: str) -> int:
    """A rough token count for text a server did not count for us (never 0 for non-empty)."""
    if not text:
        return 0
    cjk = len(_CJK_RE.findall(text))
    other = len(text) - cjk
    return max(1, cjk + math.ceil(other / 4))


def estimate_prompt_tokens(system: str, contents: Sequence[str]) -> int:
    # Chat templates add a few tokens of role markup per message.
    return estimate_tokens(system) + sum(estimate_tokens(c) + 4 for c in contents)


def cited_passage_ids(text: str, passages: Sequence[Passage]) -> tuple[str, ...]:
    """Ids of the passages that ``[n]`` markers in ``text`` cite, in order of first citation.

    Markers that point outside ``passages`` are ignored: a model may number things of its own.
    """
    seen: list[str] = []
    for match in _CITATION_RE.finditer(text):
        index = int(match.group(1)) - 1
        if 0 <= index < len(passages):
            passage_id = passages[index].id
            if passage_id not in seen:
                seen.append(passage_id)
    return tuple(seen)
