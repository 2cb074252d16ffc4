"""Real analyzer processes for the tests, and /proc look-ups of what a process left running.

One way to start ``chainotel-analyzer serve`` as a user does — on free 127.0.0.1 ports, with a chDB
store in a pytest tmp directory — used by every test package: :class:`Analyzer`, :func:`running`,
:func:`serve`.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from chainotel.cli.demo import free_port

ANALYZER = str(Path(sys.executable).with_name("chainotel-analyzer"))
ISOLATED_ENV = ("CHAINOTEL_CATALOG", "CHAINOTEL_JAEGER_UI_URL", "OTEL_TRACES_EXPORTER")
"""Variables of the developer's shell that would change what the tests see; only ``env=`` sets them."""

START_TIMEOUT_S = 60


def analyzer_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without :data:`ISOLATED_ENV`, plus ``env``."""
    out = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV}
    return {**out, **(env or {})}


class Analyzer:
    """One analyzer process: ``http`` base URL, ``grpc`` target (``None`` with ``grpc=False``),
    ``data_dir``; its output goes to ``log`` (shown when it fails to start).

    ``tls``: the analyzer serves TLS (its ``CHAINOTEL_TLS_*`` are in ``env``); ``http`` is then
    ``https://`` and ``/health`` is polled with :meth:`ssl_context`, built from ``tls["ca"]`` (and
    ``tls["cert"]``/``tls["key"]`` for mTLS)."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, grpc: bool = True, tls: dict | None = None):
        self.data_dir = data_dir
        self.env = env or {}
        self.tls = tls
        self.http_port = free_port()
        self.grpc_port = free_port() if grpc else -1
        self.http = f"{'https' if tls else 'http'}://127.0.0.1:{self.http_port}"
        self.grpc = f"127.0.0.1:{self.grpc_port}" if grpc else None
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / f"{data_dir.name}-analyzer-{self.http_port}.log"
        self._log_fh = None

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What httpx's ``verify`` needs to reach this analyzer (``True`` without TLS)."""
        if not self.tls:
            return True
        context = ssl.create_default_context(cafile=str(self.tls["ca"]))
        if self.tls.get("cert"):
            context.load_cert_chain(str(self.tls["cert"]), str(self.tls["key"]))
        return context

    def command(self) -> list[str]:
        """The ``chainotel-analyzer serve`` command line."""
        return [
            ANALYZER, "serve", "--host", "127.0.0.1", "--grpc-port", str(self.grpc_port),
            "--http-port", str(self.http_port), "--clickhouse-url", f"chdb://{self.data_dir}", "--log-level", "warning",
        ]  # fmt: skip

    def start(self) -> Analyzer:
        """Start and wait until ``/health`` answers 200 (at most :data:`START_TIMEOUT_S` s).

        Raises:
            RuntimeError: the process exited or did not become healthy; the message ends with its log.
        """
        self._log_fh = open(self.log, "ab")
        self.proc = subprocess.Popen(self.command(), env=analyzer_env(self.env), stdout=self._log_fh,
                                     stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        verify = self.ssl_context()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"analyzer exited {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.http + "/health", timeout=1, verify=verify).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"analyzer not healthy after {START_TIMEOUT_S} s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s; closes the log."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None


@contextmanager
def running(
    data_dir: Path, env: dict[str, str] | None = None, grpc: bool = True, tls: dict | None = None
) -> Iterator[Analyzer]:
    """Start an analyzer on ``data_dir`` (``tls``: see :class:`Analyzer`); always stopped on exit."""
    analyzer = Analyzer(data_dir, env, grpc, tls)
    try:
        yield analyzer.start()
    finally:
        analyzer.stop()


@contextmanager
def serve(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[httpx.Client]:
    """An HTTP-only analyzer on ``data_dir`` until the block ends; yields an ``httpx.Client`` on its
    base URL (60 s timeout)."""
    with running(data_dir, env, grpc=False) as analyzer, httpx.Client(base_url=analyzer.http, timeout=60) as client:
        yield client


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
