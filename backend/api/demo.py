"""The demo pages (only with HELPDESK_DEMO_MODE): the widget on a sample ticket, and the
company console signed in as the demo company's admin.

`/demo` mints a fresh short-lived widget token for the demo company on the server, with the
demo company's API key, and redirects to the widget's demo page with it — so the browser
never sees an API key, exactly as a helpdesk integration would do it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from backend.api.console import set_session_cookie
from backend.api.dependencies import ClockDep, StateDep
from backend.console.http import console_auth
from backend.demo import SAMPLE_OPEN_TICKET_ID, SAMPLE_OPEN_TICKET_ID_KO, TICKET_SOURCE
from backend.demo.loader import demo_console_email, demo_console_password_file
from backend.errors import NotFound
from backend.tenancy import service
from backend.tenancy.scope import open_rows

router = APIRouter(tags=["operations"], include_in_schema=False)


@router.get("/demo")
async def demo_page(
    request: Request,
    state: StateDep,
    clock: ClockDep,
    lang: Annotated[Literal["en", "ko"], Query()] = "en",
) -> RedirectResponse:
    company_id = state.settings.demo_company_id
    async with open_rows(state.database, company_id) as rows:
        keys = [k for k in await service.list_api_keys(rows) if k.name == "demo"]
    if not keys:
        raise NotFound(
            "the demo company has no demo key; run `helpdesk demo`", code="demo_not_prepared"
        )
    tenant = service.Tenant(company_id=company_id, api_key_id=keys[0].id, key_prefix=keys[0].prefix)
    ticket_id = SAMPLE_OPEN_TICKET_ID_KO if lang == "ko" else SAMPLE_OPEN_TICKET_ID
    token, _ = service.mint_widget_token(
        tenant,
        signer=state.widget_signer,
        clock=clock,
        ttl=timedelta(hours=1),
        ticket_id=ticket_id,
    )
    base = str(request.base_url).rstrip("/")
    query = urlencode(
        {
            "api": base,
            "company": company_id,
            "token": token,
            "ticket-id": ticket_id,
            "ticket-source": TICKET_SOURCE,
            "lang": lang,
        }
    )
    return RedirectResponse(f"/widget/demo.html?{query}", status_code=307)


@router.get("/demo/console")
async def demo_console(request: Request, state: StateDep) -> RedirectResponse:
    """Sign the demo admin in (with the password `helpdesk demo` stored) and open the
    console: the same session cookie a sign-in sets, so the console runs as for anyone.
    A link that signs in is for the demo only (this router exists in demo mode alone): the
    demo company holds sample data, and its server runs on the operator's own machine."""
    password_file = demo_console_password_file(state)
    if not password_file.exists():
        raise NotFound(
            "the demo company has no console user; run `helpdesk demo`", code="demo_not_prepared"
        )
    signed_in = await console_auth(state).sign_in(
        demo_console_email(state.settings.demo_company_id),
        password_file.read_text().strip(),
        client_ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
    response = RedirectResponse("/console/", status_code=303)
    set_session_cookie(
        response, signed_in.token, state.settings, secure=request.url.scheme == "https"
    )
    response.headers["Cache-Control"] = "no-store"
    return response
