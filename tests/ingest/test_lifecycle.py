"""The analyzer leaves no process behind: decoder processes end with it, on SIGTERM and on SIGKILL;
a start that fails half-way stops what it started."""

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


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


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


@pytest.mark.parametrize("failing", ["decoders", "grpc"])
def test_failed_start_releases_everything(tmp_path, monkeypatch, failing):
    import threading

    import analyzer.runtime as runtime_module
    from analyzer.settings import AnalyzerSettings
    from analyzer.store.client import open_store

    def cannot_start(*args, **kwargs):
        raise OSError(f"cannot start the {failing}")

    monkeypatch.setattr(runtime_module, "DecodePool" if failing == "decoders" else "start_grpc_server", cannot_start)
    settings = AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}", decode_workers=1, grpc_port=0)
    with pytest.raises(OSError, match=f"cannot start the {failing}"):
        runtime_module.start_runtime(settings)
    assert not [t for t in threading.enumerate() if t.name == "chainotel-span-writer"]
    assert not [pid for pid in _alive(_children(os.getpid())) if b"spawn_main" in _cmdline(pid)]  # decoders
    open_store(settings).close()  # the chDB lock was released
