"""Credential audiences (DESIGN §2, the trust boundary).

``agent``: the helpdesk sidebar and integrations: the company's knowledge, internal notes
included. ``customer``: a widget a customer can open: public knowledge only. API keys are
always ``agent``; a widget token carries the audience it was minted for (``agent`` when the
mint request does not say, which is what every token minted before audiences existed is).
"""

from __future__ import annotations

from typing import Final, Literal

Audience = Literal["agent", "customer"]
AUDIENCES: Final[tuple[Audience, ...]] = ("agent", "customer")
DEFAULT_AUDIENCE: Final[Audience] = "agent"
