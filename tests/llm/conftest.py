from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.llm.wire import FakeClock, ScriptedServer


@pytest.fixture(scope="session")
def _servers() -> Iterator[tuple[ScriptedServer, ScriptedServer]]:
    servers = (ScriptedServer(), ScriptedServer())
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def server(_servers: tuple[ScriptedServer, ScriptedServer]) -> ScriptedServer:
    """A scripted model server (the primary provider in router tests), emptied per test."""
    _servers[0].reset()
    return _servers[0]


@pytest.fixture
def second_server(_servers: tuple[ScriptedServer, ScriptedServer]) -> ScriptedServer:
    """Another scripted model server, for the next provider in a fallback chain."""
    _servers[1].reset()
    return _servers[1]


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
