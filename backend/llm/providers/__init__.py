"""The only code that speaks to model APIs."""

from backend.llm.providers.anthropic import AnthropicProvider
from backend.llm.providers.base import LLMProvider
from backend.llm.providers.extractive import ExtractiveComposer
from backend.llm.providers.openai_compatible import OpenAICompatibleProvider

__all__ = ["AnthropicProvider", "ExtractiveComposer", "LLMProvider", "OpenAICompatibleProvider"]
