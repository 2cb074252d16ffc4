"""``chainotel demo`` as a real process: nothing it started outlives it (SIGTERM, SIGKILL), and its
temporary data directory is removed unless it was asked to keep it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chainotel.cli.demo import SERVICES
from tests.processes import alive, child_pids

CHILDREN = len(SERVICES) + 1  # the analyzer and the five services


def _descendants(pid: int) -> set[int]:
    """PIDs of the living processes below ``pid``."""
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for parent in frontier for child in alive(child_pids(parent))} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    return set(alive(list(pids)))


def _wait(condition, timeout_s: float, interval_s: float = 0.2):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)
    return condition()


@pytest.fixture
def demo_process(tmp_path):
    """Start ``chainotel demo`` (traffic that outlasts the test) with TMPDIR in ``tmp_path``; yield
    ``(popen, tmp, descendants)`` once the analyzer and all five services run; kill leftovers after."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "COLUMNS": "200"}
    cmd = [str(Path(sys.executable).parent / "chainotel"), "demo", "--free-ports", "--requests", "100000",
           "--concurrency", "2"]
    log = open(tmp_path / "demo.log", "wb")
    popen = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    seen: set[int] = set()
    try:
        def stack_up() -> bool:
            seen.update(_descendants(popen.pid))
            return popen.poll() is None and b"services " in (tmp_path / "demo.log").read_bytes()

        assert _wait(stack_up, 120), (tmp_path / "demo.log").read_text(errors="replace")
        seen.update(_descendants(popen.pid))
        assert len(seen) >= CHILDREN
        yield popen, tmp, seen
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait(10)
        for pid in _alive(seen):
            os.kill(pid, signal.SIGKILL)
        log.close()


def test_sigterm_stops_every_child_and_removes_the_temporary_directory(demo_process):
    popen, tmp, children = demo_process
    # what the demo made (clickhouse-connect's chDB client also writes a tmp*.raw file for the
    # moment of each raw INSERT and removes it: not the demo's)
    made = [p.name for p in tmp.iterdir() if not (p.name.startswith("tmp") and p.name.endswith(".raw"))]
    assert made and all(name.startswith("chainotel-demo-") for name in made)
    popen.send_signal(signal.SIGTERM)
    assert popen.wait(90) == 0
    assert _alive(children) == set()
    assert list(tmp.iterdir()) == []  # the chDB data and the logs are gone


def test_children_die_with_a_killed_demo(demo_process):
    popen, _, children = demo_process
    popen.kill()  # no cleanup code runs: the kernel's parent-death signal must stop them
    popen.wait(10)
    assert _wait(lambda: not _alive(children), 60), f"still running: {_alive(children)}"
