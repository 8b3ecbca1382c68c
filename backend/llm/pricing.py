"""What a model call costs: a price table per model, in US dollars per million tokens.

The built-in figures are the providers' published list prices when this table was written;
prices change, so deployments override or extend them with ``HELPDESK_LLM_PRICES`` (JSON
``{"model": {"input": 0.15, "output": 0.6}}``). A model matches its exact name first, then
the longest listed prefix (``gpt-4o-mini-2024-07-18`` is priced as ``gpt-4o-mini``). Models
not listed (self-hosted vLLM, Ollama, llama.cpp; the extractive composer) cost nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from backend.llm.errors import LLMConfigError
from backend.llm.types import Usage


@dataclass(frozen=True, slots=True)
class ModelPrice:
    input_per_mtok: float
    output_per_mtok: float

    def cost(self, usage: Usage) -> float:
        return (
            usage.prompt_tokens * self.input_per_mtok
            + usage.completion_tokens * self.output_per_mtok
        ) / 1_000_000


FREE = ModelPrice(0.0, 0.0)

DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    "gpt-4o-mini": ModelPrice(0.15, 0.60),
    "gpt-4o": ModelPrice(2.50, 10.00),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60),
    "gpt-4.1": ModelPrice(2.00, 8.00),
    "claude-3-haiku": ModelPrice(0.25, 1.25),
    "claude-3-5-haiku": ModelPrice(0.80, 4.00),
    "claude-haiku-4-5": ModelPrice(1.00, 5.00),
    "claude-3-5-sonnet": ModelPrice(3.00, 15.00),
    "claude-3-7-sonnet": ModelPrice(3.00, 15.00),
    "claude-sonnet-4": ModelPrice(3.00, 15.00),
    "claude-opus-4": ModelPrice(15.00, 75.00),
}


class PriceTable:
    def __init__(self, prices: Mapping[str, ModelPrice] | None = None) -> None:
        self._prices = dict(DEFAULT_PRICES if prices is None else prices)

    @classmethod
    def from_json(cls, raw: str | None, *, include_defaults: bool = True) -> PriceTable:
        """Parse ``{"model": {"input": <usd/Mtok>, "output": <usd/Mtok>}}`` over the defaults."""
        prices = dict(DEFAULT_PRICES) if include_defaults else {}
        if raw:
            try:
                data = json.loads(raw)
                for model, entry in data.items():
                    prices[str(model)] = ModelPrice(float(entry["input"]), float(entry["output"]))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise LLMConfigError(f"invalid price table: {exc}") from exc
        return cls(prices)

    def price_of(self, model: str) -> ModelPrice:
        if model in self._prices:
            return self._prices[model]
        prefixes = [name for name in self._prices if model.startswith(name)]
        if prefixes:
            return self._prices[max(prefixes, key=len)]
        return FREE

    def cost(self, model: str, usage: Usage) -> float:
        return self.price_of(model).cost(usage)
