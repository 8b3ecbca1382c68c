"""docker-compose.yml and the Redis Cluster override: valid for `docker-compose config`, wired
as documented, and free of hard-coded secrets.

There is no Docker engine here, so the files are validated and their rendered model inspected,
not run. Every secret is passed in the environment with a random value, the way `.env` would
supply it; `--env-file` points at an empty file so a developer's own `.env` cannot leak in.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import (
    REPO_ROOT,
    UPSTREAM_LITERAL,
    WIDGET_ROOT_LITERAL,
)

MAIN_FILE = REPO_ROOT / "docker-compose.yml"
CLUSTER_FILE = REPO_ROOT / "docker-compose.redis-cluster.yml"

# What `.env` must define: compose refuses to render without each of them.
REQUIRED_SECRETS = (
    "POSTGRES_PASSWORD",
    "HELPDESK_DATABASE_APP_PASSWORD",
    "HELPDESK_DATABASE_OWNER_PASSWORD",
    "HELPDESK_QDRANT_API_KEY",
    "HELPDESK_S3_ACCESS_KEY_ID",
    "HELPDESK_S3_SECRET_ACCESS_KEY",
    "HELPDESK_ADMIN_TOKEN",
    "HELPDESK_ENCRYPTION_KEY",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
)
SERVICE_SETTINGS = (
    "HELPDESK_DATABASE_URL",
    "HELPDESK_REDIS_URL",
    "HELPDESK_QDRANT_URL",
    "HELPDESK_S3_ENDPOINT_URL",
    "HELPDESK_S3_BUCKET",
    "HELPDESK_S3_ACCESS_KEY_ID",
    "HELPDESK_S3_SECRET_ACCESS_KEY",
    "HELPDESK_ADMIN_TOKEN",
    "HELPDESK_ENCRYPTION_KEY",
)
ONE_SHOT_JOBS = {"minio-init", "redis-cluster-init"}


@pytest.fixture(scope="module")
def compose_binary() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose is not installed; run scripts/install-system-deps.sh")
    return found


@pytest.fixture(scope="module")
def secret_values() -> dict[str, str]:
    # URL-safe, as the compose file asks, since passwords end up inside connection URLs.
    return {name: secrets.token_hex(12) for name in REQUIRED_SECRETS}


@pytest.fixture(scope="module")
def empty_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


def _compose(
    compose_binary: str, env_file: Path, env: dict[str, str], *files: Path, args: list[str]
) -> subprocess.CompletedProcess[str]:
    command = [compose_binary, "--env-file", str(env_file)]
    for file in files:
        command += ["-f", str(file)]
    return subprocess.run(
        [*command, *args],
        cwd=REPO_ROOT,
        # Only PATH from the outside: the interpolation must not depend on the shell.
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(env_file.parent), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _rendered(
    compose_binary: str, env_file: Path, env: dict[str, str], *files: Path
) -> dict[str, Any]:
    result = _compose(compose_binary, env_file, env, *files, args=["config"])
    assert result.returncode == 0, result.stderr
    model = yaml.safe_load(result.stdout)
    assert isinstance(model, dict)
    return model


def test_main_file_is_valid(
    compose_binary: str, empty_env_file: Path, secret_values: dict[str, str]
) -> None:
    result = _compose(
        compose_binary, empty_env_file, secret_values, MAIN_FILE, args=["config", "-q"]
    )
    assert result.returncode == 0, result.stderr


def test_cluster_override_is_valid(
    compose_binary: str, empty_env_file: Path, secret_values: dict[str, str]
) -> None:
    result = _compose(
        compose_binary,
        empty_env_file,
        secret_values,
        MAIN_FILE,
        CLUSTER_FILE,
        args=["config", "-q"],
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", REQUIRED_SECRETS)
def test_every_secret_is_required(
    compose_binary: str, empty_env_file: Path, secret_values: dict[str, str], missing: str
) -> None:
    env = {k: v for k, v in secret_values.items() if k != missing}
    result = _compose(compose_binary, empty_env_file, env, MAIN_FILE, args=["config", "-q"])
    assert result.returncode != 0
    assert missing in result.stderr
    assert "set it in .env" in result.stderr


def test_no_secret_is_written_into_the_compose_files() -> None:
    secret_name = re.compile(r"(PASSWORD|SECRET|TOKEN|API_KEY|ENCRYPTION_KEY|ACCESS_KEY)")
    for file in (MAIN_FILE, CLUSTER_FILE):
        model = yaml.safe_load(file.read_text())
        for name, service in model["services"].items():
            environment = service.get("environment") or {}
            assert isinstance(environment, dict), f"{name}: use the mapping form"
            for key, raw in environment.items():
                value = str(raw)
                if secret_name.search(key) or ("://" in value and "@" in value):
                    # Either the whole value or the password inside a URL is interpolated.
                    assert "${" in value, f"{file.name}: {name}.{key} is hard-coded"
                    assert ":?" in value, f"{file.name}: {name}.{key} must be required"


def test_stack_is_wired_as_documented(
    compose_binary: str, empty_env_file: Path, secret_values: dict[str, str]
) -> None:
    services = _rendered(compose_binary, empty_env_file, secret_values, MAIN_FILE)["services"]
    assert set(services) == {
        "api",
        "worker",
        "postgres",
        "redis",
        "qdrant",
        "minio",
        "minio-init",
        "nginx",
    }
    for name, service in services.items():
        if name not in ONE_SHOT_JOBS | {"worker"}:
            probe = service.get("healthcheck", {}).get("test", ["NONE"])
            assert probe != ["NONE"], f"{name} has no healthcheck"
        for dependency, rule in service.get("depends_on", {}).items():
            expected = (
                "service_completed_successfully"
                if dependency in ONE_SHOT_JOBS
                else "service_healthy"
            )
            assert rule["condition"] == expected, (name, dependency)

    api, worker = services["api"], services["worker"]
    # The worker shares the api image but serves no HTTP: the image's HTTP probe is off.
    assert worker["healthcheck"]["test"] == ["NONE"]
    assert set(api["depends_on"]) == {"postgres", "redis", "qdrant", "minio-init"}
    assert set(worker["depends_on"]) == {"api"}
    assert api["command"][-1].startswith("helpdesk migrate && exec helpdesk serve")
    assert worker["command"] == ["helpdesk", "worker"]
    for service in (api, worker):
        assert set(SERVICE_SETTINGS) <= set(service["environment"])

    # The runtime role serves; only the api (which migrates) knows the owner connection.
    runtime = api["environment"]["HELPDESK_DATABASE_URL"]
    owner = api["environment"]["HELPDESK_DATABASE_OWNER_URL"]
    app_password = secret_values["HELPDESK_DATABASE_APP_PASSWORD"]
    owner_password = secret_values["HELPDESK_DATABASE_OWNER_PASSWORD"]
    assert runtime == f"postgresql+asyncpg://helpdesk_app:{app_password}@postgres:5432/helpdesk"
    assert owner == f"postgresql+asyncpg://helpdesk_owner:{owner_password}@postgres:5432/helpdesk"
    assert "HELPDESK_DATABASE_OWNER_URL" not in worker["environment"]
    assert api["environment"]["HELPDESK_ADMIN_TOKEN"] == secret_values["HELPDESK_ADMIN_TOKEN"]

    # Postgres creates those roles from the init script, with the same passwords.
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:17")
    init_mount = next(v for v in postgres["volumes"] if "docker-entrypoint-initdb.d" in v)
    init_dir = REPO_ROOT / "deploy" / "postgres" / "initdb"
    assert init_mount.startswith(f"{init_dir}:/docker-entrypoint-initdb.d")
    assert postgres["environment"]["HELPDESK_DATABASE_APP_PASSWORD"] == app_password
    assert postgres["environment"]["HELPDESK_DATABASE_OWNER_PASSWORD"] == owner_password

    # nginx mounts the conf and the built widget where nginx.conf expects them, and proxies
    # to the port the api listens on.
    nginx = services["nginx"]
    assert f"{REPO_ROOT / 'nginx.conf'}:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert f"{REPO_ROOT / 'frontend-widget' / 'dist'}:{WIDGET_ROOT_LITERAL}:ro" in nginx["volumes"]
    upstream_port = UPSTREAM_LITERAL.removesuffix(";").rsplit(":", 1)[1]
    assert f"--port {upstream_port}" in api["command"][-1]
    # Only nginx is reachable from outside.
    assert [name for name, s in services.items() if s.get("ports")] == ["nginx"]

    # The object-store job creates the bucket the api is told to use.
    minio_init = services["minio-init"]
    assert minio_init["environment"]["BUCKET"] == api["environment"]["HELPDESK_S3_BUCKET"]
    assert "mc mb --ignore-existing" in " ".join(minio_init["entrypoint"])


def test_cluster_override_adds_a_six_node_cluster_for_the_cache(
    compose_binary: str, empty_env_file: Path, secret_values: dict[str, str]
) -> None:
    services = _rendered(compose_binary, empty_env_file, secret_values, MAIN_FILE, CLUSTER_FILE)[
        "services"
    ]
    nodes = sorted(name for name in services if name.startswith("redis-node-"))
    assert len(nodes) == 6
    for name in nodes:
        node = services[name]
        assert node["image"].startswith("redis:7")
        assert "--cluster-enabled yes" in " ".join(node["command"])
        assert "healthcheck" in node

    init = services["redis-cluster-init"]
    script = " ".join(init["entrypoint"])
    assert "redis-cli --cluster create" in script
    assert "--cluster-replicas 1" in script
    assert "--cluster-yes" in script
    assert set(init["depends_on"]) == set(nodes)

    for name in ("api", "worker"):
        service = services[name]
        seeds = service["environment"]["HELPDESK_REDIS_CLUSTER_NODES"].split(",")
        assert sorted(seeds) == [f"{node}:6379" for node in nodes]
        assert service["depends_on"]["redis-cluster-init"] == {
            "condition": "service_completed_successfully"
        }
        # The main file's dependencies survive the merge.
        assert "redis" in service["depends_on"] or name == "worker"
