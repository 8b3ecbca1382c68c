"""The API serves the built console at /console/ with the headers a cookie-signed page needs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from backend.app import create_app
from backend.config import Settings


@pytest.fixture
async def console_client(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # A stand-in build (the real one is checked in test_console_build.py): what matters here
    # is how the API serves whatever the build wrote.
    dist = tmp_path / "console-dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(
        '<!doctype html><script type="module" src="/console/assets/index-abc12345.js"></script>'
    )
    (dist / "assets" / "index-abc12345.js").write_text("console.log('console');")
    # Static files need none of the stores: the app is not started (no lifespan), which
    # also proves the console loads without them.
    app = create_app(settings.model_copy(update={"console_dir": dist}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_console_page_and_assets_are_served(console_client: httpx.AsyncClient) -> None:
    bare = await console_client.get("/console")
    assert bare.status_code == 308 and bare.headers["location"] == "/console/"

    page = await console_client.get("/console/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    script = re.search(r'src="(/console/assets/[^"]+)"', page.text)
    assert script is not None
    # Never framed, scripts only from here, and the page itself always revalidated.
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["x-content-type-options"] == "nosniff"

    asset = await console_client.get(script.group(1))
    assert asset.status_code == 200
    assert "immutable" in asset.headers["cache-control"]

    missing = await console_client.get("/console/assets/nope.js")
    assert missing.status_code == 404
    # Nothing outside the build folder is reachable through it.
    escaped = await console_client.get("/console/../pyproject.toml")
    assert escaped.status_code == 404


def test_without_a_build_there_is_no_console(settings: Settings, tmp_path: Path) -> None:
    app = create_app(settings.model_copy(update={"console_dir": tmp_path / "absent"}))
    assert not [route for route in app.routes if getattr(route, "path", "") == "/console"]
