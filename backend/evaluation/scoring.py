"""Text scores shared by the evaluation runner and the answer-quality bench."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence

_TOKEN_RE = re.compile(r"\w+")
_ARTICLES = frozenset({"a", "an", "the"})
_MARKED_SENTENCE_RE = re.compile(r"([^\[\]\n]+?)\s*\[(\d{1,3})\]")
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def tokens(text: str) -> list[str]:
    """SQuAD-style tokens: lower-cased words, articles dropped; CJK runs as characters."""
    out: list[str] = []
    for word in _TOKEN_RE.findall(text.casefold()):
        if word in _ARTICLES:
            continue
        if _CJK_RE.search(word):
            out.extend(word)
        else:
            out.append(word)
    return out


def token_f1(candidate: Sequence[str], reference: Sequence[str]) -> float:
    common = sum((Counter(candidate) & Counter(reference)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(candidate), common / len(reference)
    return 2 * precision * recall / (precision + recall)


def rouge_l(candidate: Sequence[str], reference: Sequence[str]) -> float:
    """ROUGE-L F1: the longest common subsequence of the two token lists."""
    if not candidate or not reference:
        return 0.0
    previous = [0] * (len(reference) + 1)
    for token in candidate:
        current = [0]
        for j, ref_token in enumerate(reference, start=1):
            current.append(
                previous[j - 1] + 1 if token == ref_token else max(previous[j], current[j - 1])
            )
        previous = current
    lcs = previous[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(candidate), lcs / len(reference)
    return 2 * precision * recall / (precision + recall)


def citation_support(text: str, sources: Mapping[int, str], *, threshold: float = 0.6) -> float:
    """The share of cited statements whose words mostly occur in the passage they cite.

    ``sources`` maps a marker number to that passage's text. A statement is the text before
    a ``[n]`` marker; it is supported when at least ``threshold`` of its tokens are in
    passage ``n``. No cited statement at all scores 0: an uncited answer supports nothing.
    """
    statements = _MARKED_SENTENCE_RE.findall(text)
    if not statements:
        return 0.0
    supported = 0
    for statement, number in statements:
        words = tokens(statement)
        source = set(tokens(sources.get(int(number), "")))
        if words and sum(1 for w in words if w in source) / len(words) >= threshold:
            supported += 1
    return supported / len(statements)
