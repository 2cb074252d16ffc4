"""Chain traffic for the console tests, as OTLP/JSON bodies for ``POST /v1/traces``, with what each
trace is known to be (so a test can compute the expected answer without asking the analyzer).

A trace is ``gateway`` (server, root) → ``gateway`` (client) → ``backend`` (server) and, when
``with_db``, ``backend`` → ``db`` (client span with ``peer.service``, and a ``db`` server span); the
root carries ``enduser.id``; an error trace has its backend span in status ERROR with an exception
event.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Planned:
    """What one generated trace is: its ``trace_id``, first span start (Unix **ns**), duration (**ns**),
    ``error``, ``user_id`` and ``services``."""

    trace_id: str
    start_ns: int
    duration_ns: int
    error: bool
    user_id: str
    services: tuple[str, ...]


@dataclass
class Traffic:
    """Accumulates traces and renders them as one OTLP/JSON body per service."""

    planned: list[Planned] = field(default_factory=list)
    _spans: dict[str, list[dict]] = field(default_factory=dict)

    def add(self, chain: str, trace_no: int, start_ns: int, duration_ms: float, error: bool = False,
            user_id: str = "", with_db: bool = False, salt: int = 0xC0) -> Planned:  # fmt: skip
        """Add one trace of ``chain``; IDs derive from ``salt``, ``trace_no`` and ``start_ns``."""
        tid = f"{salt:02x}{start_ns // 10**9:014x}{trace_no:016x}"
        dur = int(duration_ms * 1e6)
        ms = 10**6
        base = trace_no * 16
        attrs = [{"key": "chain.id", "value": {"stringValue": chain}}]

        def span(n, parent, name, kind, s, e, service, extra=(), status=None, events=None):
            d = {"traceId": tid, "spanId": f"{base + n:016x}", "name": name, "kind": kind,
                 "startTimeUnixNano": str(s), "endTimeUnixNano": str(e), "attributes": attrs + list(extra)}  # fmt: skip
            if parent:
                d["parentSpanId"] = f"{base + parent:016x}"
            if status:
                d["status"] = status
            if events:
                d["events"] = events
            self._spans.setdefault(service, []).append(d)

        user = [{"key": "enduser.id", "value": {"stringValue": user_id}}] if user_id else []
        span(1, 0, "GET /checkout", 2, start_ns, start_ns + dur, "gateway",
             user + [{"key": "http.route", "value": {"stringValue": "/checkout"}}])
        span(2, 1, "GET backend", 3, start_ns + ms // 2, start_ns + dur - ms // 2, "gateway",
             [{"key": "peer.service", "value": {"stringValue": "backend"}}])
        err = {"code": 2, "message": "payment declined"} if error else None
        events = [{"timeUnixNano": str(start_ns + ms), "name": "exception", "attributes": [
            {"key": "exception.type", "value": {"stringValue": "PaymentError"}},
            {"key": "exception.message", "value": {"stringValue": "payment declined"}}]}] if error else None  # fmt: skip
        span(3, 2, "POST /pay", 2, start_ns + ms, start_ns + dur - ms, "backend", status=err, events=events)
        services = ("backend", "gateway")
        if with_db:
            db_end = start_ns + ms + (dur - 2 * ms) * 3 // 4
            span(4, 3, "SELECT orders", 3, start_ns + ms + ms // 4, db_end, "backend",
                 [{"key": "peer.service", "value": {"stringValue": "db"}}])
            span(5, 4, "query", 2, start_ns + ms + ms // 2, db_end - ms // 4, "db")
            services = ("backend", "db", "gateway")
        planned = Planned(tid, start_ns, dur, error, user_id, services)
        self.planned.append(planned)
        return planned

    def bodies(self) -> list[dict]:
        """One OTLP/JSON ``ExportTraceServiceRequest`` per service, then forgets the spans (not ``planned``)."""
        out = [{"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": svc}}]},
                                   "scopeSpans": [{"scope": {"name": "console-test"}, "spans": spans}]}]}
               for svc, spans in self._spans.items()]  # fmt: skip
        self._spans = {}
        return out

    def send(self, client) -> None:
        """POST every body to ``client`` (an ``httpx.Client`` on the analyzer); asserts 200."""
        for body in self.bodies():
            r = client.post("/v1/traces", json=body)
            assert r.status_code == 200, r.text
