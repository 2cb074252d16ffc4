"""The analyzer leaves no process behind: decoder processes end with it, on SIGTERM and on SIGKILL;
a start that fails half-way stops what it started."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.processes import alive, child_pids, decoder_pids


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_no_process_left_behind(analyzer_factory, sig):
    a = analyzer_factory({"CHAINOTEL_DECODE_WORKERS": "2"})
    kids = child_pids(a.proc.pid)
    assert len(kids) >= 2  # decoders (+ multiprocessing's resource tracker)
    os.kill(a.proc.pid, sig)
    a.proc.wait(30)
    deadline = time.monotonic() + 15
    while alive(kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(kids) == []


@pytest.mark.parametrize("failing", ["decoders", "grpc"])
def test_failed_start_releases_everything(tmp_path, monkeypatch, failing):
    import threading

    import chainotel_analyzer.runtime as runtime_module
    from chainotel_analyzer.settings import AnalyzerSettings
    from chainotel_analyzer.store.client import open_store

    def cannot_start(*args, **kwargs):
        raise OSError(f"cannot start the {failing}")

    monkeypatch.setattr(runtime_module, "DecodePool" if failing == "decoders" else "start_grpc_server", cannot_start)
    settings = AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}", decode_workers=1, grpc_port=0)
    with pytest.raises(OSError, match=f"cannot start the {failing}"):
        runtime_module.start_runtime(settings)
    assert not [t for t in threading.enumerate() if t.name == "chainotel-span-writer"]
    assert decoder_pids(os.getpid()) == []
    open_store(settings).close()  # the chDB lock was released
