"""The real app under uvicorn on a free loopback port, inside the test's event loop.

For tests that need real sockets (client disconnects, a browser, CORS preflights) rather
than httpx's in-process ASGI transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI


@asynccontextmanager
async def serve_on_loopback(app: FastAPI) -> AsyncIterator[str]:
    """Start ``app`` (lifespan included) and yield its base URL; stop it on exit."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # startup failed: raise its error
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
