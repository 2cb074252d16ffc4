"""Real services for the distro tests and benchmark: the fixture apps started with
``opentelemetry-instrument uvicorn`` (environment variables only, 127.0.0.1, ephemeral ports)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from chainotel.cli.demo import free_port
from tests.distro.otlp_sink import OtlpSink

APPS = Path(__file__).parent / "apps"
BIN = Path(sys.executable).parent


class Service:
    """A uvicorn process under ``opentelemetry-instrument`` (plain uvicorn with ``instrument=False``);
    ``url``, ``log()`` (stderr+stdout)."""

    def __init__(self, module: str, env: dict[str, str], tmp: Path, workers: int = 1, pythonpath: str = "",
                 instrument: bool = True):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logfile = tmp / f"{module}-{self.port}.log"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CHAINOTEL_", "PYTHONPATH"))}
        if pythonpath:
            clean["PYTHONPATH"] = pythonpath
        args = [str(BIN / "opentelemetry-instrument")] if instrument else []
        args += [str(BIN / "uvicorn"), f"{module}:app",
                "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        if workers > 1:
            args += ["--workers", str(workers)]
        self._log = open(self.logfile, "wb")
        self.proc = subprocess.Popen(
            args, cwd=APPS, env={**clean, **env}, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.url}/plain", timeout=1)
                break
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{module} did not start:\n{self.log()}")
                time.sleep(0.1)

    def log(self) -> str:
        return self.logfile.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()


STACK_INSTRUMENTATIONS = "sqlalchemy,redis,requests,openai,httpx2,websockets"
"""Instrumentations the test environment has for the integration tests' libraries; left out of the
other services (loading them, the OpenAI client above all, slows every start-up)."""


def otel_env(sink: OtlpSink, service: str, **extra: str) -> dict[str, str]:
    """The environment a user sets (README), exporting OTLP/HTTP to ``sink``; the integration
    libraries' instrumentations are disabled unless ``extra`` sets
    ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` itself."""
    return {
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": STACK_INSTRUMENTATIONS,
        "OTEL_SERVICE_NAME": service,
        "OTEL_PYTHON_DISTRO": "chainotel",
        "OTEL_PYTHON_CONFIGURATOR": "chainotel",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "CHAINOTEL_CATALOG": str(APPS / "chains.yaml"),
        **extra,
    }
