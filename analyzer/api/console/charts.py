"""Inline SVG charts drawn on the server: a sparkline, a time-series chart with an SLA line, and a
layered service graph. Pure functions from plain numbers to markup (``markupsafe.Markup``, every
text escaped); nothing is fetched by the browser, so the pages work offline.

Coordinates are SVG user units; the charts scale with their container (``viewBox`` plus
``width: 100%`` in the stylesheet).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timezone

from markupsafe import Markup, escape

SERIES_CLASSES = ("s0", "s1", "s2", "s3")
"""CSS classes of the series, in order (colours in ``static/console.css``)."""


def _path(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))


def _lines(cls: str, points: Sequence[tuple[float, float] | None], dot_r: float) -> list[str]:
    """SVG for ``points`` (``None`` = a gap): a path per run of points, a dot for a lone point."""
    out, run = [], []
    for p in list(points) + [None]:
        if p is not None:
            run.append(p)
            continue
        if len(run) == 1:
            out.append(f'<circle class="{cls}" cx="{run[0][0]:.1f}" cy="{run[0][1]:.1f}" r="{dot_r}"/>')
        elif run:
            out.append(f'<path class="{cls}" d="{_path(run)}"/>')
        run = []
    return out


def sparkline(values: Sequence[float | None], sla: float | None, label: str, width: int = 120, height: int = 28) -> Markup:
    """A small latency line over ``values`` (one per time bucket, ``None`` = no traffic; **ms**) with a
    dashed line at ``sla`` (**ms**) when given; ``label`` is its accessible name."""
    top = max([v for v in values if v is not None] + ([sla] if sla else []) + [1e-9]) * 1.1
    n = max(len(values) - 1, 1)

    def y(v: float) -> float:
        return height - 2 - (height - 4) * v / top

    parts = [f'<svg class="spark" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">']
    if sla:
        parts.append(f'<line class="sla" x1="0" x2="{width}" y1="{y(sla):.1f}" y2="{y(sla):.1f}"/>')
    parts += _lines("s0", [None if v is None else (width * i / n, y(v)) for i, v in enumerate(values)], 1.5)
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice_top(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above ``value`` (a readable axis maximum)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _clock(ns: int, span_s: float) -> str:
    t = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    return t.strftime("%H:%M" if span_s <= 86400 else "%m-%d %H:%M")


def time_chart(
    title: str,
    since_ns: int,
    bucket_s: int,
    buckets: int,
    series: Sequence[tuple[str, dict[int, float]]],
    unit: str,
    sla: float | None = None,
    width: int = 480,
    height: int = 190,
) -> Markup:
    """A line chart of ``series`` (``[(name, {bucket index: value})]``, up to four) over ``buckets``
    buckets of ``bucket_s`` seconds from ``since_ns`` (Unix **ns**); a dashed ``sla`` line (same
    ``unit``) when given. Buckets missing from a series are gaps. Axis labels in UTC."""
    left, right, top_pad, bottom = 48, 8, 10, 22
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    values = [v for _, pts in series for v in pts.values()]
    top = _nice_top(max(values + ([sla * 1.05] if sla else []) + [0.0]))
    n = max(buckets - 1, 1)

    def x(i: float) -> float:
        return left + plot_w * i / n

    def y(v: float) -> float:
        return top_pad + plot_h * (1 - v / top)

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>"]  # fmt: skip
    for k in range(5):
        v = top * k / 4
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    span_s = buckets * bucket_s
    for k in range(5):
        i = n * k / 4
        ns = since_ns + int(i * bucket_s * 10**9)
        anchor = "start" if k == 0 else "end" if k == 4 else "middle"
        parts.append(f'<text class="axis" x="{x(i):.1f}" y="{height - 6}" text-anchor="{anchor}">{_clock(ns, span_s)}</text>')
    if sla:
        parts.append(f'<line class="sla" x1="{left}" x2="{width - right}" y1="{y(sla):.1f}" y2="{y(sla):.1f}">'
                     f"<title>SLA {sla:g} {escape(unit)}</title></line>")  # fmt: skip
    for (name, pts), cls in zip(series, SERIES_CLASSES):
        parts += _lines(cls, [None if pts.get(i) is None else (x(i), y(pts[i])) for i in range(buckets)], 2.5)
    parts.append("</svg>")
    legend = "".join(f'<span class="key {cls}">{escape(name)}</span>' for (name, _), cls in zip(series, SERIES_CLASSES))
    if sla:
        legend += f'<span class="key sla">SLA {sla:g} {escape(unit)}</span>'
    return Markup(f'<figure class="chart-box"><figcaption>{escape(title)} <span class="hint">({escape(unit)})</span> <span class="legend">{legend}</span>'
                  f'</figcaption>{"".join(parts)}</figure>')  # fmt: skip


def _layers(services: Sequence[str], edges: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Services in columns by their longest call distance from a service nobody calls (cycles broken
    by visiting each service once)."""
    callers: dict[str, set[str]] = {s: set() for s in services}
    callees: dict[str, list[str]] = {s: [] for s in services}
    for a, b in edges:
        if a != b and a in callers and b in callers:
            callers[b].add(a)
            callees[a].append(b)
    depth = {s: 0 for s in services if not callers[s]} or {sorted(services)[0]: 0} if services else {}
    frontier, seen_edges = list(depth), set()
    while frontier:
        nxt = []
        for a in frontier:
            for b in callees[a]:
                if (a, b) in seen_edges:
                    continue
                seen_edges.add((a, b))
                if depth.get(b, -1) < depth[a] + 1 and depth[a] + 1 < len(services):
                    depth[b] = depth[a] + 1
                    nxt.append(b)
        frontier = nxt
    for s in services:
        depth.setdefault(s, 0)
    columns: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for s in sorted(services):
        columns[depth[s]].append(s)
    return columns


def service_graph(nodes: Sequence[dict], edges: Sequence[dict], share: dict[str, float], href=None) -> Markup:
    """The service graph as SVG: one box per node (``{"service", "spans", "errors"}``) with its share
    of the critical path (``share``: service → 0–1), one arrow per edge (``{"caller", "callee",
    "calls"}``) labelled with its calls; ``href(service)`` makes each box a link."""
    services = [n["service"] for n in nodes]
    columns = _layers(services, [(e["caller"], e["callee"]) for e in edges])
    box_w, box_h, gap_x, gap_y = 150, 46, 70, 18
    rows = max((len(c) for c in columns), default=1)
    width = max(len(columns), 1) * (box_w + gap_x) - gap_x + 20
    height = rows * (box_h + gap_y) - gap_y + 20
    pos: dict[str, tuple[float, float]] = {}
    for ci, col in enumerate(columns):
        offset = (height - 20 - (len(col) * (box_h + gap_y) - gap_y)) / 2
        for ri, s in enumerate(col):
            pos[s] = (10 + ci * (box_w + gap_x), 10 + offset + ri * (box_h + gap_y))
    parts = [f'<svg class="graph" viewBox="0 0 {width} {height}" width="{width}" role="img" aria-label="service graph">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
             'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>']  # fmt: skip
    for e in edges:
        if e["caller"] not in pos or e["callee"] not in pos or e["caller"] == e["callee"]:
            continue
        (ax, ay), (bx, by) = pos[e["caller"]], pos[e["callee"]]
        x1, y1 = ax + box_w, ay + box_h / 2
        x2, y2 = (bx, by + box_h / 2) if bx > ax else (bx + box_w / 2, by if by > ay else by + box_h)
        label = f"{e['calls']} calls"
        parts.append(f'<g class="edge" data-caller="{escape(e["caller"])}" data-callee="{escape(e["callee"])}">'
                     f'<path d="M{x1:.0f},{y1:.0f} L{x2:.0f},{y2:.0f}" marker-end="url(#arrow)"/>'
                     f'<text x="{(x1 + x2) / 2:.0f}" y="{(y1 + y2) / 2 - 4:.0f}" text-anchor="middle">{label}</text></g>')  # fmt: skip
    for n in nodes:
        s = n["service"]
        x, y = pos[s]
        pct = share.get(s, 0.0) * 100
        err = " error" if n.get("errors") else ""
        box = (f'<rect x="{x:.0f}" y="{y:.0f}" width="{box_w}" height="{box_h}" rx="6"/>'
               f'<rect class="share" x="{x:.0f}" y="{y + box_h - 5:.0f}" width="{box_w * pct / 100:.1f}" height="5"/>'
               f'<text x="{x + 8:.0f}" y="{y + 18:.0f}" class="name">{escape(s[:20])}</text>'
               f'<text x="{x + 8:.0f}" y="{y + 35:.0f}">{pct:.0f}% of critical path</text>')  # fmt: skip
        inner = f'<g class="node{err}" data-service="{escape(s)}"><title>{escape(s)}: {n["spans"]} spans, {n.get("errors", 0)} errors</title>{box}</g>'
        parts.append(f'<a href="{escape(href(s))}">{inner}</a>' if href else inner)
    parts.append("</svg>")
    return Markup("".join(parts))
