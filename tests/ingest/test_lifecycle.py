"""The analyzer leaves no process behind: decoder processes end with it, on SIGTERM and on SIGKILL."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == str(pid):
                out.append(int(entry.name))
    return out


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_no_process_left_behind(analyzer_factory, sig):
    a = analyzer_factory({"CHAINOTEL_DECODE_WORKERS": "2"})
    kids = _children(a.proc.pid)
    assert len(kids) >= 2  # decoders (+ multiprocessing's resource tracker)
    os.kill(a.proc.pid, sig)
    a.proc.wait(30)
    deadline = time.monotonic() + 15
    while _alive(kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(kids) == []
