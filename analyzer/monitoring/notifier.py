"""Delivery of alerts to Prometheus Alertmanager (API v2) and to generic webhooks.

What is sent, and when, follows Prometheus' rule manager
(``rules/alerting.go``: ``sendAlerts``/``needsSending``, and ``notifier``):

- pending alerts are never sent;
- a firing alert is sent when it starts firing and again every ``alert_resend_interval_s``, with
  ``startsAt`` = when it fired and ``endsAt`` = now + 4 × max(resend interval, evaluation interval)
  (so Alertmanager resolves it by itself if the analyzer goes away);
- a resolved alert is sent at once with ``endsAt`` = its resolution time, then re-sent on the same
  interval for :data:`RESOLVED_RETENTION_S` (Alertmanager may have missed the first).

Alertmanager gets ``POST <url>/api/v2/alerts`` with a JSON list of
``{"labels", "annotations", "startsAt", "endsAt", "generatorURL"}``
(https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml). A webhook gets the JSON
Alertmanager's own webhook receiver posts (``version`` "4", ``status``, ``alerts`` with ``status`` and
``fingerprint``, group and common labels; https://prometheus.io/docs/alerting/latest/configuration/#webhook_config).

Each destination has its own thread and a small queue: the evaluator hands batches over without
waiting; a failed delivery is retried with exponential backoff (0.5 s doubling, at most 30 s, at most
``alert_notify_max_retries`` times) unless a newer batch for that destination is waiting (it carries
the current state). Nothing here is on the ingest path.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone

import httpx

from chainotel_analyzer.analysis.alerts import FIRING, RESOLVED, Alert

log = logging.getLogger(__name__)

RESOLVED_RETENTION_S = 15 * 60
"""Resolved alerts are re-sent this long (Prometheus' ``resolvedRetention``)."""

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0
QUEUE_BATCHES = 16
"""Batches waiting per destination; the oldest is dropped when full (a newer batch supersedes it)."""


def rfc3339(ns: int) -> str:
    """Unix ns → RFC 3339 UTC with milliseconds (``2026-12-01T13:37:27.123Z``)."""
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def redacted(url: str) -> str:
    """``url`` without user info and query (they may hold credentials), for logs and responses."""
    u = httpx.URL(url)
    return str(u.copy_with(username=None, password=None, query=None))


@dataclass(frozen=True)
class Links:
    """Base URLs for annotations: ``console`` (the analyzer as users reach it), ``jaeger`` (Jaeger UI, '' if none)."""

    console: str
    jaeger: str = ""

    def console_url(self, alert: Alert) -> str:
        return f"{self.console}/ui/alerts?chain={alert.chain}"

    def jaeger_url(self, alert: Alert) -> str:
        return f"{self.jaeger.rstrip('/')}/trace/{alert.trace_id}" if self.jaeger and alert.trace_id else ""


def labels(alert: Alert) -> dict[str, str]:
    """Alertmanager labels: ``alertname``, ``chain``, ``category``, ``severity`` and ``service`` when one
    service is to blame."""
    out = {"alertname": alert.alertname, "chain": alert.chain, "category": alert.category, "severity": alert.severity}
    if alert.service:
        out["service"] = alert.service
    return out


def postable_alert(alert: Alert, links: Links, now_ns: int, valid_for_s: float) -> dict:
    """One alert as Alertmanager's ``postableAlert``; ``valid_for_s``: how long a firing alert holds
    without being re-sent (``endsAt`` = now + that)."""
    annotations = {"summary": alert.summary, "description": alert.description, "console_url": links.console_url(alert),
                   "value": f"{alert.value:g}", "threshold": f"{alert.threshold:g}", "alert_id": alert.alert_id}  # fmt: skip
    if alert.trace_id:
        annotations["trace_id"] = alert.trace_id
    jaeger = links.jaeger_url(alert)
    if jaeger:
        annotations["jaeger_url"] = jaeger
    if alert.note:
        annotations["resolution_note"] = alert.note
    ends = alert.resolved_at_ns if alert.state == RESOLVED else now_ns + int(valid_for_s * 1e9)
    return {
        "labels": labels(alert), "annotations": annotations, "startsAt": rfc3339(alert.fired_at_ns or alert.active_at_ns),
        "endsAt": rfc3339(ends), "generatorURL": links.console_url(alert),
    }  # fmt: skip


def fingerprint(label_set: dict[str, str]) -> str:
    """A stable 16-hex ID of a label set (Alertmanager computes its own; this one only names the alert
    in webhook payloads)."""
    text = "\xff".join(f"{k}\xfe{v}" for k, v in sorted(label_set.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def webhook_payload(postable: list[dict], statuses: list[str], external_url: str) -> dict:
    """Alertmanager's webhook JSON (version 4) for a batch of postable alerts, whose ``statuses`` are
    'firing' or 'resolved'."""
    alerts = [{**a, "status": st, "fingerprint": fingerprint(a["labels"])} for a, st in zip(postable, statuses)]
    common = dict(alerts[0]["labels"]) if alerts else {}
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
    common_ann = dict(alerts[0]["annotations"]) if alerts else {}
    for a in alerts[1:]:
        common_ann = {k: v for k, v in common_ann.items() if a["annotations"].get(k) == v}
    return {
        "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": "chainotel", "groupLabels": {}, "commonLabels": common, "commonAnnotations": common_ann,
        "externalURL": external_url, "alerts": alerts,
    }  # fmt: skip


@dataclass
class Destination:
    """One receiver: ``url`` to POST to, ``kind`` 'alertmanager' or 'webhook'; delivery counters."""

    url: str
    kind: str
    sent: int = 0
    failed: int = 0
    last_error: str = ""
    queue: queue.Queue = field(default_factory=lambda: queue.Queue(QUEUE_BATCHES))


class Notifier:
    """Sends alerts to every configured destination from background threads (see module docstring).

    ``alertmanager_urls``: base URLs (``/api/v2/alerts`` is appended); ``webhook_urls``: full URLs;
    ``links``: for annotations; ``valid_for_s``: ``endsAt`` horizon of firing alerts;
    ``resend_interval_s``; ``timeout_s`` per POST; ``max_retries``.
    """

    def __init__(self, alertmanager_urls: list[str], webhook_urls: list[str], links: Links, valid_for_s: float,
                 resend_interval_s: float, timeout_s: float = 5.0, max_retries: int = 5):  # fmt: skip
        self.destinations = [Destination(u + "/api/v2/alerts", "alertmanager") for u in alertmanager_urls]
        self.destinations += [Destination(u, "webhook") for u in webhook_urls]
        self.links = links
        self.valid_for_s = valid_for_s
        self.resend_interval_s = resend_interval_s
        self.max_retries = max_retries
        self._last_sent: dict[str, int] = {}  # alert_id -> ns of last send
        self._sent_resolved: set[str] = set()
        self._stop = threading.Event()
        self._http = httpx.Client(timeout=timeout_s)
        self._threads = [threading.Thread(target=self._run, args=(d,), name=f"chainotel-notify-{i}", daemon=True)
                         for i, d in enumerate(self.destinations)]  # fmt: skip

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Stop the threads (a delivery in flight ends within its timeout); idempotent."""
        self._stop.set()
        for d in self.destinations:
            try:
                d.queue.put_nowait(None)
            except queue.Full:
                pass
        for t in self._threads:
            if t.is_alive():
                t.join(10)
        self._http.close()

    def due(self, alerts: list[Alert], now_ns: int) -> list[Alert]:
        """Those of ``alerts`` to send at ``now_ns`` (Prometheus' ``needsSending``), marked as sent."""
        out = []
        resend_ns = int(self.resend_interval_s * 1e9)
        for a in alerts:
            if a.state == FIRING:
                last = self._last_sent.get(a.alert_id)
                if last is None or now_ns - last >= resend_ns:
                    out.append(a)
            elif a.state == RESOLVED and a.fired_at_ns and now_ns - a.resolved_at_ns <= RESOLVED_RETENTION_S * 1e9:
                last = self._last_sent.get(a.alert_id)
                if a.alert_id not in self._sent_resolved or last is None or now_ns - last >= resend_ns:
                    self._sent_resolved.add(a.alert_id)
                    out.append(a)
        for a in out:
            self._last_sent[a.alert_id] = now_ns
        return out

    def notify(self, alerts: list[Alert], now_ns: int) -> int:
        """Queue the due ones of ``alerts`` (the current alerts of every chain) for every destination;
        never blocks. Returns how many alerts were queued."""
        batch = self.due(alerts, now_ns)
        if not batch or not self.destinations:
            return 0
        postable = [postable_alert(a, self.links, now_ns, self.valid_for_s) for a in batch]
        item = (postable, ["resolved" if a.state == RESOLVED else "firing" for a in batch])
        for d in self.destinations:
            while True:
                try:
                    d.queue.put_nowait(item)
                    break
                except queue.Full:
                    try:
                        d.queue.get_nowait()  # drop the oldest: the newer batch carries the current state
                    except queue.Empty:
                        pass
        return len(batch)

    def _run(self, d: Destination) -> None:
        while not self._stop.is_set():
            item = d.queue.get()
            if item is None:
                return
            postable, statuses = item
            body = postable if d.kind == "alertmanager" else webhook_payload(postable, statuses, self.links.console)
            delay = BACKOFF_START_S
            for attempt in range(self.max_retries + 1):
                try:
                    r = self._http.post(d.url, json=body)
                    if r.status_code < 300:
                        d.sent += len(postable)
                        break
                    d.last_error = f"HTTP {r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as exc:
                    d.last_error = f"{type(exc).__name__}: {exc}"
                d.failed += 1
                if attempt == self.max_retries or not d.queue.empty() or self._stop.wait(delay):
                    log.warning("alert delivery to %s failed (%s)", redacted(d.url), d.last_error)
                    break
                delay = min(BACKOFF_MAX_S, delay * 2)
