"""Synthetic chain probes, judged by the trace they cause (as trace-based checks in Tracetest).

For each chain with a ``probe:`` key, every ``interval`` the :class:`Prober` sends the probe with a
fresh trace: ``traceparent`` and ``X-Chain-ID`` name a new random trace ID, and the W3C ``baggage``
entries ``chain.synthetic=true`` (the distro then writes ``chain.synthetic=true`` on every span of the
trace, in every service the baggage reaches) and ``chain.id=<chain>`` (the chain is decided, whatever
the catalog rules say) mark it. The
run is **up** when

1. the entry answered one of ``expect_status`` within ``timeout`` (WebSocket ``ws://``: the connection
   opened, the ``json`` message was sent, and a message — containing ``expect_message`` if given —
   arrived within ``timeout``), and
2. the probe's trace arrived within :attr:`~chainotel_analyzer.settings.AnalyzerSettings.probe_trace_wait_s`
   with a span of every one of the chain's ``expected_services``, and lasted at most ``max_duration_ms``.

Otherwise it is **down** with the reason: the status received, a timeout, a refused connection, which
expected service is missing, or how slow the trace was. Every run is stored in ``probe_results``; the
evaluator turns the latest run of each chain into the ``ChainProbeDown`` alert.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
from pydantic import ValidationError

from chainotel.catalog.models import ChainDefinition, Probe

from chainotel_analyzer.model.span import Span
from chainotel_analyzer.monitoring.evaluator import ProbeStatus
from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.interfaces import ChainRegistry, MonitorStore

log = logging.getLogger(__name__)

SYNTHETIC_BAGGAGE = "chain.synthetic=true"
RELOAD_S = 10.0
"""Chain definitions (and so probes) are re-read this often."""
TRACE_POLL_S = 0.25


def probe_headers(probe: Probe, chain: str, trace_id: str) -> dict[str, str]:
    """The request headers of one run: the probe's own, then trace context, X-Chain-ID and the baggage."""
    return {**probe.headers, "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
            "X-Chain-ID": str(uuid.UUID(trace_id)), "baggage": f"{SYNTHETIC_BAGGAGE},chain.id={chain}"}  # fmt: skip


def send_http(probe: Probe, headers: dict[str, str]) -> tuple[str, int, float]:
    """Send an HTTP probe: ``(reason or '', HTTP status or 0, answer time in ms)``."""
    started = time.perf_counter()
    try:
        kwargs = {"json": probe.json_body} if probe.json_body is not None else {}
        r = httpx.request(probe.method, probe.url, headers=headers, timeout=probe.timeout_s, **kwargs)
    except httpx.TimeoutException:
        return f"timeout: no answer within {probe.timeout_s:g} s", 0, (time.perf_counter() - started) * 1000
    except httpx.HTTPError as exc:
        return f"request failed: {type(exc).__name__}: {exc}", 0, (time.perf_counter() - started) * 1000
    ms = (time.perf_counter() - started) * 1000
    if r.status_code not in probe.expect_status:
        return f"HTTP {r.status_code} (expected {', '.join(map(str, probe.expect_status))})", r.status_code, ms
    return "", r.status_code, ms


def send_websocket(probe: Probe, headers: dict[str, str]) -> tuple[str, int, float]:
    """Send a WebSocket probe (connect, send, expect a message): ``(reason or '', 101 or 0, ms)``."""
    started = time.perf_counter()
    try:
        from websockets.sync.client import connect
    except ImportError:
        return "WebSocket probes need the websockets package", 0, 0.0
    try:
        with connect(probe.url, additional_headers=headers, open_timeout=probe.timeout_s,
                     close_timeout=1) as ws:  # fmt: skip
            if probe.json_body is not None:
                ws.send(probe.json_body if isinstance(probe.json_body, str) else json.dumps(probe.json_body))
            left = probe.timeout_s - (time.perf_counter() - started)
            message = ws.recv(timeout=max(0.01, left))
    except TimeoutError:
        return f"timeout: no message within {probe.timeout_s:g} s", 0, (time.perf_counter() - started) * 1000
    except Exception as exc:  # noqa: BLE001 - any failure to talk is the probe's finding
        return f"WebSocket failed: {type(exc).__name__}: {exc}", 0, (time.perf_counter() - started) * 1000
    ms = (time.perf_counter() - started) * 1000
    text = message if isinstance(message, str) else message.decode("utf-8", "replace")
    if probe.expect_message is not None and probe.expect_message not in text:
        return f"unexpected message {text[:80]!r} (expected it to contain {probe.expect_message!r})", 101, ms
    return "", 101, ms


def judge_trace(spans: list[Span], expected_services: list[str], max_duration_ms: float) -> str:
    """Why the probe's trace is not good ('' when it is): no spans, a missing expected service, too slow."""
    if not spans:
        return "no trace arrived"
    seen = {s.service for s in spans}
    missing = [s for s in expected_services if s not in seen]
    if missing:
        return f"trace lacks expected service(s) {', '.join(missing)}"
    took_ms = (max(s.end_ns for s in spans) - min(s.start_ns for s in spans)) / 1e6
    if took_ms > max_duration_ms:
        return f"too slow: trace took {took_ms:.0f} ms (SLA {max_duration_ms:g} ms)"
    return ""


class Prober:
    """Runs every chain's probe on its interval in background threads (at most ``workers`` at once);
    ``trace_spans(trace_id)`` reads a trace back (default: ``store``-independent reader given later)."""

    def __init__(self, settings: AnalyzerSettings, registry: ChainRegistry, store: MonitorStore,
                 trace_spans: Callable[[str], list[Span]] | None = None, workers: int = 4):  # fmt: skip
        self.settings = settings
        self.registry = registry
        self.store = store
        self.trace_spans = trace_spans
        self._latest: dict[str, dict] = {}
        self._due: dict[str, float] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="chainotel-probe")
        self._thread: threading.Thread | None = None
        self._chains: list[ChainDefinition] = []
        self._loaded = float("-inf")

    def start(self) -> None:
        with self._lock:
            self._latest = {r["chain"]: r for r in self.store.probe_results(None, 1)}
        self._thread = threading.Thread(target=self._run, name="chainotel-prober", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling; runs in flight end within their timeout and trace wait."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        self._pool.shutdown(wait=True, cancel_futures=True)

    def latest(self) -> dict[str, dict]:
        """Chain → its latest stored run (``probe_results`` row)."""
        with self._lock:
            return dict(self._latest)

    def status(self, chain: str) -> ProbeStatus | None:
        """The evaluator's view of ``chain``'s latest run (None before the first)."""
        with self._lock:
            r = self._latest.get(chain)
        return None if r is None else ProbeStatus(r["status"] == "down", r["reason"], r["trace_id"])

    def _run(self) -> None:
        while not self._stop.wait(min(1.0, self.settings.alert_eval_interval_s)):
            try:
                self._schedule()
            except Exception:  # noqa: BLE001 - the store may be away; try again
                log.exception("probe scheduling failed")

    def _schedule(self) -> None:
        now = time.monotonic()
        if now - self._loaded >= RELOAD_S:
            self._chains = []
            for row in self.registry.list():
                try:
                    d = ChainDefinition.model_validate(row["definition"])
                except ValidationError:
                    continue
                if d.probe is not None:
                    self._chains.append(d)
            self._loaded = now
        for d in self._chains:
            with self._lock:
                if d.id in self._running or now < self._due.get(d.id, 0.0):
                    continue
                self._running.add(d.id)
                self._due[d.id] = now + d.probe.interval_s
            self._pool.submit(self._probe, d)

    def _probe(self, d: ChainDefinition) -> None:
        try:
            row = self.run(d)
            self.store.save_probe_results([row])
            with self._lock:
                self._latest[d.id] = row
        except Exception:  # noqa: BLE001 - one failed run must not stop the others
            log.exception("probe of chain %s failed to run", d.id)
        finally:
            with self._lock:
                self._running.discard(d.id)

    def run(self, d: ChainDefinition) -> dict:
        """One run of ``d``'s probe; returns its ``probe_results`` row."""
        probe = d.probe
        trace_id = secrets.token_hex(16)
        checked_at = time.time_ns()
        send = send_websocket if probe.is_websocket else send_http
        reason, status, ms = send(probe, probe_headers(probe, d.id, trace_id))
        if not reason and self.trace_spans is not None:
            reason = self._wait_for_trace(trace_id, d)
        return {"chain": d.id, "checked_at_unix_nano": checked_at, "status": "down" if reason else "up",
                "reason": reason, "http_status": status, "duration_ms": ms, "trace_id": trace_id}  # fmt: skip

    def _wait_for_trace(self, trace_id: str, d: ChainDefinition) -> str:
        """Poll for the probe's trace until it is complete or ``probe_trace_wait_s`` has passed."""
        deadline = time.monotonic() + self.settings.probe_trace_wait_s
        verdict = "no trace arrived"
        while not self._stop.is_set():
            spans = self.trace_spans(trace_id)
            verdict = judge_trace(spans, d.expected_services, d.max_duration_ms)
            if not verdict or verdict.startswith("too slow") or time.monotonic() >= deadline:
                break
            time.sleep(TRACE_POLL_S)
        if verdict == "no trace arrived":
            verdict = f"no trace arrived within {self.settings.probe_trace_wait_s:g} s"
        return verdict
