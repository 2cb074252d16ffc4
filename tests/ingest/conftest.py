"""Fixtures: a real ``chainotel-analyzer serve`` subprocess on free ports with chDB in tmp_path."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ANALYZER = str(Path(sys.executable).with_name("chainotel-analyzer"))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Analyzer:
    """One analyzer process: ``http`` base URL, ``grpc`` target, ``data_dir``; started like a user does."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.env = env or {}
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.http = f"http://127.0.0.1:{self.http_port}"
        self.grpc = f"127.0.0.1:{self.grpc_port}"
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / f"analyzer-{self.http_port}.log"

    def command(self) -> list[str]:
        return [
            ANALYZER, "serve", "--host", "127.0.0.1", "--grpc-port", str(self.grpc_port),
            "--http-port", str(self.http_port), "--clickhouse-url", f"chdb://{self.data_dir}", "--log-level", "warning",
        ]  # fmt: skip

    def start(self) -> Analyzer:
        env = {**os.environ, **self.env}
        env.pop("OTEL_TRACES_EXPORTER", None)
        self._log_fh = open(self.log, "ab")
        self.proc = subprocess.Popen(self.command(), env=env, stdout=self._log_fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"analyzer exited {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.http + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"analyzer not healthy after 60 s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if getattr(self, "_log_fh", None):
            self._log_fh.close()
            self._log_fh = None


def child_pids(pid: int) -> list[int]:
    """PIDs of the processes whose parent is ``pid`` (from /proc)."""
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


def alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (not gone, not zombies)."""
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out


def decoder_pids(pid: int) -> list[int]:
    """The decoder processes (multiprocessing spawn children) of the process ``pid``."""
    out = []
    for child in alive(child_pids(pid)):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                out.append(child)
        except OSError:
            continue
    return out


@contextmanager
def running(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Analyzer]:
    """Start an analyzer on ``data_dir``; always stopped on exit."""
    analyzer = Analyzer(data_dir, env)
    try:
        yield analyzer.start()
    finally:
        analyzer.stop()


@contextmanager
def open_db(data_dir: Path):
    """The store of a stopped analyzer, opened in this process (clickhouse-connect client)."""
    from analyzer.settings import AnalyzerSettings
    from analyzer.store.client import open_store

    store = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{data_dir}"))
    try:
        yield store.client
    finally:
        store.close()


@pytest.fixture
def analyzer_factory(tmp_path: Path):
    """``factory(env=None, data_dir=None)`` → started Analyzer; all are stopped at teardown."""
    started: list[Analyzer] = []

    def factory(env: dict[str, str] | None = None, data_dir: Path | None = None) -> Analyzer:
        analyzer = Analyzer(data_dir or tmp_path / f"db{len(started)}", env)
        started.append(analyzer)
        return analyzer.start()

    yield factory
    for analyzer in started:
        analyzer.stop()
