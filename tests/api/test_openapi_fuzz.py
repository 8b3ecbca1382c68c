"""An OpenAPI fuzz run: every operation of the published schema, /admin included, with
valid credentials, against the real app (uvicorn on loopback, real Postgres): no input may
produce a server error.

Schemathesis generates the requests from the schema (valid and invalid bodies, parameters
and headers); the credentials it would generate are replaced by real ones, so the requests
get past authentication and reach validation, the handlers and the stores. The run is
bounded (``HELPDESK_FUZZ_EXAMPLES`` examples per operation, 12 by default) and derandomized,
so it fits CI and a failure reproduces.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from backend.app import create_app
from backend.config import Settings
from backend.db.provisioning import DatabaseUrls
from tests.conftest import ADMIN_TOKEN, METRICS_TOKEN

EXAMPLES = int(os.environ.get("HELPDESK_FUZZ_EXAMPLES", "12"))
# (method path, status) → count, over the whole run: shows that the generated requests got
# past authentication into the handlers, and is printed as the run's summary.
TALLY: Counter[tuple[str, int]] = Counter()


@dataclass(frozen=True)
class FuzzTarget:
    base_url: str
    company_id: str
    api_key: str
    admin_company_id: str


def _serve_in_thread(settings: Settings) -> tuple[uvicorn.Server, threading.Thread, str]:
    """The app under uvicorn in a thread of its own (its own event loop): schemathesis's
    test functions are synchronous and would otherwise block the server's loop."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=0, log_config=None, lifespan="on"
        )
    )
    thread = threading.Thread(target=server.run, name="fuzz-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def fuzz_target(
    database_urls: DatabaseUrls, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzTarget]:
    configured = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=database_urls.runtime_url,
        auto_migrate=False,
        data_dir=tmp_path_factory.mktemp("fuzz") / "data",
        admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
        metrics_token=METRICS_TOKEN,  # type: ignore[arg-type]
        scheduler_enabled=False,
        log_level="WARNING",
        # The fuzzer sends thousands of requests a minute; rates are tested elsewhere.
        plan_default_requests_per_minute=None,
    )
    server, thread, base_url = _serve_in_thread(configured)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    suffix = os.urandom(3).hex()
    with httpx.Client(base_url=base_url, headers=admin, timeout=60) as http:
        for company in (f"fuzz-{suffix}", f"fuzz-admin-{suffix}"):
            created = http.post("/admin/companies", json={"company_id": company, "name": "F"})
            assert created.status_code == 201, created.text
        issued = http.post(f"/admin/companies/fuzz-{suffix}/api-keys", json={"name": "fuzz"})
        assert issued.status_code == 201, issued.text
    try:
        yield FuzzTarget(
            base_url=base_url,
            company_id=f"fuzz-{suffix}",
            api_key=issued.json()["api_key"],
            admin_company_id=f"fuzz-admin-{suffix}",
        )
    finally:
        server.should_exit = True
        thread.join(timeout=60)
    if TALLY:
        by_class = Counter(
            f"{status // 100}xx" for (_, status), n in TALLY.items() for _ in range(n)
        )
        print(f"\nfuzz run: {sum(TALLY.values())} requests, {dict(sorted(by_class.items()))}")
        reached = {op for (op, status) in TALLY if 200 <= status < 300}
        assert any(" /v1/" in op for op in reached), "no /v1 request got past authentication"
        assert any(" /admin/" in op for op in reached), "no /admin request succeeded"


def _published_schema() -> dict[str, object]:
    """The OpenAPI document the app publishes (built without starting it). Loaded at import
    so pytest sees one test per operation (schemathesis's fixture-based loader does not run
    under this pytest)."""
    app = create_app(
        Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment="test",
            admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
            log_level="WARNING",
        )
    )
    return app.openapi()


schema = schemathesis.openapi.from_dict(_published_schema())


def _with_credentials(case: schemathesis.Case, target: FuzzTarget) -> None:
    """Real credentials for the operation's audience; everything else stays generated."""
    path = case.operation.path
    headers = dict(case.headers or {})
    if path.startswith("/admin"):
        headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        if case.path_parameters and "company_id" in case.path_parameters:
            # Aim at a real company (its own, so a generated plan or key revocation cannot
            # lock the /v1 half of the run out).
            case.path_parameters["company_id"] = target.admin_company_id
    elif path.startswith("/v1"):
        headers["Authorization"] = f"Bearer {target.api_key}"
        headers["X-Company-ID"] = target.company_id
    elif path == "/metrics":
        headers["Authorization"] = f"Bearer {METRICS_TOKEN}"
    elif path == "/healthz/stream":
        # Up to 100 events 5 s apart is valid, and slow: keep the probe's run short.
        case.query = {"count": 2, "interval_ms": 0}
    case.headers = headers


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_a_server_error(
    case: schemathesis.Case, fuzz_target: FuzzTarget
) -> None:
    _with_credentials(case, fuzz_target)
    response = case.call(base_url=fuzz_target.base_url, timeout=60)
    TALLY[(f"{case.method.upper()} {case.operation.path}", response.status_code)] += 1
    case.validate_response(response, checks=[not_a_server_error])


def test_the_fuzz_run_covers_every_operation(fuzz_target: FuzzTarget) -> None:
    # The schema fuzzed is the one the running app serves, /admin and operations included.
    served = httpx.get(f"{fuzz_target.base_url}/openapi.json").json()
    assert served["paths"].keys() == _published_schema()["paths"].keys()
    paths = {result.ok().path for result in schema.get_all_operations()}
    assert {"/admin/companies", "/admin/companies/{company_id}/plan", "/metrics"} <= paths
    assert any(p.startswith("/v1/") for p in paths)
