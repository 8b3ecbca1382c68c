"""Star ratings from any platform's scale onto the shared 1-5 scale."""

from __future__ import annotations

import math

# Google Business Profile sends the rating as an enum name, not a number.
GOOGLE_STAR_RATINGS: dict[str, int] = {"ONE": 1, "TWO": 2, "THREE": 3, "FOUR": 4, "FIVE": 5}


def parse_rating(value: object) -> float | None:
    """A rating as a number; ``None`` when missing or blank. Raises ValueError when garbled.

    Accepts numbers and numeric strings, including a decimal comma ("4,5") and a trailing
    "/10"-style denominator that some exports keep ("8/10" → 8).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a rating: {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip()
        if not text:
            return None
        text = text.split("/")[0].strip().replace(",", ".")
        number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"not a rating: {value!r}")
    return number


def normalize_rating(value: float, scale: int) -> float:
    """Map ``value`` on a 1..``scale`` scale linearly onto 1..5, rounded to 2 decimals.

    Linear so that both ends stay fixed: 10/10 → 5, 1/10 → 1, 8/10 → 4.11.
    Raises ValueError for values outside 1..scale (a 0 means "no rating" on some platforms
    and must be mapped to ``None`` by the caller before this point).
    """
    if scale < 2:
        raise ValueError("a rating scale needs at least two steps")
    if not 1 <= value <= scale:
        raise ValueError(f"rating {value:g} is outside 1..{scale}")
    if scale == 5:
        return round(value, 2)
    return round(1 + (value - 1) * 4 / (scale - 1), 2)
