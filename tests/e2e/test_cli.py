"""The people's CLI (chainotel trace/health/…/demo) against the running demo analyzer."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import typer
from typer.testing import CliRunner

from chainotel.cli import client, demo

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    client.register(app)
    demo.register(app)
    return app


def _run(*args: str):
    return runner.invoke(_app(), list(args))


def test_trace_prints_the_waterfall_and_critical_path(demo_run):
    stack, results, _ = demo_run
    r = next(x for x in results if x.flow == "ai-decision" and x.ok)
    out = _run("trace", r.instance_id, "--analyzer", stack.analyzer_url)
    assert out.exit_code == 0, out.output
    assert "critical path" in out.output and "ai-provider" in out.output and "api-gateway" in out.output
    assert f"console: {stack.analyzer_url}/ui/traces/{r.instance_id}" in out.output
    as_json = _run("trace", r.instance_id, "--analyzer", stack.analyzer_url, "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.output)["instance_id"] == r.instance_id


def test_bottlenecks_name_the_slowed_service(demo_run):
    stack, _, _ = demo_run
    out = _run("bottlenecks", "--chain", "A2", "--since", "15m", "--analyzer", stack.analyzer_url, "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["ranking"][0]["service"] == "ai-provider"
    table = _run("bottlenecks", "--chain", "A2", "--since", "15m", "--analyzer", stack.analyzer_url)
    assert table.exit_code == 0 and "ai-provider" in table.output


def test_health_anomalies_impact_monitor(demo_run, monkeypatch):
    stack, _, _ = demo_run
    monkeypatch.setenv("CHAINOTEL_ANALYZER_URL", stack.analyzer_url)  # the env var works like --analyzer
    health = _run("health")
    assert health.exit_code == 0 and "A2" in health.output, health.output
    assert _run("anomalies").exit_code == 0
    impact = _run("impact", "ai-provider", "--json")
    assert impact.exit_code == 0 and "A2" in impact.output, impact.output
    monitor = _run("monitor", "--count", "2", "--interval", "0.2")
    assert monitor.exit_code == 0 and "active chains" in monitor.output, monitor.output


def test_unknown_chain_instance_is_a_clear_error(demo_run):
    stack, _, _ = demo_run
    out = _run("trace", "00000000-0000-4000-8000-000000000001", "--analyzer", stack.analyzer_url)
    assert out.exit_code == 2 and "404" in out.output


def test_unreachable_analyzer_is_a_clear_error():
    from chainotel.cli.demo import free_port

    out = _run("health", "--analyzer", f"http://127.0.0.1:{free_port()}")
    assert out.exit_code == 2
    assert "cannot reach the chainotel analyzer" in out.output and "chainotel-analyzer serve" in out.output


def test_installed_chainotel_command_has_the_stack_commands():
    """The console script the README uses must expose these commands (registered in chainotel/cli/__init__.py)."""
    exe = Path(sys.executable).parent / "chainotel"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    for command in ("trace", "health", "monitor", "anomalies", "impact", "bottlenecks", "demo"):
        assert command in out.stdout, f"`chainotel {command}` is not registered: {out.stdout}"


def test_demo_command_runs_end_to_end_and_stops_everything(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the demo's data directory goes
    out = _run("demo", "--requests", "36", "--free-ports", "--slow", "ai-provider:150ms")
    assert out.exit_code == 0, out.output
    for text in ("chains in this run", "A2", "critical path", "Where to look next", "/ui/traces/", "stopped."):
        assert text in out.output, text
    assert list(tmp_path.iterdir()) == []  # the temporary data directory was removed
    # every process the demo started has exited: their logs are closed and no port answers
    import httpx
    url = next(line.split()[1] for line in out.output.splitlines() if line.startswith("analyzer http://"))
    try:
        httpx.get(url + "/health", timeout=1)
        raise AssertionError("the analyzer still answers after the demo ended")
    except httpx.TransportError:
        pass


def test_missing_parts_name_the_demo_extra(monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"pip install 'chainotel\[demo\]'"):
        demo._bin("chainotel-no-such-script")
    real_find_spec = demo.importlib.util.find_spec
    monkeypatch.setattr(demo.importlib.util, "find_spec", lambda name, *a: None if name == "websockets" else real_find_spec(name, *a))
    out = _run("demo", "--requests", "1", "--free-ports")
    assert out.exit_code == 1
    assert "websockets" in out.output and "chainotel[demo]" in out.output
