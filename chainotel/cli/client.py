"""``chainotel trace|health|monitor|anomalies|impact|bottlenecks``: a command-line client of the analyzer API.

Readable rich tables by default, ``--json`` for scripts (the analyzer's JSON, unchanged). The
analyzer is found at ``--analyzer URL`` or ``CHAINOTEL_ANALYZER_URL`` (default
``http://127.0.0.1:4318``, where ``chainotel-analyzer serve`` listens). An analyzer with
authentication (docs/security.md) needs a token with the ``read`` scope in ``CHAINOTEL_TOKEN``,
sent as ``Authorization: Bearer <token>``. Register the commands on a
typer app with :func:`register`::

    from chainotel.cli import client
    client.register(app)

Endpoints used (the analyzer's analysis API): ``/api/v1/traces/{instance_id}/critical-path``,
``/api/v1/analytics/chains/health/overview``, ``/api/v1/analytics/performance/real-time``,
``/api/v1/analytics/anomalies/detect``, ``/api/v1/analytics/services/{service}/impact``,
``/api/v1/analytics/bottlenecks``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from typing import Any

import httpx
import typer
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from chainotel.settings import DistroSettings

DEFAULT_ANALYZER_URL = DistroSettings.model_fields["analyzer_url"].default
TOKEN_ENV = "CHAINOTEL_TOKEN"
"""Environment variable holding the bearer token the CLI sends (unset: none)."""

PATHS = {
    "critical_path": "/api/v1/traces/{instance_id}/critical-path",
    "health": "/api/v1/analytics/chains/health/overview",
    "realtime": "/api/v1/analytics/performance/real-time",
    "anomalies": "/api/v1/analytics/anomalies/detect",
    "impact": "/api/v1/analytics/services/{service}/impact",
    "bottlenecks": "/api/v1/analytics/bottlenecks",
}
"""Analyzer API paths, in one place."""

console = Console()


class AnalyzerError(Exception):
    """The analyzer could not be reached or refused the request; the message says what to do."""


class AnalyzerClient:
    """Thin synchronous client of the analyzer's JSON API.

    ``base_url`` e.g. ``http://127.0.0.1:4318``. Every method returns the decoded JSON and raises
    :class:`AnalyzerError` when the analyzer is unreachable (connection refused, timeout) or answers
    4xx/5xx (the message carries the analyzer's ``detail``).

    ``token``: the bearer token to send (default: ``$CHAINOTEL_TOKEN``; empty sends none).

    ``timeout_s``: seconds each request may take, for each of connecting, writing, reading and
    waiting for a pooled connection (httpx's ``timeout``).

    >>> AnalyzerClient("http://127.0.0.1:4318").critical_path("0af7651916cd43dd8448eb211c80319c")  # doctest: +SKIP
    """

    def __init__(self, base_url: str = DEFAULT_ANALYZER_URL, timeout_s: float = 10.0, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        token = token if token is not None else DistroSettings.from_env().token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, headers=headers)

    def close(self) -> None:
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` with the non-None ``params``; see the class doc for errors."""
        return self.send("GET", path, params={k: v for k, v in params.items() if v is not None})

    def send(self, method: str, path: str, params: dict | None = None, body: Any = None) -> Any:
        """``method`` ``path`` with query ``params`` and a JSON ``body``; the decoded JSON answer
        (see the class doc for errors)."""
        try:
            response = self._http.request(method, path, params=params, json=body)
        except httpx.TransportError as exc:
            raise AnalyzerError(
                f"cannot reach the chainotel analyzer at {self.base_url} ({type(exc).__name__}: {exc}). "
                "Start it with `chainotel-analyzer serve`, or point --analyzer / CHAINOTEL_ANALYZER_URL at it."
            ) from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            hint = ""
            if response.status_code in (401, 403):
                hint = f" (set {TOKEN_ENV} to a token with the 'read' scope)"
            raise AnalyzerError(f"analyzer answered {response.status_code} for {path}: {_detail_text(detail)}{hint}")
        return response.json()

    def critical_path(self, instance_id: str) -> dict:
        return self.get(PATHS["critical_path"].format(instance_id=instance_id))

    def health(self) -> dict:
        return self.get(PATHS["health"])

    def realtime(self) -> dict:
        return self.get(PATHS["realtime"])

    def anomalies(self) -> dict:
        return self.get(PATHS["anomalies"])

    def impact(self, service: str) -> dict:
        return self.get(PATHS["impact"].format(service=service))

    def bottlenecks(self, since: str, until: str | None = None, chain: str | None = None, group_by: str | None = None,
                    baseline_since: str | None = None, baseline_until: str | None = None) -> dict:
        """Bottleneck ranking; times are RFC 3339 or Unix seconds (see :func:`relative_to_unix_seconds`)."""
        return self.get(PATHS["bottlenecks"], since=since, until=until, chain=chain, group_by=group_by,
                        baseline_since=baseline_since, baseline_until=baseline_until)


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):  # FastAPI validation errors
        return "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail if isinstance(d, dict))
    return str(detail)


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")


def relative_to_unix_seconds(value: str | None, now: float | None = None) -> str | None:
    """A time query parameter for the analyzer: ``15m`` / ``2h`` / ``1d`` / ``30s`` (that long before
    ``now``, Unix seconds, default the current time) becomes Unix seconds as a decimal string; RFC 3339
    or Unix seconds pass through unchanged (the analyzer parses both). ``None`` stays ``None``.

    >>> relative_to_unix_seconds("15m", now=1_000_000.0)
    '999100'
    """
    if value is None:
        return None
    m = _RELATIVE.match(value.strip())
    if not m:
        return value
    seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return str(int((time.time() if now is None else now) - seconds))


# --- rendering -----------------------------------------------------------------------------------

def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))[:60]
    return "" if value is None else str(value)


def records_table(title: str, rows: Iterable[dict], preferred: list[str] | None = None, limit: int = 50) -> Table:
    """A table of dict rows: the ``preferred`` columns that occur first, then the other scalar keys."""
    rows = list(rows)
    # with no rows, the preferred columns still show, so the empty table and its caption render
    keys: list[str] = [k for k in preferred or [] if not rows or any(k in r for r in rows)]
    for row in rows:
        keys += [k for k, v in row.items() if k not in keys and not isinstance(v, (list, dict))]
    table = Table(title=title, title_justify="left")
    for key in keys:
        table.add_column(key, justify="right" if rows and isinstance(rows[0].get(key), (int, float)) else "left")
    for row in rows[:limit]:
        table.add_row(*(_fmt(row.get(k)) for k in keys))
    if not rows:
        table.caption = "no data"
    return table


def waterfall(doc: dict, width: int = 40, min_share: float = 0.01) -> Group:
    """Render a ``/critical-path`` answer: the span waterfall (offset, duration, self and critical
    time, all in ms) with a bar per span, the critical path per root, and the per-service share.

    Spans shorter than ``min_share`` of the trace that are off the critical path are hidden, and
    consecutive critical sections of the same span are joined; captions say how many were left out.
    """
    all_spans = sorted(doc.get("spans", []), key=lambda s: s["start_unix_nano"])
    t0 = min((s["start_unix_nano"] for s in all_spans), default=0)
    t1 = max((s["start_unix_nano"] + s["duration_ns"] for s in all_spans), default=t0 + 1)
    scale = width / max(t1 - t0, 1)
    depth: dict[str, int] = {}
    for s in all_spans:
        depth[s["span_id"]] = depth.get(s.get("parent_span_id") or "", -1) + 1
    floor = min_share * (t1 - t0)
    spans = [s for s in all_spans if max(s.get("critical_time_ns", 0), s["duration_ns"]) >= floor]
    table = Table(title=f"trace {doc.get('trace_id', '')}  chain {doc.get('chain') or '-'}  "
                        f"{doc.get('duration_ms', 0):.1f} ms", title_justify="left")
    for col, justify in (("service", "left"), ("operation", "left"), ("start ms", "right"), ("dur ms", "right"),
                         ("self ms", "right"), ("critical ms", "right"), ("", "left")):
        table.add_column(col, justify=justify)
    for s in spans:
        start = int((s["start_unix_nano"] - t0) * scale)
        length = max(1, int(s["duration_ns"] * scale))
        bar = Text(" " * start)
        bar.append("█" * length, style="red" if s.get("critical_time_ns") else "cyan")
        table.add_row(s.get("service", ""), "  " * depth[s["span_id"]] + s.get("operation", ""),
                      f"{(s['start_unix_nano'] - t0) / 1e6:.1f}", f"{s['duration_ns'] / 1e6:.1f}",
                      f"{s.get('self_time_ns', 0) / 1e6:.1f}", f"{s.get('critical_time_ns', 0) / 1e6:.1f}", bar)
    if len(spans) < len(all_spans):
        table.caption = f"{len(all_spans) - len(spans)} short spans off the critical path hidden (--json shows all)"
    parts: list[Any] = [table]
    for i, root in enumerate(doc.get("roots", [])):
        crit = Table(title=("critical path" if i == 0 else f"critical path of detached subtree {root.get('root_span_id')}"),
                     title_justify="left")
        for col in ("service", "operation", "ms on critical path"):
            crit.add_column(col, justify="right" if col.startswith("ms") else "left")
        joined: list[list] = []  # [span_id, service, operation, ns]
        for sec in root.get("sections", []):
            ns = sec["end_unix_nano"] - sec["start_unix_nano"]
            if joined and joined[-1][0] == sec["span_id"]:
                joined[-1][3] += ns
            else:
                joined.append([sec["span_id"], sec["service"], sec["operation"], ns])
        shown = [j for j in joined if j[3] >= floor]
        for _, service, operation, ns in shown:
            crit.add_row(service, operation, f"{ns / 1e6:.1f}")
        if len(shown) < len(joined):
            crit.caption = f"{len(joined) - len(shown)} sections under {min_share:.0%} of the trace hidden"
        parts.append(crit)
        parts.append(records_table("critical time by service", root.get("by_service", []), ["service", "critical_ms", "share"]))
    return Group(*parts)


def _list_of(doc: Any, *keys: str) -> list[dict]:
    """The first list found under one of ``keys`` (or the doc itself when it is a list)."""
    if isinstance(doc, list):
        return doc
    for key in keys:
        if isinstance(doc.get(key), list):
            return doc[key]
    return []


HEALTH_COLUMNS = ["chain", "name", "status", "score", "traces", "throughput_per_min", "error_rate",
                  "p50_ms", "p95_ms", "p99_ms", "sla_compliance", "max_duration_ms"]
BOTTLENECK_COLUMNS = ["service", "operation", "critical_ms_per_trace", "share", "p95_ms", "delta_ms_per_trace", "score"]


def health_table(doc: dict, with_no_data: bool = False) -> Table:
    """Chains of a health overview; chains without traces (status ``no_data``) only on request."""
    rows = [r for r in _list_of(doc, "chains") if with_no_data or r.get("status") != "no_data"]
    table = records_table("chain health", rows, HEALTH_COLUMNS)
    summary = doc.get("summary") or {}
    if summary:
        table.caption = "  ".join(f"{k} {v}" for k, v in summary.items())
    return table


def bottleneck_table(doc: dict, title: str = "bottlenecks") -> Table:
    caption = f"{doc.get('traces', 0)} traces"
    table = records_table(title, doc.get("ranking", []), BOTTLENECK_COLUMNS)
    table.caption = caption if doc.get("ranking") else f"{caption}, no data"
    return table


def anomalies_table(doc: dict) -> Table:
    return records_table("anomalies", _list_of(doc, "anomalies"),
                         ["scope", "key", "metric", "direction", "severity", "value", "baseline_mean", "z_score"])


# --- commands --------------------------------------------------------------------------------------

AnalyzerOpt = typer.Option(DEFAULT_ANALYZER_URL, "--analyzer", envvar=DistroSettings.env_name("analyzer_url"),
                           help=DistroSettings.model_fields["analyzer_url"].description)
JsonOpt = typer.Option(False, "--json", help="Print the analyzer's JSON instead of tables.")


def _run(analyzer: str, as_json: bool, fetch, render) -> None:
    client = AnalyzerClient(analyzer)
    try:
        doc = fetch(client)
    except AnalyzerError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    finally:
        client.close()
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
    else:
        console.print(render(doc))


def trace(instance_id: str = typer.Argument(..., help="Chain instance ID: a UUID or 32 hex digits (the trace ID)."),
          analyzer: str = AnalyzerOpt, as_json: bool = JsonOpt) -> None:
    """Waterfall and critical path of one chain instance (trace)."""
    def render(doc: dict):
        link = f"console: {analyzer.rstrip('/')}/ui/traces/{doc.get('instance_id') or doc.get('trace_id', '')}"
        return Group(waterfall(doc), Text(link, no_wrap=True, overflow="ignore"))

    _run(analyzer, as_json, lambda c: c.critical_path(instance_id), render)


def health(all_chains: bool = typer.Option(False, "--all", help="Also list chains without traces (no_data)."),
           analyzer: str = AnalyzerOpt, as_json: bool = JsonOpt) -> None:
    """Health of every chain over the last hour: throughput, error rate, p50/p95/p99, SLA compliance, score, status."""
    _run(analyzer, as_json, lambda c: c.health(), lambda doc: health_table(doc, all_chains))


def anomalies(analyzer: str = AnalyzerOpt, as_json: bool = JsonOpt) -> None:
    """Chains and services whose latency, error rate or throughput left their recent baseline."""
    _run(analyzer, as_json, lambda c: c.anomalies(), anomalies_table)


def impact(service: str = typer.Argument(..., help="service.name, e.g. ai-provider"),
           analyzer: str = AnalyzerOpt, as_json: bool = JsonOpt) -> None:
    """The chains a service takes part in and its share of their critical path."""
    def render(doc: dict):
        return records_table(f"impact of {service}", _list_of(doc, "chains"),
                             ["chain", "traces", "traces_with_service", "critical_ms_per_trace", "share", "p95_ms"])
    _run(analyzer, as_json, lambda c: c.impact(service), render)


def bottlenecks(chain: str = typer.Option(None, "--chain", help="Chain definition ID, e.g. A2; all chains if omitted."),
                since: str = typer.Option("15m", "--since", help="Window start: 15m / 2h / 1d ago, RFC 3339 or Unix seconds."),
                until: str = typer.Option(None, "--until", help="Window end (default now)."),
                group_by: str = typer.Option(None, "--group-by", help="service or operation."),
                baseline_since: str = typer.Option(None, "--baseline-since", help="Baseline window start: rank by increase."),
                baseline_until: str = typer.Option(None, "--baseline-until", help="Baseline window end."),
                analyzer: str = AnalyzerOpt, as_json: bool = JsonOpt) -> None:
    """Services/operations ranked by their contribution to the critical path ("what holds it back?")."""
    _run(analyzer, as_json,
         lambda c: c.bottlenecks(relative_to_unix_seconds(since), relative_to_unix_seconds(until), chain, group_by,
                                 relative_to_unix_seconds(baseline_since), relative_to_unix_seconds(baseline_until)),
         lambda doc: bottleneck_table(doc, f"bottlenecks{' of ' + chain if chain else ''} since {since}"))


def monitor(interval: float = typer.Option(2.0, "--interval", min=0.2, help="Seconds between refreshes."),
            count: int = typer.Option(30, "--count", min=1, help="Number of refreshes before exiting (bounded)."),
            analyzer: str = AnalyzerOpt, as_json: bool = JsonOpt) -> None:
    """A refreshing view of chain health and real-time performance; stops after --count refreshes or Ctrl-C."""
    from rich.live import Live

    client = AnalyzerClient(analyzer)

    def frame():
        rt = client.realtime()
        doc = client.health()
        if as_json:
            return {"health": doc, "real_time": rt}
        summary = Text(f"active chains {rt.get('active_chains', '-')}   average duration "
                       f"{_fmt(rt.get('avg_duration_ms'))} ms   {time.strftime('%H:%M:%S')}", style="bold")
        return Group(summary, health_table(doc))

    try:
        if as_json:
            for i in range(count):
                typer.echo(json.dumps(frame()))
                if i + 1 < count:
                    time.sleep(interval)
            return
        with Live(frame(), console=console, refresh_per_second=4) as live:
            for _ in range(count - 1):
                time.sleep(interval)
                live.update(frame())
    except AnalyzerError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from exc
    except KeyboardInterrupt:
        pass
    finally:
        client.close()


def register(app: typer.Typer) -> None:
    """Add ``trace``, ``health``, ``monitor``, ``anomalies``, ``impact`` and ``bottlenecks`` to ``app``."""
    for fn in (trace, health, monitor, anomalies, impact, bottlenecks):
        app.command(fn.__name__)(fn)
