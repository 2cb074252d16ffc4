"""Real Alertmanager and Prometheus processes (Debian's ``prometheus-alertmanager`` and ``prometheus``
packages) on 127.0.0.1 with their own configuration, and a webhook receiver the test runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from chainotel.cli.demo import free_port

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
PROMETHEUS = shutil.which("prometheus")
START_TIMEOUT_S = 30

needs_alertmanager = pytest.mark.skipif(
    ALERTMANAGER is None and not __import__("os").environ.get("CI"),
    reason="Alertmanager not installed (apt-get install prometheus-alertmanager; .ci/run does it)",
)
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None and not __import__("os").environ.get("CI"),
    reason="Prometheus not installed (apt-get install prometheus; .ci/run does it)",
)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 collecting the JSON bodies POSTed to it (``received``, by path).
    The first ``fail_first`` requests are answered 503 (to exercise retries)."""

    def __init__(self, fail_first: int = 0):
        self.received: list[tuple[str, dict]] = []
        self.failures_left = fail_first
        self.refused = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.failures_left > 0:
                    outer.failures_left -= 1
                    outer.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                outer.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, path: str) -> list[dict]:
        return [body for p, body in list(self.received) if p == path]


def _wait_ready(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.args[0]} not ready after {START_TIMEOUT_S} s: {log.read_text()[-2000:]}")


@contextmanager
def process(args: list[str], ready_url: str, log: Path):
    """Run ``args`` (output to ``log``) until the block ends; waits for ``ready_url`` to answer 200."""
    with open(log, "ab") as fh:
        proc = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT)
        try:
            _wait_ready(ready_url, proc, log)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextmanager
def alertmanager(tmp: Path, webhook_url: str):
    """Alertmanager on a free 127.0.0.1 port routing every alert to ``webhook_url`` (resolved ones too),
    with 1 s grouping; yields its base URL."""
    if ALERTMANAGER is None:
        raise RuntimeError("prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)")
    port = free_port()
    config = tmp / "alertmanager.yml"
    config.write_text(f"""route:
  receiver: hook
  group_by: [alertname, chain]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
""")
    args = [ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with process(args, base + "/-/ready", tmp / "alertmanager.log"):
        yield base


@contextmanager
def prometheus(tmp: Path, config_text: str):
    """Prometheus on a free 127.0.0.1 port with ``config_text`` as prometheus.yml (rule files beside it);
    yields its base URL."""
    if PROMETHEUS is None:
        raise RuntimeError("prometheus is not installed (apt-get install prometheus)")
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(config_text)
    args = [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{port}"]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with process(args, base + "/-/ready", tmp / "prometheus.log"):
        yield base
