"""The app of the review-reply tests: every platform, alert endpoint and relay is faked at
the protocol level behind public names (``PlatformFakes``), so the egress policy in force is
production's. Each test module sets its own ``settings``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.app import create_app
from backend.config import Settings
from backend.egress import StaticResolver
from tests.replies.platform_fakes import PUBLIC_ADDRESSES, PlatformFakes


@pytest.fixture
def fakes() -> PlatformFakes:
    return PlatformFakes()


@pytest.fixture
async def app(settings: Settings, fakes: PlatformFakes) -> AsyncIterator[FastAPI]:
    application = create_app(
        settings,
        http_transport=fakes.transport(),
        egress_resolver=StaticResolver(PUBLIC_ADDRESSES),
    )
    async with LifespanManager(application, startup_timeout=120, shutdown_timeout=30):
        yield application
