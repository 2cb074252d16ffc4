"""``opentelemetry-bootstrap -a install`` in a service's own environment with the distro: a fresh
virtual environment gets ``pip install chainotel`` (this source tree) and ``requests``, bootstrap
installs the instrumentation for requests, and ``opentelemetry-instrument`` with the distro then
loads it — as the start-up line says — and tags the requests span."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.distro.services import otel_env

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""\
    import requests
    from opentelemetry import trace

    tracer = trace.get_tracer("bootstrap-test")
    with tracer.start_as_current_span("ml.inference.run"):  # the test catalog's D1 (a span_name rule)
        try:
            requests.get("http://127.0.0.1:9/", timeout=0.5)
        except requests.RequestException:
            pass
    trace.get_tracer_provider().force_flush()
""")


def run(args, **kwargs):
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_bootstrap_installs_the_instrumentations_a_service_needs(tmp_path, sink):
    venv = tmp_path / "service-env"
    run([sys.executable, "-m", "venv", str(venv)])
    bin_dir = venv / "bin"
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt")]
    run(pip + [str(ROOT), "requests"])
    listed = run([str(bin_dir / "opentelemetry-bootstrap"), "-a", "requirements"]).stdout.split()
    assert any(line.startswith("opentelemetry-instrumentation-requests==") for line in listed), listed
    assert not any("sqlalchemy" in line or "fastapi" in line for line in listed), listed  # not in this env
    run([str(bin_dir / "opentelemetry-bootstrap"), "-a", "install"])
    freeze = run([str(bin_dir / "python"), "-m", "pip", "freeze"]).stdout
    assert "opentelemetry-instrumentation-requests==" in freeze, freeze

    script = tmp_path / "service.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CHAINOTEL_", "PYTHONPATH"))}
    env.update(otel_env(sink, "test-bootstrap", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=""))
    done = run([str(bin_dir / "opentelemetry-instrument"), str(bin_dir / "python"), str(script)], env=env)
    line = next(l for l in done.stderr.splitlines() if l.startswith("chainotel: instrumentations loaded:"))
    assert "requests" in line.split("; skipped:")[0], line
    spans = sink.wait_trace_of_service("test-bootstrap", lambda sp: any(s["kind"] == 3 for s in sp))
    client = [s for s in spans if s["kind"] == 3]
    assert client and client[0]["attributes"].get("chain.id") == "D1", spans
