"""The console's pages, rendered on the server from the same functions the JSON API answers with:
``/ui/`` (overview), ``/ui/chains/{chain}``, ``/ui/traces/{trace_id}``, ``/ui/services/{service}``;
``/`` redirects to ``/ui/``. Page state (time range, filters, baseline, sort, refresh) lives in the
query string. A bad parameter or an unknown ID renders an error page with the API's status and
reason.

Each page calls the API route functions in-process (so a page shows what the API says) and the
chart helpers of :mod:`.charts`; the chain page reads its window once and runs the analysis
functions (the API's bottleneck, critical-path, graph and recommendation endpoints are made of)
over one critical-path analysis and one attribution of call hops per trace, instead of one per
section, computing only what it shows (the per-operation critical path, not the call paths), while
its other sections' reads (series, baseline, anomalies, instances) run at the same time
(:mod:`.fanout`). The overview takes the health figures and its sparklines from one read of the
per-trace index. Both are sent in two parts (:func:`_streamed`): what is known before the store
answers goes out first.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from importlib.resources import files
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import escape

from chainotel.ids import InvalidInstanceId, format_instance_id, parse_instance_id

from chainotel_analyzer.analysis.aggregate import chain_operations
from chainotel_analyzer.analysis.attribution import attribute, critical_by_operation
from chainotel_analyzer.analysis.bottlenecks import group_contributions, rank_bottlenecks
from chainotel_analyzer.analysis.critical_path import analyze_trace
from chainotel_analyzer.analysis.graph import dependency_graph
from chainotel_analyzer.analysis.recommendations import recommend_attributed
from chainotel_analyzer.api import analytics as api
from chainotel_analyzer.api.chains import critical_path, trace_document
from chainotel_analyzer.api.common import known_chain
from chainotel_analyzer.api.console import charts, fanout, fmt
from chainotel_analyzer.api.console.auth import current_session
from chainotel_analyzer.api.console.timerange import PRESETS, TimeRange, form_time
from chainotel_analyzer.api.console.waterfall import span_details, waterfall
from chainotel_analyzer.api.deps import get_reader, get_registry, get_settings
from chainotel_analyzer.api.instances import chain_instances
from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.interfaces import DEFAULT_MAX_TRACES, ChainRegistry, TraceReader

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
"""The static files under ``/ui/static/`` (package data) and their media types."""

_env = Environment(loader=PackageLoader("chainotel_analyzer.api.console", "templates"),
                   autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)  # fmt: skip
_env.filters.update(pathq=lambda v: quote(str(v), safe=""), ms=fmt.ms, pct=fmt.pct, num=fmt.num, clock=fmt.clock, ns_ms=fmt.ns_ms)
_env.globals.update(presets=list(PRESETS), console_session=current_session.get)

OVERVIEW_COLUMNS = {
    "chain": "Chain", "status": "Health", "score": "Score", "sla_compliance": "SLA compliance", "p50_ms": "p50",
    "p95_ms": "p95", "error_rate": "Error rate", "throughput_per_min": "Throughput",
}  # fmt: skip
"""Sortable overview columns: query value → header."""

INSTANCE_PAGE = 20

REST_MARKER = "<!--chainotel:rest-->"
"""Where a streamed page's second part goes (:func:`_streamed`)."""


def _href(path: str, **params) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(kept) if kept else "")


def _render(template: str, status_code: int = 200, **ctx) -> HTMLResponse:
    return HTMLResponse(_env.get_template(template).render(**ctx), status_code=status_code)


def error_page(exc: HTTPException) -> HTMLResponse:
    """The error page for ``exc``: its status and reason."""
    return _render("error.html", exc.status_code, status=exc.status_code, detail=exc.detail,
                   title=f"{exc.status_code}", tr=None, base_params={}, path="/ui/")  # fmt: skip


def _guarded(page: Callable[..., HTMLResponse]) -> Callable[..., HTMLResponse]:
    """Turn the API's HTTPException (unknown ID 404, bad parameter 422) into an error page."""

    @functools.wraps(page)
    def wrapper(*args, **kwargs):
        try:
            return page(*args, **kwargs)
        except HTTPException as exc:
            return error_page(exc)

    return wrapper


def _range(range_: str | None, since: str | None, until: str | None) -> TimeRange:
    return TimeRange.from_query(range_, since, until)


@router.get("/", response_class=RedirectResponse)
def root() -> RedirectResponse:
    """The console is the analyzer's front page."""
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui", response_class=RedirectResponse)
def ui_no_slash() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=308)


@router.get("/ui/static/{name}")
def static(name: str) -> Response:
    """The console's stylesheet and script (package data; no third-party files)."""
    if name not in STATIC:
        raise HTTPException(404, f"no static file {name!r}")
    body = files("chainotel_analyzer.api.console").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"Cache-Control": "public, max-age=300"})


@router.get("/ui/", response_class=HTMLResponse)
@_guarded
def overview(
    request: Request,
    range_: str | None = Query(None, alias="range"),
    since: str | None = None,
    until: str | None = None,
    category: str | None = None,
    sort: str = "chain",
    dir_: str = Query("asc", alias="dir"),
    refresh: int = Query(0, ge=0, le=3600),
    reader: TraceReader = Depends(get_reader),
    registry: ChainRegistry = Depends(get_registry),
) -> Response:
    """Every chain of the registry with its health over the range, a p95 sparkline against its SLA,
    filter by category and sort by any column. Sent in two parts: the page's head (header, range
    form, title) at once, the figures when the store has read them."""
    tr = _range(range_, since, until)
    if sort not in OVERVIEW_COLUMNS:
        raise HTTPException(422, f"sort: {sort!r} is not one of {', '.join(OVERVIEW_COLUMNS)}")
    if dir_ not in ("asc", "desc"):
        raise HTTPException(422, "dir: asc or desc")
    base = {**tr.params(), "category": category, "refresh": refresh or None}
    headers = [{"key": k, "label": label, "href": _href("/ui/", **base, sort=k, dir="desc" if sort == k and dir_ == "asc" else "asc"),
                "sorted": (dir_ if sort == k else None)} for k, label in OVERVIEW_COLUMNS.items()]  # fmt: skip
    top = dict(title="Chains", path="/ui/", tr=tr, base_params={**base, "sort": sort, "dir": dir_}, headers=headers,
               category=category, refresh=refresh, form_time=form_time, range_query=urlencode(tr.params(), safe=":"))  # fmt: skip

    def figures() -> dict:
        # the API's health overview and the sparklines' buckets from one read of the per-trace index
        definitions = {d["id"]: d["definition"] for d in registry.list()}
        found, bucket_rows = reader.chain_overview(tr.since_ns, tr.until_ns, tr.bucket_s, api.slas(definitions))
        health = api.health_doc(definitions, found, tr.since_ns, tr.until_ns)
        categories = {k: d.get("category", "") for k, d in definitions.items()}
        rows = overview_rows(health["chains"], categories, bucket_rows, tr.buckets, category, sort, dir_)
        return dict(rows=rows, summary=health["summary"], window=health["window"],
                    categories=sorted({v for v in categories.values() if v}))  # fmt: skip

    # the head goes out at once: the browser sets the page up while the store reads the window
    return _streamed("overview.html", top, figures)


STATUS_RANK = {"unhealthy": 0, "degraded": 1, "healthy": 2, "no_data": 3}
"""The overview's order of health statuses, worst first (sort by ``status``)."""


def overview_rows(chains: list[dict], categories: dict[str, str], bucket_rows: list[dict], buckets: int,
                  category: str | None, sort: str, dir_: str) -> list[dict]:
    """The overview table: each chain of ``chains`` (the health overview's ``chains``) in ``category``
    (all when empty) with its ``category`` and a p95 sparkline over ``buckets`` buckets from
    ``bucket_rows`` (``chain``, ``bucket`` index, ``p95_ms``; a missing bucket is a gap), sorted by the
    column ``sort`` (a key of :data:`OVERVIEW_COLUMNS`; ``None`` after every value, ties by chain) ``asc``,
    or that order reversed for ``desc``."""
    series: dict[str, dict[int, float]] = {}
    for r in bucket_rows:
        series.setdefault(r["chain"], {})[int(r["bucket"])] = float(r["p95_ms"] or 0.0)
    rows = []
    for c in chains:
        cat = categories.get(c["chain"], "")
        if category and cat != category:
            continue
        points = series.get(c["chain"], {})
        values = [points.get(i) for i in range(buckets)]
        rows.append({**c, "category": cat, "spark": charts.sparkline(values, c["max_duration_ms"], f"{c['chain']} p95 over time")})

    def key(r):
        v = STATUS_RANK[r["status"]] if sort == "status" else r[sort]
        return (v is None, v if v is not None else 0, r["chain"])

    rows.sort(key=key, reverse=dir_ == "desc")
    return rows


def _baseline(tr: TimeRange, baseline: str, baseline_since: str | None, baseline_until: str | None) -> TimeRange | None:
    if baseline == "none":
        return None
    if baseline == "previous":
        return tr.previous()
    if baseline == "custom":
        return TimeRange.from_query("custom", baseline_since, baseline_until)
    raise HTTPException(422, "baseline: previous, custom or none")


def _min_duration(value: str | None) -> float:
    try:
        ms = float(value) if value and value.strip() else 0.0
    except ValueError:
        raise HTTPException(422, f"min_duration_ms: {value!r} is not a number of milliseconds") from None
    if not 0 <= ms <= 10**12:
        raise HTTPException(422, "min_duration_ms: 0 or more")
    return ms


def _instance_link(trace_id: str) -> str:
    return "/ui/traces/" + format_instance_id(int(trace_id, 16))


@router.get("/ui/chains/{chain}", response_class=HTMLResponse)
@_guarded
def chain_page(
    chain: str,
    range_: str | None = Query(None, alias="range"),
    since: str | None = None,
    until: str | None = None,
    baseline: str = "previous",
    baseline_since: str | None = None,
    baseline_until: str | None = None,
    group_by: str = "service",
    status: str = "any",
    min_duration_ms: str | None = Query(None, description="Empty (a blank form field) = no minimum."),
    service: str | None = None,
    user_id: str | None = None,
    order: str = "duration_desc",
    cursor: str | None = None,
    refresh: int = Query(0, ge=0, le=3600),
    reader: TraceReader = Depends(get_reader),
    registry: ChainRegistry = Depends(get_registry),
) -> Response:
    """One chain over the range: latency/errors/throughput over time with the SLA line, what got
    slower against the baseline, the aggregated critical path, the service graph, recommendations,
    anomalies and the instance list. Sent in two parts: the top of the page (charts, what got
    slower) as soon as it is known, the sections below the fold when they are."""
    definition = known_chain(registry, chain)
    tr = _range(range_, since, until)
    if group_by not in ("service", "operation"):
        raise HTTPException(422, "group_by: service or operation")
    base_tr = _baseline(tr, baseline, baseline_since, baseline_until)
    min_ms = _min_duration(min_duration_ms)
    if status not in ("any", "error", "ok") or order not in ("duration_desc", "start_desc"):
        raise HTTPException(422, "status: any, error or ok; order: duration_desc or start_desc")
    s, u = tr.api()
    sla = definition.get("max_duration_ms")

    # the sections' independent reads start at once; this thread reads and analyses the window
    series_f = fanout.start(reader.chain_series, chain, tr.since_ns, tr.until_ns, tr.bucket_s)
    base_f = fanout.start(reader.window_traces, base_tr.since_ns, base_tr.until_ns, chain, DEFAULT_MAX_TRACES) \
        if base_tr else None  # fmt: skip
    anomalies_f = fanout.start(api.anomalies, u, 5, 12, reader)
    instances_f = fanout.start(
        chain_instances, chain, s, u, status, min_ms, service or None, user_id or None, order, INSTANCE_PAGE,
        cursor or None, reader, registry,
    )  # fmt: skip
    # each trace of the window analysed and attributed (call hops) once, for every section below;
    # the baseline's traces only as far as the ranking needs
    traces, window = reader.window_traces(tr.since_ns, tr.until_ns, chain, DEFAULT_MAX_TRACES)
    results = [analyze_trace(t) for t in window.values()]
    attributed = [attribute(r) for r in results]
    by_operation = [a.by_operation for a in attributed]
    base_traces, base_window = base_f.result() if base_f else (0, {})
    base_ops = [critical_by_operation(analyze_trace(t)) for t in base_window.values()] if base_tr else None
    ranking = rank_bottlenecks(group_contributions(by_operation, group_by),
                               group_contributions(base_ops, group_by) if base_tr else None, group_by, 20)  # fmt: skip
    by_service = ranking if group_by == "service" else rank_bottlenecks(group_contributions(by_operation), None, "service")
    share = {e.service: e.share for e in by_service.ranking}

    series = series_f.result()
    minutes = tr.bucket_s / 60
    latency = [(name, {int(r["bucket"]): float(r[f"{name}_ms"]) for r in series}) for name in ("p50", "p95", "p99")]
    errors = [("error rate", {int(r["bucket"]): 100 * r["errors"] / r["traces"] for r in series})]
    throughput = [("traces/min", {int(r["bucket"]): r["traces"] / minutes for r in series})]
    chart_args = {"since_ns": tr.since_ns, "bucket_s": tr.bucket_s, "buckets": tr.buckets}
    figures = [
        charts.time_chart("Latency (trace duration)", series=latency, unit="ms", sla=sla, **chart_args),
        charts.time_chart("Error rate", series=errors, unit="%", **chart_args),
        charts.time_chart("Throughput", series=throughput, unit="per min", **chart_args),
    ]
    instances = instances_f.result()  # a bad cursor is a 422 page, before anything is sent
    filters = {"status": status, "min_duration_ms": min_duration_ms or None, "service": service or None,
               "user_id": user_id or None, "order": order}  # fmt: skip
    page_params = {**tr.params(), "baseline": baseline, "baseline_since": baseline_since if baseline == "custom" else None,
                   "baseline_until": baseline_until if baseline == "custom" else None, "group_by": group_by,
                   "refresh": refresh or None}  # fmt: skip
    next_href = (_href(f"/ui/chains/{chain}", **page_params, **filters, cursor=instances["next_cursor"]) + "#instances"
                 if instances["next_cursor"] else None)  # fmt: skip
    first_href = _href(f"/ui/chains/{chain}", **page_params, **filters) + "#instances" if cursor else None
    top = dict(
        title=f"{chain} {definition.get('name', '')}", path=f"/ui/chains/{chain}", tr=tr,
        base_params={**page_params, **filters}, chain=chain, definition=definition, sla=sla, figures=figures,
        ranking=ranking, group_by=group_by, baseline=baseline, base_tr=base_tr, refresh=refresh, form_time=form_time,
        traces=traces, base_traces=base_traces, filters=filters, next_href=next_href, first_href=first_href,
        instances=[{**i, "href": _instance_link(i["trace_id"])} for i in instances["instances"]],
    )  # fmt: skip

    def below_the_fold() -> dict:
        crit = chain_operations(results)  # the page shows the per-operation table, not the call paths
        graph = dependency_graph(window.values())
        recs = recommend_attributed(attributed, sla)
        nodes, edges = [_as_dict(n) for n in graph.nodes], [_as_dict(e) for e in graph.edges]
        graph_svg = charts.service_graph(nodes, edges, share, href=lambda svc: _href(
            "/ui/services/" + quote(svc, safe=""), **tr.params())) if nodes else None  # fmt: skip
        services = {n["service"] for n in nodes}
        found = anomalies_f.result()
        anomalies = [a for a in map(_as_dict, found["anomalies"]) if (a["scope"] == "chain" and a["key"] == chain)
                     or (a["scope"] == "service" and a["key"] in services)]  # fmt: skip
        return dict(crit=crit, graph_svg=graph_svg, edges=edges, nodes=nodes, share=share, recs=recs,
                    anomalies=anomalies, anomaly_window=found["window"], services=sorted(services))  # fmt: skip

    return _streamed("chain.html", top, below_the_fold)


def _streamed(template_name: str, top: dict, rest: Callable[[], dict]) -> StreamingResponse:
    """A page sent in two parts: everything but the template's ``rest`` block as soon as ``top`` is
    known (the browser shows it at once), then the ``rest`` block from ``rest()``'s context, then the
    end of the page. The template's ``rest`` block writes :data:`REST_MARKER` when ``streaming``.
    The status (200) is sent with the first part, so when ``rest()`` raises, its place holds
    :func:`failure_notice` instead and the page still ends."""
    template = _env.get_template(template_name)
    head, tail = template.render(**top, streaming=True).split(REST_MARKER)

    def body():
        yield head
        try:
            more = rest()
        except Exception as exc:  # noqa: BLE001 - the page is under way: say so in it, as the API's error body would
            yield failure_notice(exc)
        else:
            ctx = template.new_context({**top, **more, "streaming": False})
            yield "".join(template.blocks["rest"](ctx))
        yield tail

    return StreamingResponse(body(), media_type="text/html; charset=utf-8")


def failure_notice(exc: Exception) -> str:
    """The markup shown where a streamed page's second part would be when computing it raised
    ``exc``: an :class:`HTTPException`'s status and reason, else what the API says for the same
    failure (store unreachable: retry later; anything else: logged, with its traceback, here)."""
    from clickhouse_connect.driver.exceptions import OperationalError

    if isinstance(exc, HTTPException):
        text = f"{exc.status_code}: {exc.detail}"
    else:
        log.error("console page part failed", exc_info=exc)
        text = ("the store is unreachable; retry later" if isinstance(exc, OperationalError)
                else "internal error, logged by the analyzer; retry, or report it with the time of the request")  # fmt: skip
    return f'<p class="error-detail" role="alert" id="failure">{escape(text)}</p>'


def _as_dict(obj) -> dict:
    """A dataclass (with slots) or model as a plain dict."""
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    return {k: getattr(obj, k) for k in getattr(obj, "__slots__", ()) or obj.__dataclass_fields__}


@router.get("/ui/traces/{trace_id}", response_class=HTMLResponse)
@_guarded
def trace_page(
    trace_id: str,
    reader: TraceReader = Depends(get_reader),
    registry: ChainRegistry = Depends(get_registry),
    settings: AnalyzerSettings = Depends(get_settings),
) -> HTMLResponse:
    """One chain instance: the waterfall with the critical path drawn on it, span details (from the
    whole stored trace: events, links, scope, resource as they arrived), the chain definition and
    its SLA verdict, the Jaeger link when configured."""
    try:
        parse_instance_id(trace_id)
    except InvalidInstanceId as exc:
        raise HTTPException(422, str(exc)) from None
    # the details come from the whole-trace read (every field as stored), as GET /api/v1/traces/{id}
    document = fanout.start(trace_document, trace_id, reader)
    cp = critical_path(trace_id, reader, settings)
    details = span_details(document.result())
    chain = cp["chain"]
    found = registry.get(chain) if chain else None
    definition = found["definition"] if found else None
    sla = definition.get("max_duration_ms") if definition else None
    verdict = None if sla is None else cp["duration_ms"] <= sla
    view = waterfall(cp, details)
    return _render(
        "trace.html", title=f"Trace {cp['instance_id']}", path="/ui/traces", tr=None, base_params={}, cp=cp,
        chain=chain, definition=definition, sla=sla, verdict=verdict, view=view, jaeger_url=cp["jaeger_url"],
    )  # fmt: skip


@router.get("/ui/services/{service}", response_class=HTMLResponse)
@_guarded
def service_page(
    service: str,
    range_: str | None = Query(None, alias="range"),
    since: str | None = None,
    until: str | None = None,
    refresh: int = Query(0, ge=0, le=3600),
    reader: TraceReader = Depends(get_reader),
) -> HTMLResponse:
    """One service: the chains it takes part in with its critical-path share in each, and RED per
    operation over the range."""
    tr = _range(range_, since, until)
    s, u = tr.api()
    try:
        chains = [_as_dict(c) for c in api.impact(service, s, u, DEFAULT_MAX_TRACES, reader)["chains"]]
    except HTTPException as exc:
        if exc.status_code != 404:
            raise
        chains = []
    minutes = tr.seconds / 60
    operations = [{**o, "throughput_per_min": o["calls"] / minutes, "error_rate": o["errors"] / o["calls"] if o["calls"] else 0.0}
                  for o in reader.service_operations(service, tr.since_ns, tr.until_ns)]  # fmt: skip
    return _render(
        "service.html", title=f"Service {service}", path=f"/ui/services/{quote(service, safe='')}", tr=tr,
        base_params={**tr.params(), "refresh": refresh or None}, service=service, chains=chains,
        operations=operations, refresh=refresh, form_time=form_time,
    )  # fmt: skip

