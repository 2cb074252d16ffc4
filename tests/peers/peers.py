"""The real peer programs for the end-to-end tests: Jaeger v2, the OpenTelemetry Collector built from
collector-config/builder-config.yaml, the Go test service — all built by ``make peers`` — plus an
OTLP/HTTP sink standing in for a user's own backend, and a span emitter using the OpenTelemetry SDK.

Every program listens on free 127.0.0.1 ports, logs to a file in the test's tmp directory and gets
SIGTERM if the test process dies (``PR_SET_PDEATHSIG``). Waits are bounded; a peer that does not
come up raises ``RuntimeError`` with the end of its log.
"""

from __future__ import annotations

import gzip
import http.server
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from chainotel.cli.demo import _die_with_parent, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CHAINOTEL_PEERS_BIN", ROOT / ".peers" / "bin"))
PROGRAMS = ("jaeger", "otelcol-chainotel", "goservice")
FULL = ROOT / "collector-config" / "otel-collector.yaml"
DROP_IN = ROOT / "collector-config" / "chainotel-exporter.yaml"
PERSISTENT_QUEUE = ROOT / "collector-config" / "persistent-queue.yaml"
JAEGER_CONFIG = ROOT / "deploy" / "jaeger" / "jaeger.yaml"
NO_SELF_METRICS = "yaml:service::telemetry::metrics::level: none"
"""A ``--config`` that turns off the Collector's own metrics server (localhost:8888 by default,
which parallel test runs would fight over)."""

START_TIMEOUT_S = 60


def require_binaries() -> Path:
    """The directory of the built peers; skips the calling test when they are missing — or fails it
    under CI (``CI=true``), where a missing Go toolchain or a failed build must not pass unnoticed."""
    missing = [p for p in PROGRAMS if not (BIN / p).is_file()]
    if not missing:
        return BIN
    if shutil.which("go") is None:
        reason = "no Go toolchain on PATH: Jaeger v2, the Collector and the Go service are built from Go modules (make peers, Go >= 1.26)"
    else:
        reason = f"peers not built ({', '.join(missing)} missing in {BIN}): run `make peers`"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


class Peer:
    """One program of :data:`BIN` with its output in ``log``. :meth:`start` waits until ``ready``
    (an HTTP URL answering 200) answers; :meth:`stop` sends SIGTERM, :meth:`kill` SIGKILL."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path, ready: str):
        self.name, self.argv, self.env, self.log, self.ready = name, argv, env, log, ready
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> Peer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")} | self.env
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         preexec_fn=_die_with_parent())  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(self.ready, timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready at {self.ready} after {timeout_s} s:\n{self.tail()}")

    def stop(self, timeout_s: float = 20) -> None:
        """SIGTERM (a Collector drains its in-memory queue), SIGKILL after ``timeout_s`` seconds."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, whatever was only in memory is gone."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Jaeger(Peer):
    """``jaeger --config deploy/jaeger/jaeger.yaml`` with in-memory storage: ``otlp_grpc`` (host:port
    for the Collector's ``otlp/jaeger`` exporter) and ``query`` (base URL of the UI and query API)."""

    def __init__(self, tmp: Path):
        ports = {k: free_port() for k in ("grpc", "http", "query", "query_grpc", "health")}
        self.otlp_grpc = f"127.0.0.1:{ports['grpc']}"
        self.query = f"http://127.0.0.1:{ports['query']}"
        env = {
            "JAEGER_OTLP_GRPC_ENDPOINT": self.otlp_grpc,
            "JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
            "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{ports['query']}",
            "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{ports['query_grpc']}",
            "JAEGER_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
        }
        super().__init__("jaeger", [str(BIN / "jaeger"), "--config", str(JAEGER_CONFIG)], env, tmp / f"jaeger-{ports['query']}.log",
                         f"http://127.0.0.1:{ports['health']}/status")  # fmt: skip

    def trace(self, trace_id: str) -> dict | None:
        """The trace from ``/api/traces/{trace_id}`` (Jaeger's JSON model), ``None`` while unknown."""
        response = httpx.get(f"{self.query}/api/traces/{trace_id}", timeout=10)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        data = response.json().get("data") or []
        return data[0] if data else None


class Collector(Peer):
    """``otelcol-chainotel --config …`` on free ports. The endpoint variables of
    collector-config/otel-collector.yaml are set: ``grpc``/``http`` (the OTLP receivers), the health
    check, ``JAEGER_OTLP_ENDPOINT`` and ``CHAINOTEL_ANALYZER_ENDPOINT`` (``jaeger``/``analyzer``
    arguments); ``env`` adds more; ``feature_gates`` becomes ``--feature-gates``."""

    def __init__(self, tmp: Path, configs: list[Path | str], *, analyzer: str = "", jaeger: str = "",
                 env: dict[str, str] | None = None, feature_gates: str = ""):
        grpc, http_port, health = free_port(), free_port(), free_port()
        self.grpc, self.http = f"127.0.0.1:{grpc}", f"http://127.0.0.1:{http_port}"
        variables = {
            "OTEL_COLLECTOR_GRPC_ENDPOINT": self.grpc,
            "OTEL_COLLECTOR_HTTP_ENDPOINT": f"127.0.0.1:{http_port}",
            "OTEL_COLLECTOR_HEALTH_ENDPOINT": f"127.0.0.1:{health}",
            "JAEGER_OTLP_ENDPOINT": jaeger or f"127.0.0.1:{free_port()}",
            "CHAINOTEL_ANALYZER_ENDPOINT": analyzer or f"http://127.0.0.1:{free_port()}",
            **(env or {}),
        }
        argv = [str(BIN / "otelcol-chainotel")]
        for config in [*configs, NO_SELF_METRICS]:
            argv += ["--config", str(config)]
        if feature_gates:
            argv.append(f"--feature-gates={feature_gates}")
        super().__init__("collector", argv, variables, tmp / f"collector-{http_port}.log", f"http://127.0.0.1:{health}/")


class GoService(Peer):
    """The Go test service (tests/peers/goservice): forwards every request to ``upstream`` with
    otelhttp on both sides, exporting its spans over OTLP/HTTP to ``otlp_endpoint``."""

    def __init__(self, tmp: Path, upstream: str, otlp_endpoint: str, service_name: str = "go-relay"):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {
            "GOSERVICE_LISTEN": f"127.0.0.1:{port}", "GOSERVICE_UPSTREAM": upstream,
            "OTEL_SERVICE_NAME": service_name, "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }  # fmt: skip
        super().__init__("goservice", [str(BIN / "goservice")], env, tmp / f"goservice-{port}.log", self.url + "/health")


class OtlpSink:
    """A user's own trace backend, as far as the Collector can tell: ``POST /v1/traces`` (OTLP/HTTP
    protobuf, gzip or not) answered 200; ``span_ids`` counts every span ID received (hex).
    Runs in a thread of the test process on a free 127.0.0.1 port (``url``)."""

    def __init__(self) -> None:
        self.span_ids: Counter[str] = Counter()
        self._lock = threading.Lock()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                with sink._lock:
                    for rs in request.resource_spans:
                        for ss in rs.scope_spans:
                            sink.span_ids.update(s.span_id.hex() for s in ss.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def emit_spans(endpoint: str, traces: int, spans_per_trace: int, service: str = "emitter") -> dict[str, set[str]]:
    """Send ``traces`` traces of ``spans_per_trace`` spans (a root and its children) over OTLP/HTTP to
    ``endpoint`` (a Collector's base URL) with the OpenTelemetry SDK; the root spans carry a chain's
    attributes. Returns ``{trace_id (32 hex): {span_id (16 hex), …}}``. Raises ``RuntimeError`` when
    the exporter could not deliver (the Collector refused or was unreachable)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

    exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=10)
    failures: list[int] = []
    export = exporter.export

    def checked(spans):
        result = export(spans)
        if result is not SpanExportResult.SUCCESS:
            failures.append(len(spans))
        return result

    exporter.export = checked
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=256, schedule_delay_millis=100))
    tracer = provider.get_tracer("tests.peers")
    out: dict[str, set[str]] = {}
    for _ in range(traces):
        with tracer.start_as_current_span("emit", attributes={"chain.id": "E1", "chain.category": "infrastructure"}) as root:
            ctx = root.get_span_context()
            ids = out.setdefault(f"{ctx.trace_id:032x}", {f"{ctx.span_id:016x}"})
            for i in range(spans_per_trace - 1):
                with tracer.start_as_current_span(f"child-{i}") as child:
                    ids.add(f"{child.get_span_context().span_id:016x}")
    provider.shutdown()
    if failures:
        raise RuntimeError(f"{sum(failures)} spans were not accepted by {endpoint}")
    return out


def analyzer_span_ids(analyzer_url: str, trace_ids) -> Counter[str]:
    """How often the analyzer stored each span ID (``span_id`` of ``/api/v1/chains/events``) of
    the given traces (32-hex trace IDs)."""
    import uuid

    counts: Counter[str] = Counter()
    with httpx.Client(base_url=analyzer_url, timeout=30) as client:
        for trace_id in trace_ids:
            response = client.get(f"/api/v1/chains/events/{uuid.UUID(hex=trace_id)}")
            if response.status_code == 200:
                counts.update(str(e["span_id"]) for e in response.json()["events"])
    return counts


def wait_for(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.5) -> bool:
    """Poll ``condition`` until it is true or ``timeout_s`` seconds have passed; returns the last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
