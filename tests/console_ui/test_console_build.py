"""The company console builds under its size budget, its own tests pass, and it works in
Chromium against its contract replay (the same script runs against the real API in
test_console_end_to_end.py). Runs the console's real toolchain (npm, Vite, Vitest)."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

CONSOLE_DIR = Path(__file__).resolve().parents[2] / "frontend-console"
ASSETS = CONSOLE_DIR / "dist" / "assets"
BUDGET_BYTES = 150 * 1024
E2E_SCRIPT = Path(__file__).with_name("e2e_console.mjs")


def npm(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("npm")
    assert executable is not None, "npm is required to build the console (Node 20+)"
    env = {**os.environ, "CI": "true", "NO_COLOR": "1", "FORCE_COLOR": "0"}
    return subprocess.run(
        [executable, *args],
        cwd=CONSOLE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ensure_built() -> None:
    if not (CONSOLE_DIR / "node_modules" / ".bin" / "vite").exists():
        installed = npm("ci", "--no-audit", "--no-fund", timeout=300)
        assert installed.returncode == 0, installed.stdout + installed.stderr
    if not (CONSOLE_DIR / "dist" / "index.html").exists():
        built = npm("run", "build", timeout=120)
        assert built.returncode == 0, built.stdout + built.stderr


def test_console_builds_under_budget_and_its_tests_pass() -> None:
    ensure_built()
    built = npm("run", "build", timeout=120)
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    reported = re.search(r"console bundle: (\d+) bytes .*gzip (\d+) bytes", output)
    assert reported is not None, output
    # An independent measurement of what the page loads agrees with the build's own.
    files = [p for p in ASSETS.iterdir() if p.suffix in (".js", ".css")]
    raw = sum(p.stat().st_size for p in files)
    gzipped = sum(len(gzip.compress(p.read_bytes(), compresslevel=9)) for p in files)
    assert int(reported.group(1)) == raw
    # (Two compressors of the same level differ by a few hundred bytes over the files.)
    assert abs(gzipped - int(reported.group(2))) < 1024
    assert gzipped <= BUDGET_BYTES
    index = (CONSOLE_DIR / "dist" / "index.html").read_text()
    assert 'src="/console/assets/' in index  # served under /console/ by the API

    tested = npm("test", timeout=240)
    output = tested.stdout + tested.stderr
    assert tested.returncode == 0, output
    summary = re.search(r"Tests\s+(\d+) passed \((\d+)\)", output)
    assert summary is not None, output
    assert summary.group(1) == summary.group(2)
    assert int(summary.group(1)) >= 17


def test_console_works_in_chromium_against_the_contract_replay() -> None:
    ensure_built()
    node = shutil.which("node")
    assert node is not None
    assert Path("/usr/bin/chromium").exists(), "apt-get install chromium"
    env = {key: value for key, value in os.environ.items() if key != "API_BASE"}
    run = subprocess.run(
        [node, str(E2E_SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = json.loads(run.stdout)
    assert summary["ok"] is True
    assert summary["wrongPassword"] == "That email and password do not match."
    assert summary["tabTarget"].endswith("in main: true")
    assert summary["focusOutline"] == "solid"
    assert summary["testConnection"].startswith("Connection works")
    assert "running" in summary["syncStatuses"] and "succeeded" in summary["syncStatuses"]
    assert "Chunks per second" in summary["runningFigures"]
    assert summary["previewBefore"].startswith("Hi there,")
    assert summary["previewAfter"].startswith("Dear customer,")
    drawn = [chart for chart in summary["charts"] if chart["canvas"]]
    assert len(drawn) >= 7 and all(chart["points"] == 7 for chart in drawn)
    assert summary["kpis"]["calls"] == "301"
    assert summary["koreanNav"][3] == "인사이트" and summary["lang"] == "ko"
    assert summary["phoneOverflowPx"] <= 0
    assert "/console/#/accept?token=" in summary["inviteLink"]
    assert summary["newKeyLength"] > 20 and summary["keyScopes"] == "assistant, ingest"
    assert summary["agentNav"] == ["Knowledge"] and summary["agentWho"] == "New Agent (agent)"
