"""Analyzer processes for the API tests: ``chainotel-analyzer serve`` started as a user does,
on a free 127.0.0.1 port, with a real chDB store in a pytest tmp directory."""

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

ANALYZER = str(Path(sys.executable).with_name("chainotel-analyzer"))
ISOLATED_ENV = ("CHAINOTEL_CATALOG", "CHAINOTEL_JAEGER_UI_URL", "OTEL_TRACES_EXPORTER")
"""Variables of the developer's shell that would change what the tests see; only ``env=`` sets them."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(db: Path, port: int) -> list[str]:
    """``chainotel-analyzer serve`` on ``127.0.0.1:port`` (HTTP only) with chDB at ``db``."""
    return [ANALYZER, "serve", "--host", "127.0.0.1", "--grpc-port", "-1", "--http-port", str(port),
            "--clickhouse-url", f"chdb://{db}", "--log-level", "warning"]  # fmt: skip


def analyzer_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without :data:`ISOLATED_ENV`, plus ``env``."""
    out = {k: v for k, v in os.environ.items() if k not in ISOLATED_ENV}
    return {**out, **(env or {})}


@contextmanager
def serve(db: Path, env: dict[str, str] | None = None) -> Iterator[httpx.Client]:
    """Run an analyzer on chDB directory ``db`` until the block ends; yields an ``httpx.Client``
    on its base URL. Its stderr goes to ``<db>-<port>.log`` (shown if it fails to start)."""
    port = free_port()
    log = db.with_name(f"{db.name}-{port}.log")
    with open(log, "wb") as log_fh:
        proc = subprocess.Popen(serve_command(db, port), env=analyzer_env(env), stdout=subprocess.DEVNULL,
                                stderr=log_fh)  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, f"analyzer exited {proc.returncode}:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"analyzer not healthy after 60 s:\n{log.read_text()[-3000:]}"
                time.sleep(0.2)
            with httpx.Client(base_url=base, timeout=60) as client:
                yield client
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
