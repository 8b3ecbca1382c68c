"""Postgres behind PgBouncer in transaction pooling mode, proven with Debian's ``pgbouncer``.

The test starts its own PgBouncer on a free loopback port in front of the test Postgres
(``pool_mode = transaction``, two server connections for up to fifty clients), points a
:class:`Database` at it as the runtime role with ``pooler="transaction"``
(``HELPDESK_DATABASE_POOLER=transaction``), and runs many concurrent tenant transactions of
several companies that sleep inside the transaction so they interleave on the two shared
server connections. No company ever sees another's rows, and a session opened without a
tenant on a server connection a company just used sees no tenant setting and no rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from backend.db.provisioning import DatabaseUrls
from backend.db.session import Database
from tests.conftest import new_company_id
from tests.fault_servers import free_port

_HOST = "127.0.0.1"
_SERVER_CONNECTIONS = 2  # default_pool_size: server connections per (database, user)
_MAX_CLIENTS = 50
_STATS_USER = "pgbouncer_stats"


@dataclass
class PgBouncer:
    port: int
    root: Path
    process: subprocess.Popen[bytes]

    def url_for(self, role: str, database: str) -> str:
        return f"postgresql+asyncpg://{role}@{_HOST}:{self.port}/{database}"

    def show(self, what: str) -> list[dict[str, str]]:
        """``SHOW <what>`` on the admin console (simple query protocol only, hence psql)."""
        result = subprocess.run(
            [
                "psql",
                "-h",
                _HOST,
                "-p",
                str(self.port),
                "-U",
                _STATS_USER,
                "-d",
                "pgbouncer",
                "-A",
                "-F",
                "\t",
                "-P",
                "footer=off",
                "-c",
                f"SHOW {what}",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        )
        header, *rows = result.stdout.strip().splitlines()
        names = header.split("\t")
        return [dict(zip(names, row.split("\t"), strict=True)) for row in rows]


def _pgbouncer_binary() -> str:
    for candidate in (shutil.which("pgbouncer"), "/usr/sbin/pgbouncer"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("pgbouncer not found: run scripts/install-system-deps.sh")


def _upstream() -> tuple[str, int]:
    dsn = os.environ.get("HELPDESK_TEST_SUPERUSER_DSN", "postgresql://postgres@127.0.0.1:5432/")
    hostport = dsn.split("://", 1)[1].split("@", 1)[1].split("/", 1)[0]
    host, _, port = hostport.partition(":")
    return host, int(port or 5432)


@pytest.fixture
def pgbouncer() -> Iterator[PgBouncer]:
    # A directory the postgres system user can read: PgBouncer refuses to run as root.
    root = Path(tempfile.mkdtemp(prefix="helpdesk-pgbouncer-"))
    port = free_port()
    upstream_host, upstream_port = _upstream()
    (root / "userlist.txt").write_text(f'"helpdesk_app" ""\n"{_STATS_USER}" ""\n')
    (root / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={upstream_host} port={upstream_port}\n"
        "[pgbouncer]\n"
        f"listen_addr = {_HOST}\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {root / 'userlist.txt'}\n"
        f"stats_users = {_STATS_USER}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {_SERVER_CONNECTIONS}\n"
        "min_pool_size = 0\n"
        "reserve_pool_size = 0\n"
        f"max_client_conn = {_MAX_CLIENTS}\n"
        f"max_db_connections = {_SERVER_CONNECTIONS}\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    argv = [_pgbouncer_binary(), str(root / "pgbouncer.ini")]
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        for name in ("userlist.txt", "pgbouncer.ini"):
            shutil.chown(root / name, "postgres")
        argv = ["runuser", "-u", "postgres", "--", *argv]
    log = (root / "pgbouncer.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                pytest.fail(f"pgbouncer exited: {(root / 'pgbouncer.log').read_text()}")
            with contextlib.suppress(OSError), socket.create_connection((_HOST, port), 0.2):
                break
            if time.monotonic() > deadline:
                pytest.fail("pgbouncer did not start listening")
            time.sleep(0.05)
        yield PgBouncer(port, root, process)
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _database_name(urls: DatabaseUrls) -> str:
    return urls.runtime_url.rsplit("/", 1)[1]


async def test_tenant_setting_never_leaks_across_pooled_server_connections(
    pgbouncer: PgBouncer, database: Database, database_urls: DatabaseUrls
) -> None:
    companies = [new_company_id() for _ in range(3)]
    # Seed through the direct pool: a company row and an audit row per company.
    for company in companies:
        async with database.tenant_session(company) as session:
            await session.execute(
                text("INSERT INTO companies (company_id, name) VALUES (:c, 'Pooled Co')"),
                {"c": company},
            )
            await session.execute(
                text("INSERT INTO audit_log (company_id, actor, action) VALUES (:c, 't', 'seed')"),
                {"c": company},
            )

    pooled = Database.from_url(
        pgbouncer.url_for("helpdesk_app", _database_name(database_urls)),
        pool_size=12,  # up to 24 client connections to PgBouncer, which has 2 to Postgres
        pooler="transaction",
    )
    server_pids: set[int] = set()
    observations: list[tuple[str, str | None, set[str], set[str]]] = []
    untenanted: list[tuple[str | None, int, int]] = []

    async def tenant_transaction(company: str, round_number: int) -> None:
        async with pooled.tenant_session(company) as session:
            before = await session.scalar(text("SELECT current_setting('app.company_id', true)"))
            # Sleep inside the transaction: the server connection stays ours, the others queue.
            await asyncio.sleep(0.005 * (round_number % 3))
            companies_seen = set(
                (await session.scalars(text("SELECT company_id FROM companies"))).all()
            )
            audit_seen = set(
                (await session.scalars(text("SELECT DISTINCT company_id FROM audit_log"))).all()
            )
            after = await session.scalar(text("SELECT current_setting('app.company_id', true)"))
            server_pids.add(int(await session.scalar(text("SELECT pg_backend_pid()")) or 0))
            assert before == company
            observations.append((company, after, companies_seen, audit_seen))

    async def untenanted_transaction() -> None:
        # A session opened with no tenant at all, on whichever server connection is free.
        async with pooled.engine.connect() as conn:
            setting = await conn.scalar(text("SELECT current_setting('app.company_id', true)"))
            company_rows = int(await conn.scalar(text("SELECT count(*) FROM companies")) or 0)
            audit_rows = int(await conn.scalar(text("SELECT count(*) FROM audit_log")) or 0)
            await conn.commit()
        untenanted.append((setting, company_rows, audit_rows))

    try:
        rounds = 4
        tasks = [
            tenant_transaction(company, round_number)
            for round_number in range(rounds)
            for company in companies
            for _ in range(2)
        ]
        tasks += [untenanted_transaction() for _ in range(6)]
        await asyncio.gather(*tasks)
        # And a second wave, after every tenant transaction has ended on those connections.
        await asyncio.gather(*(untenanted_transaction() for _ in range(6)))
        client_connections = pooled.engine.pool.checkedin()  # type: ignore[attr-defined]
        pools = pgbouncer.show("POOLS")
        stats = pgbouncer.show("STATS")
    finally:
        await pooled.dispose()

    assert len(observations) == rounds * len(companies) * 2
    for company, after, companies_seen, audit_seen in observations:
        assert after == company
        assert companies_seen == {company}
        assert audit_seen == {company}
    assert len(untenanted) == 12
    for setting, company_rows, audit_rows in untenanted:
        # Unset in this session ('' once any transaction on the connection has set it).
        assert setting in (None, "")
        assert company_rows == 0
        assert audit_rows == 0

    # The pooler really shared server connections: many client connections, many
    # transactions, at most two Postgres backends behind them.
    assert client_connections > _SERVER_CONNECTIONS
    assert 1 <= len(server_pids) <= _SERVER_CONNECTIONS
    database_name = _database_name(database_urls)
    pool = next(p for p in pools if p["database"] == database_name and p["user"] == "helpdesk_app")
    assert pool["pool_mode"] == "transaction"
    servers = sum(int(pool[column]) for column in ("sv_active", "sv_idle", "sv_used"))
    assert 1 <= servers <= _SERVER_CONNECTIONS
    database_stats = next(s for s in stats if s["database"] == database_name)
    assert int(database_stats["total_xact_count"]) >= len(observations) + len(untenanted)
