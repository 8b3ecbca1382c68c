"""A real six-node Redis Cluster (three primaries, three replicas) on loopback, for tests;
and ``cache_backend``, each of the cache's backends in turn (in-process, Redis, Cluster).

Import the fixtures where they are needed (``from tests.cluster_fixtures import
redis_cluster``) or re-export them from ``conftest.py``. The cluster is started once per
session with ``redis-server --cluster-enabled yes`` on free ports, joined with
``redis-cli --cluster create``, and torn down (processes stopped, files removed) at the end.
"""

from __future__ import annotations

import contextlib
import functools
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.cache import CacheBackend, MemoryCacheBackend, RedisCacheBackend

_HOST = "127.0.0.1"
_NODE_COUNT = 6
# Redis Cluster nodes also listen on port + 10000 for the cluster bus.
_BUS_OFFSET = 10000
_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RedisClusterInfo:
    """Where the test cluster listens."""

    ports: tuple[int, ...]
    host: str = _HOST

    @property
    def seeds(self) -> list[tuple[str, int]]:
        return [(self.host, port) for port in self.ports]

    @property
    def nodes_setting(self) -> str:
        """The value ``HELPDESK_REDIS_CLUSTER_NODES`` would hold: ``host:port,...``."""
        return ",".join(f"{self.host}:{port}" for port in self.ports)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
        return True


def _free_ports(count: int) -> list[int]:
    """Ports that are free and whose cluster-bus port (port + 10000) is free too.

    Drawn below the usual ephemeral range (32768+) so the kernel is unlikely to hand them
    to an outgoing connection between this check and the servers binding them.
    """
    rng = random.Random()
    ports: list[int] = []
    while len(ports) < count:
        port = rng.randrange(17000, 22000)
        if port in ports or not (_port_is_free(port) and _port_is_free(port + _BUS_OFFSET)):
            continue
        ports.append(port)
    return ports


def _cli(port: int, *args: str, timeout: float = 10.0) -> str:
    result = subprocess.run(
        ["redis-cli", "-h", _HOST, "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result.stdout


def _wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(subprocess.TimeoutExpired):
            if predicate():
                return
        time.sleep(0.1)
    raise RuntimeError(f"Redis Cluster test fixture: timed out waiting for {what}")


def _answers_ping(port: int) -> bool:
    return _cli(port, "PING").strip() == "PONG"


def _cluster_ok(ports: list[int]) -> bool:
    for port in ports:
        info = _cli(port, "CLUSTER", "INFO")
        if "cluster_state:ok" not in info or "cluster_slots_assigned:16384" not in info:
            return False
        if f"cluster_known_nodes:{len(ports)}" not in info:
            return False
    return True


@contextlib.contextmanager
def run_redis_cluster(node_count: int = _NODE_COUNT) -> Iterator[RedisClusterInfo]:
    """Start a cluster (one replica per primary), yield where it listens, then stop it."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise RuntimeError("redis-server and redis-cli must be installed for cluster tests")
    workdir = Path(tempfile.mkdtemp(prefix="hd-redis-cluster-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        ports = _free_ports(node_count)
        for port in ports:
            node_dir = workdir / str(port)
            node_dir.mkdir()
            options = {
                "port": str(port),
                "bind": _HOST,
                "cluster-enabled": "yes",
                "cluster-config-file": str(node_dir / "nodes.conf"),
                "cluster-node-timeout": "5000",
                "dir": str(node_dir),
                "save": "",
                "appendonly": "no",
                "daemonize": "no",
            }
            argv = ["redis-server"]
            for name, value in options.items():
                argv += [f"--{name}", value]
            processes.append(
                subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        for port in ports:
            _wait_until(functools.partial(_answers_ping, port), f"node {port} to start")
        addresses = [f"{_HOST}:{port}" for port in ports]
        create_argv = ["redis-cli", "--cluster", "create", *addresses]
        create_argv += ["--cluster-replicas", "1", "--cluster-yes"]
        create = subprocess.run(
            create_argv,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if create.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {create.stdout}{create.stderr}")
        _wait_until(lambda: _cluster_ok(ports), "cluster_state:ok on every node")
        yield RedisClusterInfo(ports=tuple(ports))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterInfo]:
    """A running six-node Redis Cluster for the whole test session."""
    with run_redis_cluster() as cluster:
        yield cluster


# A database of its own on the shared server, so FLUSH-free cleanup by tenant purge suffices.
CACHE_TEST_REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture(params=["memory", "redis", "cluster"])
async def cache_backend(request: pytest.FixtureRequest) -> AsyncIterator[CacheBackend]:
    """Each cache backend in turn: the in-process LRU, the local Redis, the local Cluster."""
    made: CacheBackend
    if request.param == "memory":
        made = MemoryCacheBackend()
    elif request.param == "redis":
        made = RedisCacheBackend.from_url(CACHE_TEST_REDIS_URL)
    else:
        cluster: RedisClusterInfo = request.getfixturevalue("redis_cluster")
        made = RedisCacheBackend.from_cluster_nodes(cluster.nodes_setting)
    assert await made.ping()
    yield made
    await made.close()
