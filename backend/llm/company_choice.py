"""A company's own LLM choices (issue 16): the providers it prefers, per task or for every
task, and its monthly budget. They live in ``companies.settings["llm"]``::

    {"llm": {"route": "local",
             "tasks": {"review_reply": ["anthropic", "local"]},
             "monthly_budget_usd": 40}}

A company picks among the providers the operator configured, by name, and nothing else:
base URLs, keys and models stay operator settings, so no company can make the server call
an address of its choosing (the egress rule). A name the router does not know is ignored.
Its budget can only make the operator's stricter, never looser.

The router reads them per request through :class:`CachedCompanyChoices`, which remembers a
company's choices for a short time (``HELPDESK_PLAN_CACHE_SECONDS``); the settings endpoint
calls :meth:`CachedCompanyChoices.forget` when they change.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.llm.clock import Clock
from backend.llm.types import Task

logger = structlog.get_logger("backend.llm.company_choice")

DEFAULT_ROUTE: Final = "default"
"""``route`` value meaning "the operator's routes" (the same as no route)."""
MAX_CHAIN: Final = 5
_MAX_CACHED: Final = 10_000


class CompanyChoices(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    route: str | None = Field(default=None, max_length=100)
    """A provider tried first for every task (``default``: the operator's routes)."""
    tasks: dict[Task, tuple[str, ...]] = Field(default_factory=dict)
    """Per task, the providers to try in order (the extractive composer is always last)."""
    monthly_budget_usd: float | None = Field(default=None, ge=0)

    @classmethod
    def from_company_settings(cls, raw: Mapping[str, Any] | None) -> CompanyChoices:
        llm = (raw or {}).get("llm")
        if not isinstance(llm, Mapping):
            return NO_CHOICES
        try:
            return cls.model_validate(dict(llm))
        except ValidationError:
            # Written through the validated endpoint, so this is an old or hand-edited row:
            # the operator's routes answer rather than the request failing.
            logger.warning("llm_company_choices_invalid", settings=dict(llm))
            return NO_CHOICES

    def provider_names(self) -> set[str]:
        names = {name for chain in self.tasks.values() for name in chain}
        if self.route is not None and self.route != DEFAULT_ROUTE:
            names.add(self.route)
        return names


NO_CHOICES: Final = CompanyChoices()

CompanyChoicesSource = Callable[[str], Awaitable[CompanyChoices]]
"""``company_id`` → that company's choices (:data:`NO_CHOICES` when it made none)."""

SettingsLoader = Callable[[str], Awaitable[Mapping[str, Any] | None]]


class CachedCompanyChoices:
    """Reads a company's choices through ``load`` (its raw settings) and remembers them for
    ``ttl_s`` seconds of ``clock`` time, for at most ``max_entries`` companies."""

    def __init__(
        self,
        load: SettingsLoader,
        clock: Clock,
        *,
        ttl_s: float,
        max_entries: int = _MAX_CACHED,
    ) -> None:
        self._load = load
        self._clock = clock
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, CompanyChoices]] = OrderedDict()

    async def __call__(self, company_id: str) -> CompanyChoices:
        now = self._clock.now().timestamp()
        cached = self._entries.get(company_id)
        if cached is not None and now < cached[0]:
            return cached[1]
        choices = CompanyChoices.from_company_settings(await self._load(company_id))
        if self._ttl_s > 0:
            self._entries[company_id] = (now + self._ttl_s, choices)
            self._entries.move_to_end(company_id)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return choices

    def forget(self, company_id: str) -> None:
        """The company's settings changed: the next request reads them again."""
        self._entries.pop(company_id, None)
