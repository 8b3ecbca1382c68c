"""Language models behind one router: routing, fallbacks, budgets, and the providers.

Only ``backend.llm.providers`` speaks to model APIs. Callers build an :class:`LLMRequest`
and call :meth:`LLMRouter.complete` or :meth:`LLMRouter.stream`; the result always says
which provider and model produced it.
"""

from backend.llm.breaker import BreakerPolicy
from backend.llm.budget import (
    BudgetLedger,
    BudgetPolicy,
    BudgetStatus,
    CompanyBudget,
    InMemoryBudgetLedger,
)
from backend.llm.builder import build_router_from_settings
from backend.llm.clock import Clock, SystemClock
from backend.llm.errors import LLMConfigError, ProviderError
from backend.llm.pricing import ModelPrice, PriceTable
from backend.llm.router import LLMRouter, RetryPolicy, RouteConfig, TaskRoute
from backend.llm.types import (
    ChatMessage,
    Completed,
    LLMRequest,
    LLMResult,
    Passage,
    StreamEvent,
    StreamFailed,
    Task,
    TextDelta,
    Usage,
)

__all__ = [
    "BreakerPolicy",
    "BudgetLedger",
    "BudgetPolicy",
    "BudgetStatus",
    "ChatMessage",
    "Clock",
    "CompanyBudget",
    "Completed",
    "InMemoryBudgetLedger",
    "LLMConfigError",
    "LLMRequest",
    "LLMResult",
    "LLMRouter",
    "ModelPrice",
    "Passage",
    "PriceTable",
    "ProviderError",
    "RetryPolicy",
    "RouteConfig",
    "StreamEvent",
    "StreamFailed",
    "SystemClock",
    "Task",
    "TaskRoute",
    "TextDelta",
    "Usage",
    "build_router_from_settings",
]
