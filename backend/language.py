"""Language codes and rating sentiment, read the same way by every layer.

The assistant, the reply composers and the insight rollups all reduce a locale such as
``pt-BR`` or ``zh_Hant`` to its base language and a star rating to positive / neutral /
negative; these are the one definition of both.
"""

from __future__ import annotations

import re
from typing import Literal

_LOCALE_SEPARATOR = re.compile(r"[-_]")

RatingSentiment = Literal["positive", "neutral", "negative"]

# Shares of the rating scale: 4-5 of 5 (7-10 of 10) read as positive, 1-2 of 5 (1-5 of 10)
# as negative, the middle as neutral.
POSITIVE_SHARE = 0.7
NEGATIVE_SHARE = 0.5


def base_language(code: str | None) -> str | None:
    """``pt-BR`` → ``pt``, ``zh_Hant`` → ``zh``; None for a missing or blank code."""
    if not code or not code.strip():
        return None
    return _LOCALE_SEPARATOR.split(code.strip().casefold(), maxsplit=1)[0] or None


def rating_sentiment(rating: float | None, scale: float) -> RatingSentiment:
    """positive / neutral / negative from a rating on a ``scale``-point scale."""
    if rating is None or scale <= 0:
        return "neutral"
    share = rating / scale
    if share >= POSITIVE_SHARE:
        return "positive"
    if share <= NEGATIVE_SHARE:
        return "negative"
    return "neutral"
