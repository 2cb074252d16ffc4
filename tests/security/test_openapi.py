"""The OpenAPI document matches what the analyzer does: schemathesis with every check against a real
analyzer process (authentication on, an admin token so that registry writes run, a throwaway chDB
directory), bounded in examples and time; and the one error shape, checked by hand."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.processes import running

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
TOKEN = "conformance-admin-token-0123456789"
MAX_EXAMPLES, MAX_TIME_S, SEED = 10, 150, 20261201
"""The run's bounds: examples per operation and phase, seconds in all, and a fixed seed so that a
failure is reproducible (``st run ... --seed``); a longer local run: docs/api.md."""


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("openapi")
    auth = tmp / "tokens.yaml"
    auth.write_text(f"- name: conformance\n  token_sha256: '{hashlib.sha256(TOKEN.encode()).hexdigest()}'\n"
                    "  scopes: [ingest, read, admin]\n")  # fmt: skip
    with running(tmp / "db", {"CHAINOTEL_AUTH_FILE": str(auth)}, grpc=False) as a:
        yield a


def _get(analyzer, path: str, **kwargs) -> httpx.Response:
    return httpx.get(analyzer.http + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30, **kwargs)


@pytest.mark.slow
def test_schemathesis_all_checks_pass(analyzer, tmp_path):
    before = {c["id"]: c["version"] for c in _get(analyzer, "/api/v1/chains").json()["chains"]}
    command = [
        SCHEMATHESIS, "--config-file", str(CONFIG), "run", analyzer.http + "/openapi.json",
        "--header", f"Authorization: Bearer {TOKEN}", "--checks", "all",
        "--max-examples", str(MAX_EXAMPLES), "--max-time", str(MAX_TIME_S), "--seed", str(SEED),
        "--request-timeout", "30", "--no-color",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_TELEMETRY": "false"}
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=MAX_TIME_S + 120)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout or " passed" in run.stdout, run.stdout[-3000:]
    # the admin token made writes happen: the registry is not what the analyzer seeded
    after = {c["id"]: c["version"] for c in _get(analyzer, "/api/v1/chains").json()["chains"]}
    assert after != before


def test_one_error_shape(analyzer):
    bad_time = _get(analyzer, "/api/v1/analytics/bottlenecks", params={"since": "yesterday"})
    assert bad_time.status_code == 422
    (error,) = bad_time.json()["detail"]
    assert error["loc"] == ["query", "since"] and error["msg"]
    reversed_window = _get(analyzer, "/api/v1/analytics/bottlenecks", params={"since": "1700000100", "until": "1700000000"})
    assert reversed_window.status_code == 422
    assert reversed_window.json()["detail"][0]["loc"] == ["query", "since"]
    unknown = _get(analyzer, "/api/v1/chains/E99")
    assert unknown.status_code == 404 and isinstance(unknown.json()["detail"], str)
    no_token = httpx.get(analyzer.http + "/api/v1/chains", timeout=30)
    assert no_token.status_code == 401 and isinstance(no_token.json()["detail"], str)
    zero = _get(analyzer, "/api/v1/traces/" + "0" * 32)  # matches the ID pattern; no trace has it
    assert zero.status_code == 404
    doc = _get(analyzer, "/openapi.json").json()
    assert doc["components"]["schemas"]["Error"]["required"] == ["detail"]
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            assert "503" in operation["responses"], (method, path)
            if path.startswith("/api/"):
                assert {"401", "403", "422"} <= set(operation["responses"]), (method, path)


def test_405_lists_every_method_of_the_path(analyzer):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.request("OPTIONS", analyzer.http + "/api/v1/chains/A1", headers=headers, timeout=30)
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, PUT"
    assert isinstance(r.json()["detail"], str)
    # a literal path is not taken for the template beside it (/api/v1/chains/{chain})
    r = httpx.put(analyzer.http + "/api/v1/chains/validate", headers=headers, json={}, timeout=30)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
