"""The Dockerfile's load-bearing choices (there is no Docker engine here to build it), and the
system-dependency installer that CI runs first."""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.conftest import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-system-deps.sh"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    arguments: str


def _instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with comments dropped and continuation lines joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stage = -1
    result = []
    for line in logical:
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        result.append(Instruction(stage, keyword.upper(), arguments.strip()))
    return result


def test_dockerfile_installs_cpu_torch_before_the_project() -> None:
    instructions = _instructions(DOCKERFILE.read_text())
    runs = [i.arguments for i in instructions if i.keyword == "RUN"]
    torch_at = next(n for n, run in enumerate(runs) if "torch==2.13.0" in run)
    project_at = next(n for n, run in enumerate(runs) if "pip install ." in run)
    assert torch_at < project_at
    assert f"--index-url {CPU_INDEX}" in runs[torch_at]
    # The project install must not bring its own index that could resolve a CUDA torch.
    assert "index-url" not in runs[project_at]


def test_dockerfile_runs_the_api_as_an_unprivileged_user() -> None:
    instructions = _instructions(DOCKERFILE.read_text())
    last_stage = max(i.stage for i in instructions)
    final = [i for i in instructions if i.stage == last_stage]
    assert final[0].arguments == "python:3.11-slim"
    users = [n for n, i in enumerate(final) if i.keyword == "USER"]
    assert users, "the final stage never leaves root"
    assert final[users[-1]].arguments not in {"root", "0", "0:0"}
    assert all(i.keyword != "RUN" for i in final[users[-1] :]), "RUN after USER runs unprivileged"
    cmd = next(i for i in reversed(final) if i.keyword == "CMD")
    assert cmd.arguments == '["helpdesk", "serve", "--host", "0.0.0.0"]'


def test_dockerignore_keeps_what_the_build_copies_and_drops_secrets() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        # Last matching pattern wins, as in Docker; `**/` also matches at the top level.
        verdict = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            bare = pattern.removeprefix("!")
            candidates = {bare, bare.removeprefix("**/")}
            parts = Path(path).parts
            prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
            if any(fnmatch.fnmatch(p, c) for p in prefixes for c in candidates):
                verdict = not negated
        return verdict

    copied = ["pyproject.toml", "README.md", "backend/app.py", "backend/db/migrations/env.py"]
    for path in copied:
        assert not ignored(path), f".dockerignore drops {path}, which the build copies"
    for path in [
        ".env",
        ".env.production",
        ".venv/bin/python",
        ".git/config",
        "tests/conftest.py",
        "frontend-widget/node_modules/x.js",
    ]:
        assert ignored(path), f".dockerignore lets {path} into the build context"
    assert not ignored(".env.example")


def test_install_script_does_nothing_when_everything_is_present(tmp_path: Path) -> None:
    for tool in (
        "nginx",
        "docker-compose",
        "chromium",
        "chromedriver",
        "redis-server",
        "redis-cli",
        "psql",
    ):
        found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin")
        assert found, f"{tool} missing; run scripts/install-system-deps.sh"

    # apt-get and sudo stand-ins that record any call: with everything installed, the script
    # must not reach for either (so CI pays nothing on a warm machine).
    calls = tmp_path / "calls"
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in ("apt-get", "sudo"):
        stub = stubs / name
        stub.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\nexit 1\n')
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ.get('PATH', '/usr/bin:/bin')}"}

    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert not calls.exists(), calls.read_text()
    assert result.stdout == "" and result.stderr == ""
