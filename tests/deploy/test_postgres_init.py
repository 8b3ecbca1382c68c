"""deploy/postgres/initdb/10-roles.sh against the real Postgres on loopback: it creates the
database, an owner role and a runtime role that owns nothing, is no superuser and cannot
bypass row-level security; a second run changes nothing and repairs loosened attributes.

Role and database names are random per test (the script takes them from the environment, as
compose passes them), so the cluster-wide roles the rest of the suite uses are untouched.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import SUPERUSER_DSN
from tests.deploy.conftest import REPO_ROOT

INIT_SCRIPT = REPO_ROOT / "deploy" / "postgres" / "initdb" / "10-roles.sh"


@dataclass(frozen=True)
class InitTarget:
    database: str
    owner_role: str
    app_role: str
    env: dict[str, str]


def _libpq_env() -> dict[str, str]:
    url = make_url(SUPERUSER_DSN)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "HELPDESK_"))}
    env.update(
        PGHOST=url.host or "127.0.0.1",
        PGPORT=str(url.port or 5432),
        POSTGRES_USER=url.username or "postgres",
        POSTGRES_DB=url.database or "postgres",
    )
    if url.password:
        env["PGPASSWORD"] = url.password
    return env


def _psql(
    env: dict[str, str], sql: str, *, user: str | None = None, database: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "psql",
            "--no-psqlrc",
            "-tA",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            user or env["POSTGRES_USER"],
            "-d",
            database or env["POSTGRES_DB"],
            "-c",
            sql,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def init_target() -> Iterator[InitTarget]:
    suffix = secrets.token_hex(4)
    target = InitTarget(
        database=f"hd_init_{suffix}",
        owner_role=f"hd_init_owner_{suffix}",
        app_role=f"hd_init_app_{suffix}",
        env={},
    )
    env = _libpq_env()
    env.update(
        HELPDESK_DATABASE_NAME=target.database,
        HELPDESK_DATABASE_OWNER_ROLE=target.owner_role,
        HELPDESK_DATABASE_APP_ROLE=target.app_role,
        # Quotes in passwords must not break the generated SQL.
        HELPDESK_DATABASE_OWNER_PASSWORD=f"own'er-{suffix}",
        HELPDESK_DATABASE_APP_PASSWORD=f'ap"p-{suffix}',
    )
    target.env.update(env)
    try:
        yield target
    finally:
        _psql(env, f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
        _psql(env, f'DROP ROLE IF EXISTS "{target.app_role}"')
        _psql(env, f'DROP ROLE IF EXISTS "{target.owner_role}"')


def _run_init(target: InitTarget) -> None:
    result = subprocess.run(
        ["bash", str(INIT_SCRIPT)],
        env=target.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _role_attributes(target: InitTarget, role: str) -> str:
    result = _psql(
        target.env,
        "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole "
        f"FROM pg_roles WHERE rolname = '{role}'",
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_init_script_creates_database_and_safe_roles(init_target: InitTarget) -> None:
    _run_init(init_target)

    # login | superuser | bypassrls | createdb | createrole
    assert _role_attributes(init_target, init_target.app_role) == "t|f|f|f|f"
    assert _role_attributes(init_target, init_target.owner_role) == "t|f|f|f|f"
    owner = _psql(
        init_target.env,
        f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{init_target.database}'",
    )
    assert owner.stdout.strip() == init_target.owner_role

    # The owner creates the schema; the runtime role cannot create anything in it.
    created = _psql(
        init_target.env,
        "CREATE TABLE probe (id int)",
        user=init_target.owner_role,
        database=init_target.database,
    )
    assert created.returncode == 0, created.stderr
    refused = _psql(
        init_target.env,
        "CREATE TABLE intruder (id int)",
        user=init_target.app_role,
        database=init_target.database,
    )
    assert refused.returncode != 0
    assert "permission denied for schema public" in refused.stderr


def test_init_script_is_idempotent_and_repairs_loosened_roles(
    init_target: InitTarget,
) -> None:
    _run_init(init_target)
    loosened = _psql(init_target.env, f'ALTER ROLE "{init_target.app_role}" BYPASSRLS CREATEDB')
    assert loosened.returncode == 0, loosened.stderr

    _run_init(init_target)

    assert _role_attributes(init_target, init_target.app_role) == "t|f|f|f|f"
