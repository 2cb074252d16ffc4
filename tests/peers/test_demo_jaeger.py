"""``chainotel demo --jaeger``: Jaeger v2 and the Collector join the demo stack, and the analyzer's
links open the demo's traces in Jaeger."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx

from chainotel.cli.demo import Stack, load_traffic, peer_binaries

from .peers import wait_for

CHAINOTEL = str(Path(sys.executable).with_name("chainotel"))


def test_the_stack_with_jaeger_shows_each_trace_in_jaeger_and_links_to_it(tmp_path):
    assert peer_binaries() is not None
    with Stack(tmp_path, mode="chainotel", free_ports=True, slow="", error_rate=0.0, jaeger=True) as stack:
        results = asyncio.run(load_traffic().drive(stack.entry(), 12, 4, deadline_s=60))
        assert all(r.ok for r in results)
        with httpx.Client(timeout=10) as client:
            for r in results:
                trace_id = r.instance_id.replace("-", "")
                assert wait_for(lambda: client.get(f"{stack.jaeger_url}/api/traces/{trace_id}").status_code == 200, 20)
                assert wait_for(lambda: client.get(f"{stack.analyzer_url}/api/v1/chains/events/{r.instance_id}").status_code == 200, 20)
                link = client.get(f"{stack.analyzer_url}/api/v1/chains/events/{r.instance_id}").json()["jaeger_url"]
                assert link == f"{stack.jaeger_url}/trace/{trace_id}"
                assert client.get(link).status_code == 200
        names = [p.name for p in stack.processes]
        assert names[:3] == ["jaeger", "analyzer", "otel-collector"]
    assert stack.processes == []


def test_demo_runs_with_jaeger_by_default_once_built(tmp_path):
    done = subprocess.run([CHAINOTEL, "demo", "--requests", "12", "--free-ports", "--slow", "", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Jaeger UI" in done.stdout and "/trace/" in done.stdout
    assert (tmp_path / "jaeger.log").exists() and (tmp_path / "otel-collector.log").exists()


def test_no_jaeger_leaves_them_out(tmp_path):
    done = subprocess.run([CHAINOTEL, "demo", "--no-jaeger", "--requests", "6", "--free-ports", "--slow", "", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Jaeger UI" not in done.stdout
    assert not (tmp_path / "jaeger.log").exists()
