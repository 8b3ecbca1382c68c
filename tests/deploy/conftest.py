"""Fixtures for the deployment files: a real nginx run from ``nginx.conf`` and the real API.

``nginx.conf`` is written for the compose stack. Its header names four deployment-specific
literals (upstream, listen socket, widget root, runtime directory); ``render_nginx_conf``
replaces exactly those and nothing else, so the file under test is the file that ships.

nginx runs in the foreground from a private prefix directory (pid file, temp files and the
rendered config inside it), which works both as root and as an ordinary user. The directory
is world-readable because a root master hands requests to unprivileged workers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from backend.db.provisioning import DatabaseUrls

REPO_ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO_ROOT / "nginx.conf"

# The deployment-specific literals documented at the top of nginx.conf.
UPSTREAM_LITERAL = "server api:8000;"
LISTEN_LITERAL = "listen 80;"
WIDGET_ROOT_LITERAL = "/usr/share/nginx/widget"
RUNTIME_DIR_LITERAL = "/var/cache/nginx"

_START_TIMEOUT_S = 15.0
_API_START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_nginx_conf(*, upstream: str, listen: str, widget_root: Path, runtime_dir: Path) -> str:
    """``nginx.conf`` with the four deployment literals replaced (see its header)."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    replacements = {
        UPSTREAM_LITERAL: f"server {upstream};",
        LISTEN_LITERAL: f"listen {listen};",
        WIDGET_ROOT_LITERAL: str(widget_root),
        RUNTIME_DIR_LITERAL: str(runtime_dir),
    }
    for literal, value in replacements.items():
        # A renamed literal would silently leave the compose value in place; fail instead.
        assert literal in text, f"nginx.conf no longer contains {literal!r}; update its header"
        text = text.replace(literal, value)
    return text


def nginx_binary() -> str:
    # Debian installs nginx in /usr/sbin, which is not on an ordinary user's PATH.
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail("nginx is not installed; run scripts/install-system-deps.sh")
    return found


@dataclass(frozen=True)
class NginxPrefix:
    """A private nginx prefix: rendered config, runtime files and a widget folder."""

    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def widget_root(self) -> Path:
        return self.root / "widget"

    @property
    def log(self) -> Path:
        return self.root / "nginx.log"


@contextlib.contextmanager
def nginx_prefix() -> Iterator[NginxPrefix]:
    root = Path(tempfile.mkdtemp(prefix="helpdesk-nginx-"))
    try:
        root.chmod(0o755)  # nginx workers drop to an unprivileged user when started as root
        prefix = NginxPrefix(root)
        prefix.widget_root.mkdir(mode=0o755)
        yield prefix
    finally:
        shutil.rmtree(root, ignore_errors=True)


def write_nginx_conf(prefix: NginxPrefix, *, upstream: str, port: int) -> Path:
    prefix.conf.write_text(
        render_nginx_conf(
            upstream=upstream,
            listen=f"127.0.0.1:{port}",
            widget_root=prefix.widget_root,
            runtime_dir=prefix.root,
        ),
        encoding="utf-8",
    )
    return prefix.conf


@dataclass(frozen=True)
class RunningNginx:
    base_url: str
    prefix: NginxPrefix

    def log_text(self) -> str:
        return self.prefix.log.read_text(encoding="utf-8", errors="replace")


def _stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


@contextlib.contextmanager
def running_nginx(upstream: str) -> Iterator[RunningNginx]:
    """nginx in the foreground on a free loopback port, proxying to ``upstream``."""
    binary = nginx_binary()
    with nginx_prefix() as prefix:
        port = free_port()
        conf = write_nginx_conf(prefix, upstream=upstream, port=port)
        with prefix.log.open("wb") as log:
            process = subprocess.Popen(
                # -e: errors logged before the config is read go to stderr, not to the
                # compiled-in /var/log path a non-root user cannot open.
                [
                    binary,
                    "-c",
                    str(conf),
                    "-p",
                    f"{prefix.root}/",
                    "-e",
                    "stderr",
                    "-g",
                    "daemon off;",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        nginx = RunningNginx(base_url=f"http://127.0.0.1:{port}", prefix=prefix)
        try:
            _wait_until_serving(
                process, f"{nginx.base_url}/nginx-health", nginx.log_text, timeout=_START_TIMEOUT_S
            )
            yield nginx
        finally:
            _stop(process)


def _wait_until_serving(
    process: subprocess.Popen[bytes], url: str, read_log: Callable[[], str], *, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} server exited with {process.returncode}:\n{read_log()}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {timeout}s:\n{read_log()}")


@dataclass(frozen=True)
class RunningApi:
    base_url: str
    upstream: str  # host:port, as nginx's upstream block wants it
    log: Path


@pytest.fixture(scope="module")
def api_server(
    database_urls: DatabaseUrls, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApi]:
    """The real API (``backend.app:create_app``) under uvicorn in a subprocess, on the test
    session's migrated database, exactly as it would run behind nginx."""
    work_dir = tmp_path_factory.mktemp("api")
    port = free_port()
    # Only what we set here configures it: no HELPDESK_* leaks in from the shell, and the
    # working directory holds no .env.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env.update(
        HELPDESK_DATABASE_URL=database_urls.runtime_url,
        HELPDESK_DATABASE_OWNER_URL=database_urls.owner_url,
        HELPDESK_DATA_DIR=str(work_dir / "data"),
        HELPDESK_LOG_JSON="true",
        HELPDESK_ENVIRONMENT="test",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
    )
    log = work_dir / "api.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "backend.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=work_dir,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(
            process,
            f"{base_url}/healthz",
            lambda: log.read_text(encoding="utf-8", errors="replace"),
            timeout=_API_START_TIMEOUT_S,
        )
        yield RunningApi(base_url=base_url, upstream=f"127.0.0.1:{port}", log=log)
    finally:
        _stop(process, timeout=20.0)
