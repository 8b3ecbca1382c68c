"""Private PostgreSQL and Redis servers that a fault test may stop and start at will.

The shared servers (Postgres on 5432, Redis on 6379) serve every engineer and every test;
a test that injects an outage starts its own instance on a free loopback port instead:
``initdb`` + ``pg_ctl`` from the PostgreSQL binaries on this machine (run as the
``postgres`` system user when the test runs as root, since the server refuses root), and
``redis-server --save ''``. Both are torn down, files removed, at the end.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.db.provisioning import DatabaseUrls, provision_database, run_migrations

_HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: the fault tests need the PostgreSQL server binaries")
    return path


def _as_server_user(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; run its tools as the postgres system user then.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of our own on ``port``; :meth:`stop` and :meth:`start` inject
    an outage and end it."""

    root: Path
    port: int

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def superuser_dsn(self) -> str:
        return f"postgresql://postgres@{_HOST}:{self.port}/postgres"

    def url_for(self, role: str, database: str) -> str:
        return f"postgresql+asyncpg://{role}@{_HOST}:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 60.0) -> None:
        subprocess.run(
            _as_server_user(list(argv)), check=True, capture_output=True, timeout=timeout
        )

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run(
            _postgres_bin("initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses={_HOST} -p {self.port} -k {self.root} -c fsync=off "
            "-c max_connections=50"
        )
        self._run(
            _postgres_bin("pg_ctl"),
            "-D",
            str(self.pgdata),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: connections are cut, as in a failover)."""
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        result = subprocess.run(
            _as_server_user([_postgres_bin("pg_ctl"), "-D", str(self.pgdata), "status"]),
            capture_output=True,
        )
        return result.returncode == 0

    async def provision(self, database: str = "helpdesk") -> DatabaseUrls:
        await provision_database(self.superuser_dsn, database=database)
        urls = DatabaseUrls(
            runtime_url=self.url_for("helpdesk_app", database),
            owner_url=self.url_for("helpdesk_owner", database),
        )
        await run_migrations(urls.owner_url)
        return urls


@pytest.fixture
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    """A migrated PostgreSQL server of this test's own, stopped and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="helpdesk-pg-"))
    server = PrivatePostgres(root, free_port())
    server.init()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            if server.running():
                server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class PrivateRedis:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{_HOST}:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                _HOST,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((_HOST, self.port), 0.2):
                return
            time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A Redis server of this test's own (no persistence), killed afterwards."""
    server = PrivateRedis(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
