"""The ``helpdesk`` command: serve the API, run migrations, manage companies and API keys."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from backend.config import Settings
from backend.errors import AppError, BadRequest
from backend.evaluation.cli import eval_app
from backend.ingest.reindex import MAX_PAGE_DOCUMENTS, ReindexPage, build_reindexer
from backend.stack import Stack, open_stack
from backend.tenancy import service
from backend.tenancy.company_id import company_id_from_domain, validate_company_id
from backend.tenancy.scope import TenantRows, open_rows
from backend.vectors.edge import EngineInUse
from backend.vectors.server import QdrantServerVectorStore

app = typer.Typer(
    help="Helpdesk Assistant: multi-tenant RAG backend for helpdesk teams.", no_args_is_help=True
)
tenants = typer.Typer(
    help="Create, list, suspend, reactivate and delete companies (tenants).", no_args_is_help=True
)
keys = typer.Typer(
    help="Issue, list, revoke and rotate a company's API keys.", no_args_is_help=True
)
vectors = typer.Typer(help="Maintain the vector index.", no_args_is_help=True)
knowledge = typer.Typer(
    help="Rebuild a company's knowledge from what is already stored.", no_args_is_help=True
)
plans = typer.Typer(
    help="Show and set a company's plan (rate, monthly calls, documents, connectors).",
    no_args_is_help=True,
)
ingest = typer.Typer(
    help="Import files and run backfills in the foreground, with a progress bar.",
    no_args_is_help=True,
)
app.add_typer(tenants, name="tenants")
app.add_typer(keys, name="keys")
app.add_typer(ingest, name="ingest")
app.add_typer(vectors, name="vectors")
app.add_typer(knowledge, name="knowledge")
app.add_typer(plans, name="plans")
app.add_typer(eval_app, name="eval")
users = typer.Typer(help="Invite a company's console users.", no_args_is_help=True)
app.add_typer(users, name="users")

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")
CLI_ACTOR = "cli"


def _run(work: Callable[[Stack], Awaitable[T]]) -> T:
    """Open the stack (embedded or configured), run ``work``, map errors to exit codes."""

    async def main() -> T:
        settings = Settings(log_json=False, log_level="WARNING")
        async with open_stack(settings) as state:
            return await work(state)

    try:
        return asyncio.run(main())
    except AppError as exc:
        err_console.print(f"[red]error[/red] {exc.code}: {exc.detail}")
        raise typer.Exit(code=2) from exc
    except EngineInUse as exc:  # the API (or another command) owns the embedded engine
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(code=2) from exc


def _with_rows(
    company_id: str, work: Callable[[TenantRows, Stack], Awaitable[T]]
) -> Callable[[Stack], Awaitable[T]]:
    """``work`` in one transaction on the company's rows; the id is checked here, where the
    command enters."""

    async def run(state: Stack) -> T:
        async with open_rows(state.database, validate_company_id(company_id)) as rows:
            return await work(rows, state)

    return run


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (needs a database URL).")] = 1,
) -> None:
    """Run the HTTP API (embedded default when nothing is configured)."""
    import uvicorn

    settings = Settings()
    if workers > 1:
        refusal = _multi_process_refusal(settings, f"serve --workers {workers}")
        if refusal:
            err_console.print(f"[red]error[/red] {refusal}")
            raise typer.Exit(code=2)
    uvicorn.run(
        "backend.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def _multi_process_refusal(settings: Settings, what: str) -> str | None:
    """Why ``what`` (several processes on one deployment) cannot run with these settings.

    The embedded stores belong to one process: the embedded vector engine locks its
    directory (a second process would fail every search), and the embedded PostgreSQL runs
    inside the process that started it. We refuse rather than route vector work through the
    owning process: that would be a vector server of our own, and Qdrant's server already
    is one (HELPDESK_QDRANT_URL)."""
    if settings.qdrant_url is None:
        return (
            f"{what} needs a Qdrant server (HELPDESK_QDRANT_URL): the embedded vector "
            "engine has one owner process, which runs the API and its sync jobs itself"
        )
    if settings.database_url is None:
        return f"{what} needs a PostgreSQL server (HELPDESK_DATABASE_URL)"
    return None


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
) -> None:
    """Run the API with a demo company and sample data, and the widget on a sample ticket."""
    import os

    from backend.demo.loader import demo_console_email, prepare_demo

    api_key = _run(prepare_demo)
    settings = Settings()
    base = f"http://{host or settings.host}:{port or settings.port}"
    company_id = settings.demo_company_id
    widget = (
        f"{base}/demo   (Korean: {base}/demo?lang=ko)"
        if settings.widget_dir.is_dir()
        else "not built: run `make widget` (npm) to see the sidebar widget"
    )
    company_console = (
        f"{base}/demo/console   (signs in {demo_console_email(company_id)}; password in "
        f"{settings.resolved_data_dir / 'demo-console-password'})"
        if settings.console_dir.is_dir()
        else "not built: run `make console` (npm) to see the company console"
    )
    console.print(
        f"\n[bold]Helpdesk Assistant demo[/bold] — company [bold]{company_id}[/bold]\n"
        f"  widget demo: {widget}\n"
        f"  console:     {company_console}\n"
        f"  API docs:    {base}/docs\n"
        f"  API key:     {api_key}  (stored in {settings.resolved_data_dir / 'demo-api-key'})\n"
        f"  try:         curl -X POST -H 'Authorization: Bearer {api_key}' "
        f"-H 'X-Company-ID: {company_id}' -H 'Content-Type: application/json' "
        f'-d \'{{"question": "Why does my hub go offline?"}}\' {base}/v1/answer\n',
        soft_wrap=True,
    )
    os.environ["HELPDESK_DEMO_MODE"] = "true"  # read by the app the server builds
    serve(host=host, port=port, workers=1)


@app.command()
def migrate() -> None:
    """Apply database migrations as the owner role (HELPDESK_DATABASE_OWNER_URL)."""
    from backend.db.provisioning import run_migrations

    settings = Settings()
    if settings.database_url is None:
        _run(lambda _state: asyncio.sleep(0))  # the embedded stack migrates as it opens
    elif settings.database_owner_url is None:
        err_console.print("[red]error[/red] set HELPDESK_DATABASE_OWNER_URL to migrate")
        raise typer.Exit(code=2)
    else:
        asyncio.run(
            run_migrations(settings.database_owner_url, app_role=settings.database_app_role)
        )
    console.print("migrations applied")


@tenants.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="Display name, e.g. 'Acme Inc.'")],
    company_id: Annotated[str | None, typer.Option("--id", help="Company id (slug).")] = None,
    domain: Annotated[str | None, typer.Option(help="Helpdesk domain to derive the id.")] = None,
) -> None:
    """Create a company. Give --id, or --domain acme.freshdesk.com to derive `acme`."""
    if company_id is None:
        if domain is None:
            err_console.print("[red]error[/red] give --id or --domain")
            raise typer.Exit(code=2)
        company_id = company_id_from_domain(domain)
    cid = company_id
    company = _run(
        lambda s: service.create_company(
            s.database, company_id=cid, name=name, helpdesk_domain=domain, actor=CLI_ACTOR
        )
    )
    console.print(f"created company [bold]{company.company_id}[/bold] ({company.name})")


@tenants.command("list")
def tenants_list() -> None:
    """List companies."""
    companies = _run(lambda s: service.list_companies(s.database, limit=1000))
    table = Table("company_id", "name", "domain", "status", "knowledge gen.")
    for c in companies:
        table.add_row(
            c.company_id, c.name, c.helpdesk_domain or "", c.status, str(c.knowledge_generation)
        )
    console.print(table)


@tenants.command("suspend")
def tenants_suspend(
    company_id: Annotated[str, typer.Argument(help="Company id.")],
    reason: Annotated[str | None, typer.Option(help="Kept in the audit log.")] = None,
) -> None:
    """Suspend a company: its keys and tokens get 403 company_suspended, its syncs stop."""
    company = _run(
        lambda s: s.lifecycle().set_status(
            validate_company_id(company_id), "suspended", actor=CLI_ACTOR, reason=reason
        )
    )
    console.print(f"suspended [bold]{company.company_id}[/bold]")


@tenants.command("reactivate")
def tenants_reactivate(company_id: Annotated[str, typer.Argument(help="Company id.")]) -> None:
    """Lift a suspension."""
    company = _run(
        lambda s: s.lifecycle().set_status(
            validate_company_id(company_id), "active", actor=CLI_ACTOR
        )
    )
    console.print(f"reactivated [bold]{company.company_id}[/bold]")


@tenants.command("delete")
def tenants_delete(
    company_id: Annotated[str, typer.Argument(help="Company id.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Confirm: delete everything, irreversibly.")
    ] = False,
) -> None:
    """Delete a company from every store (Postgres, vectors, object store, cache). The audit
    log is kept. Needs --yes."""
    if not yes:
        err_console.print(
            f"[red]error[/red] this deletes {company_id} and all its data irreversibly; "
            "repeat with --yes"
        )
        raise typer.Exit(code=2)
    report = _run(lambda s: s.lifecycle().delete(validate_company_id(company_id), actor=CLI_ACTOR))
    console.print(f"deleted [bold]{company_id}[/bold]")
    for table, rows in report.postgres_rows.items():
        console.print(f"  postgres {table}: {rows}")
    console.print(
        f"  vector points: {report.vector_points}  blobs: {report.blobs}  "
        f"cache keys: {report.cache_keys}  cancelled syncs: {report.cancelled_sync_runs}"
    )


@keys.command("create")
def keys_create(
    company_id: Annotated[str, typer.Argument(help="Company id.")],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "default",
) -> None:
    """Issue an API key. The secret is printed once; only its hash is stored."""
    issued = _run(
        _with_rows(
            company_id, lambda rows, _s: service.issue_api_key(rows, name=name, actor=CLI_ACTOR)
        )
    )
    console.print(f"key id:  {issued.key.id}\nprefix:  {issued.key.prefix}")
    console.print("API key (shown once, store it now):")
    typer.echo(issued.plaintext)


@users.command("invite")
def users_invite(
    company_id: Annotated[str, typer.Argument(help="Company id.")],
    email: Annotated[str, typer.Argument(help="The person's e-mail (their sign-in name).")],
    role: Annotated[str, typer.Option(help="owner, admin or agent.")] = "owner",
    name: Annotated[str, typer.Option(help="Their name (they may change it).")] = "",
) -> None:
    """Invite a console user (usually a company's first owner). The invitation token is
    printed once; the person opens the console's accept page with it and sets a password."""
    from backend.console.http import console_auth

    invitation = _run(
        lambda s: console_auth(s).invite(
            company_id, email=email, name=name, role=role, actor=CLI_ACTOR
        )
    )
    console.print(f"user id: {invitation.user.id}\nrole:    {invitation.user.role}")
    console.print("invitation (shown once): /console/#/accept?token=<token below>")
    typer.echo(invitation.token)


@keys.command("list")
def keys_list(
    company_id: Annotated[str, typer.Argument(help="Company id.")],
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
) -> None:
    """List a company's keys (prefix, name, created, last used); never the secrets."""
    found = _run(
        _with_rows(
            company_id, lambda rows, _s: service.list_api_keys(rows, include_revoked=all_keys)
        )
    )
    table = Table("id", "prefix", "name", "created", "last used", "revoked")
    for k in found:
        table.add_row(
            str(k.id),
            k.prefix,
            k.name,
            f"{k.created_at:%Y-%m-%d %H:%M}",
            f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never",
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
        )
    console.print(table)


@keys.command("revoke")
def keys_revoke(company_id: str, key_id: uuid.UUID) -> None:
    """Revoke a key at once."""
    key = _run(
        _with_rows(
            company_id,
            lambda rows, s: service.revoke_api_key(rows, key_id, actor=CLI_ACTOR, clock=s.clock),
        )
    )
    console.print(f"revoked {key.prefix}… ({key.id})")


@keys.command("rotate")
def keys_rotate(
    company_id: str,
    key_id: uuid.UUID,
    grace_seconds: Annotated[int, typer.Option(help="Old key keeps working this long.")] = 0,
) -> None:
    """Issue a replacement key; the old one stops working after the grace period."""
    issued = _run(
        _with_rows(
            company_id,
            lambda rows, s: service.rotate_api_key(
                rows,
                key_id,
                actor=CLI_ACTOR,
                clock=s.clock,
                grace=timedelta(seconds=grace_seconds),
            ),
        )
    )
    console.print(f"new key id: {issued.key.id}\nAPI key (shown once, store it now):")
    typer.echo(issued.plaintext)


CompanyOption = Annotated[str, typer.Option("--company", "-c", help="Company id.")]


def _ingest(
    company_id: str,
    *,
    platform: str,
    label: str,
    settings: dict[str, object],
    total: int | None,
) -> None:
    """Store (or update) a file-import connector and sync it now.

    The import root (``HELPDESK_IMPORT_ROOT``) applies here too: the path is stored in a
    connector that scheduled syncs read again later, so it must be below the root (the
    same check runs at every sync). The connector is named after the path relative to the
    root, never the server's absolute path (tenants see connector names).
    """
    from backend.ingest.file_imports import PATH_SETTING
    from backend.ingest.operator import ensure_connector, run_sync_with_progress

    async def work(state: Stack) -> list[str]:
        files = state.connectors.files
        checked = files.resolve_settings(platform, dict(settings))
        name = f"{label}:{files.display_path(Path(checked[PATH_SETTING[platform]]))}"
        connector_id = await ensure_connector(
            state, company_id, platform=platform, name=name, settings=checked
        )
        summary = await run_sync_with_progress(state, company_id, connector_id, total=total)
        return summary.lines()

    for line in _run(work):
        console.print(line)


@ingest.command("file")
def ingest_file(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, resolve_path=True)],
    company_id: CompanyOption,
    kind: Annotated[str, typer.Option(help="Kind of records without a kind field.")] = "article",
) -> None:
    """Import a JSONL, CSV or JSON export of articles or tickets (id, title, body, …). The
    file must lie below HELPDESK_IMPORT_ROOT (default: HELPDESK_DATA_DIR/imports)."""
    from backend.ingest.operator import count_records

    _ingest(
        company_id,
        platform="file_export",
        label="file",
        settings={"path": str(path), "default_kind": kind},
        total=count_records(path),
    )


@ingest.command("folder")
def ingest_folder(
    root: Annotated[Path, typer.Argument(exists=True, file_okay=False, resolve_path=True)],
    company_id: CompanyOption,
    base_url: Annotated[str | None, typer.Option(help="Where the articles are published.")] = None,
) -> None:
    """Import a folder of Markdown/HTML articles (re-run to pick up changes and deletions).
    The folder must lie below HELPDESK_IMPORT_ROOT; symlinks leaving it are skipped."""
    total = sum(
        1 for p in root.rglob("*") if p.suffix.lower() in {".md", ".markdown", ".html", ".htm"}
    )
    settings: dict[str, object] = {"root": str(root)}
    if base_url:
        settings["base_url"] = base_url
    _ingest(company_id, platform="article_folder", label="folder", settings=settings, total=total)


@ingest.command("reviews")
def ingest_reviews(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, resolve_path=True)],
    company_id: CompanyOption,
    platform: Annotated[str, typer.Option(help="naver, kakao, … (rows without one).")] = "export",
    language: Annotated[str | None, typer.Option(help="Language of the reviews, e.g. ko.")] = None,
    timezone: Annotated[str, typer.Option(help="Zone of timestamps without one.")] = "UTC",
    column_map: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="FIELD=COLUMN for a column the importer does not know, e.g. "
            "--map title=Headline --map reply='Our answer'. Fields: review_id, author, rating, "
            "text, title, date, reply, reply_date, platform, language.",
        ),
    ] = None,
) -> None:
    """Import a review export: Trustpilot's CSV, Google Takeout's reviews.json, Naver or
    Kakao CSV/JSON exports (recognised by their column names), or any CSV/JSON/JSONL with
    --map for the columns it names differently. The file must lie below
    HELPDESK_IMPORT_ROOT."""
    from backend.adapters.reviews.export import parse_column_map
    from backend.ingest.operator import count_records

    settings: dict[str, object] = {"path": str(path), "platform": platform, "timezone": timezone}
    if language:
        settings["language"] = language
    if column_map:
        try:
            settings["columns"] = parse_column_map(column_map)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--map") from exc
    _ingest(
        company_id,
        platform="review_export",
        label="reviews",
        settings=settings,
        total=count_records(path),
    )


@ingest.command("backfill")
def ingest_backfill(
    connector_id: uuid.UUID,
    company_id: CompanyOption,
    from_scratch: Annotated[
        bool, typer.Option(help="Forget the checkpoint and read everything again.")
    ] = False,
) -> None:
    """Run a connector's sync in the foreground (e.g. the first full platform backfill)."""
    from backend.ingest.operator import run_sync_with_progress

    async def work(state: Stack) -> list[str]:
        if from_scratch:
            async with state.for_tenant(validate_company_id(company_id)) as scope:
                await state.connectors.reset_checkpoint(scope, connector_id, actor=CLI_ACTOR)
        summary = await run_sync_with_progress(state, company_id, connector_id)
        return summary.lines()

    for line in _run(work):
        console.print(line)


@vectors.command("optimize")
def vectors_optimize(
    company_id: Annotated[
        str | None, typer.Option("--company", "-c", help="One company (default: all).")
    ] = None,
) -> None:
    """Build the search indexes of the embedded engine after bulk loads (the API should not
    be serving from the same data directory meanwhile: the build blocks its process)."""

    async def work(state: Stack) -> list[str]:
        ids = (
            [company_id]
            if company_id
            else [c.company_id for c in await service.list_companies(state.database, limit=10_000)]
        )
        done = []
        for cid in ids:
            await state.vectors.optimize(cid)
            done.append(cid)
        return done

    for cid in _run(work):
        console.print(f"optimized {cid}")


@vectors.command("adopt-per-company")
def vectors_adopt_per_company(
    company_id: Annotated[
        str | None, typer.Option("--company", "-c", help="One company (default: all).")
    ] = None,
) -> None:
    """Move companies' points from the older collection-per-company layout (hd_COMPANY) into
    the shared collection (HELPDESK_QDRANT_LAYOUT=shared), then drop the old collections.
    Run it once after switching a server deployment to the shared layout; safe to re-run."""

    async def work(state: Stack) -> list[tuple[str, int]]:
        if not isinstance(state.vectors, QdrantServerVectorStore):
            raise BadRequest(
                "adopt-per-company needs a Qdrant server (HELPDESK_QDRANT_URL)",
                code="layout_mismatch",
            )
        ids = (
            [company_id]
            if company_id
            else [c.company_id for c in await service.list_companies(state.database, limit=10_000)]
        )
        return [(cid, await state.vectors.adopt_per_company(cid)) for cid in ids]

    for cid, copied in _run(work):
        console.print(f"{cid}: {copied} points moved to the shared collection")


@vectors.command("promote-tenant")
def vectors_promote_tenant(
    company_id: Annotated[str, typer.Argument(help="The company to give a shard of its own.")],
) -> None:
    """Move a large company from the shared shard of the Qdrant server's shared collection
    to a shard of its own, while it keeps being served: Qdrant copies its points, requests
    switch to the new shard once it is active, then the shared copies are deleted. Needs
    HELPDESK_QDRANT_URL and HELPDESK_QDRANT_LAYOUT=shared. An interrupted promotion resumes
    when run again."""

    async def work(state: Stack) -> list[str]:
        if not isinstance(state.vectors, QdrantServerVectorStore):
            raise BadRequest(
                "promote-tenant needs a Qdrant server (HELPDESK_QDRANT_URL)",
                code="sharding_unavailable",
            )
        promotion = await state.vectors.promote_tenant(company_id)
        return promotion.steps

    for step in _run(work):
        console.print(step)
    console.print(f"{company_id} has its own shard")


@knowledge.command("reindex")
def knowledge_reindex(
    company_id: Annotated[str, typer.Argument(help="Company id.")],
    source: Annotated[
        str | None, typer.Option("--source", "-s", help="Only this source (default: all).")
    ] = None,
    after: Annotated[
        str | None, typer.Option("--after", help="Resume after this cursor (printed as it goes).")
    ] = None,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=MAX_PAGE_DOCUMENTS)] = 200,
) -> None:
    """Chunk and embed a company's documents again from the object store (after a model or
    chunking change), without fetching from the platforms. Prints a cursor after every page:
    pass it to --after to resume a stopped run."""

    async def work(state: Stack) -> ReindexPage:
        checked = validate_company_id(company_id)  # where the command enters
        async with open_rows(state.database, checked) as rows:
            await service.get_company(rows)
        reindexer = build_reindexer(state.database, state.sync.parts)
        total, cursor = ReindexPage(), after
        while True:
            page = await reindexer.reindex_page(
                checked, after=cursor, source=source, limit=page_size, actor=CLI_ACTOR
            )
            total.documents += page.documents
            total.reindexed += page.reindexed
            total.chunks += page.chunks
            total.needs_refetch += page.needs_refetch
            cursor = page.next_cursor
            console.print(
                f"{total.documents} documents, {total.reindexed} re-indexed, "
                f"{total.chunks} chunks; cursor {cursor or '-'}",
                soft_wrap=True,  # the cursor must stay on one line to be copied
            )
            if cursor is None:
                return total

    total = _run(work)
    if total.needs_refetch:
        console.print(
            f"{len(total.needs_refetch)} documents were stored before re-indexing was "
            "possible; sync their connectors again to restore them, e.g. "
            + ", ".join(total.needs_refetch[:5])
        )


@app.command()
def worker(
    processes: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run sync jobs from the Redis queue (HELPDESK_REDIS_URL), and the sync scheduler."""
    from taskiq.cli.worker.args import WorkerArgs
    from taskiq.cli.worker.run import run_worker

    refusal = _multi_process_refusal(Settings(), "a separate `helpdesk worker`")
    if refusal:
        err_console.print(f"[red]error[/red] {refusal}")
        raise typer.Exit(code=2)
    if Settings().in_process_jobs:
        err_console.print(
            "[red]error[/red] the worker needs HELPDESK_REDIS_URL or "
            "HELPDESK_REDIS_CLUSTER_NODES; without them the API runs jobs itself"
        )
        raise typer.Exit(code=2)
    raise typer.Exit(
        code=run_worker(
            WorkerArgs(
                broker="backend.ingest.worker:broker",
                modules=[],
                workers=processes,
                configure_logging=False,
            )
        )
        or 0
    )


def _plan_value(raw: str | None) -> int | None:
    if raw is None or raw.strip().lower() == "unlimited":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise typer.BadParameter(f"{raw!r}: give a number or 'unlimited'") from exc


def _print_plan(company_id: str, stored: dict[str, object], effective: dict[str, object]) -> None:
    table = Table("limit", "set for the company", "effective", title=f"plan of {company_id}")
    for name, value in effective.items():
        shown = "unlimited" if value is None else str(value)
        table.add_row(name, str(stored[name]) if name in stored else "(default)", shown)
    console.print(table)


@plans.command("show")
def plans_show(company_id: str) -> None:
    """A company's plan: the limits set for it and the effective ones."""

    async def work(state: Stack) -> tuple[dict[str, object], dict[str, object]]:
        async with open_rows(state.database, validate_company_id(company_id)) as rows:
            stored = await state.plans.stored_plan(rows)
        return stored, state.plans.effective(stored).model_dump()

    stored, effective = _run(work)
    _print_plan(company_id, stored, effective)


@plans.command("set")
def plans_set(
    company_id: str,
    requests_per_minute: Annotated[
        str | None, typer.Option(help="Number or 'unlimited'; omitted: the default.")
    ] = None,
    assistant_calls_per_month: Annotated[str | None, typer.Option()] = None,
    documents: Annotated[str | None, typer.Option()] = None,
    connectors: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Replace a company's plan. Limits not given use the service defaults (audited)."""
    from backend.tenancy.plans import PlanLimits

    given = {
        "requests_per_minute": requests_per_minute,
        "assistant_calls_per_month": assistant_calls_per_month,
        "documents": documents,
        "connectors": connectors,
    }
    stored = {name: _plan_value(raw) for name, raw in given.items() if raw is not None}
    try:
        PlanLimits.model_validate(stored)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc

    async def work(state: Stack) -> dict[str, object]:
        async with open_rows(state.database, validate_company_id(company_id)) as rows:
            effective = await state.plans.set_plan(rows, stored, actor=CLI_ACTOR)
        return effective.model_dump()

    _print_plan(company_id, dict(stored), _run(work))


if __name__ == "__main__":
    app()
