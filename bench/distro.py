"""Benchmark of the chainotel distro: ``python -m bench.distro [--requests N] [--concurrency C]``.

1. **Span cost**: spans created and ended through the real SDK (``TracerProvider`` →
   ``SimpleSpanProcessor`` → a no-op exporter), in traces of one server span (matching a catalog
   rule) plus 9 children, with and without :class:`~chainotel.processor.ChainSpanProcessor` and its
   :class:`~chainotel.sampler.ChainSampler` (the built-in catalog; installed as the configurator
   does), interleaved rounds in the same process, CPU time, best round — in both span-attribute
   modes (``CHAINOTEL_SPAN_ATTRIBUTES``: ``full``, the four chain attributes on every span;
   ``minimal``, all four on the server span and ``chain.id`` alone on its children). Reported: µs
   added per span and the ratio to the SDK's own per-span cost (goal: ≤ 2 µs and ≤ 10 %), plus the
   time measured inside the processor and the sampler. Three trace shapes: children without start attributes
   (manual spans; the SDK's first attribute on a span costs it ~1.7 µs by itself), children with
   three start attributes (as instrumentation spans have, e.g. an HTTP client span), and traces
   that match no rule. ``--baseline-rev REV`` also measures the processor and sampler of a git
   revision (e.g. ``main``, in its only mode: full) in the same run, for before/after figures;
   ``--breakdown`` measures, in the same way and for the trace, its entry span alone and its
   children alone, what four constant attributes (full) and one
   (``chain.id``: minimal's children) added at creation and one empty span processor cost the SDK,
   the parts of the figure chainotel cannot avoid on public API.
2. **Requests/s** of the two-service fixture app (``tests/distro/apps``: gateway → backend over
   httpx) under ``opentelemetry-instrument`` with the chainotel distro vs with the SDK's plain
   configurator (``_OTelSDKConfigurator`` + ``DefaultDistro``, registered for this run through a
   temporary ``*.dist-info``), both exporting OTLP/HTTP to a local sink, metrics/logs off in both.
   Fixed request count and concurrency, alternated runs (A B A B), best of each. Goal: ≥ 0.95.
   A third variant, the distro with ``CHAINOTEL_TAGGING_ENABLED=false``, splits the services' CPU
   per request into chain tagging and the rest of the distro (propagators, ID generator); a fourth
   runs the distro with ``CHAINOTEL_SPAN_ATTRIBUTES=minimal`` (export of the attributes included).

"Time inside the processor" is the time measured in the processor's ``on_start``/``on_end`` and in
the sampler (the configured sampler it asks included), minus the same shim around an empty
processor and the SDK's own sampler; it can be near zero since ``ChainSampler`` answers some spans
without asking the configured sampler (see :func:`chainotel.sampler.samples_sampled_local_children`).

Goals are reported, not asserted (shared, noisy machines).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import tempfile
import time
import uuid
from time import perf_counter_ns
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import SpanKind

from chainotel.catalog import default_catalog
from chainotel.processor import ChainSpanProcessor
from chainotel.sampler import install

CHILDREN = 9


class _NoopExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass


class _Timed(SpanProcessor):
    """Delegates to ``inner`` and sums the nanoseconds spent in its ``on_start``/``on_end``."""

    def __init__(self, inner: SpanProcessor):
        self.inner, self.ns = inner, 0

    def on_start(self, span, parent_context=None):
        t = perf_counter_ns()
        self.inner.on_start(span, parent_context)
        self.ns += perf_counter_ns() - t

    def on_end(self, span):
        t = perf_counter_ns()
        self.inner.on_end(span)
        self.ns += perf_counter_ns() - t


class _TimedSampler(Sampler):
    """Delegates to ``inner`` and adds the nanoseconds spent in its ``should_sample`` to
    ``timed.ns`` (the shim case times the SDK's own sampler the same way, and is subtracted)."""

    def __init__(self, inner: Sampler, timed: _Timed):
        self.inner, self.timed = inner, timed

    def should_sample(self, *args, **kwargs):
        t = perf_counter_ns()
        result = self.inner.should_sample(*args, **kwargs)
        self.timed.ns += perf_counter_ns() - t
        return result

    def get_description(self):
        return self.inner.get_description()


def _tracer(processor: SpanProcessor | None, service: str, chain: ChainSpanProcessor | None = None,
            install_sampler=install):  # fmt: skip
    """A tracer of a new provider with ``processor`` (if any) and a no-op exporter; ``chain``: the
    chain processor whose :class:`~chainotel.sampler.ChainSampler` is installed (by
    ``install_sampler``), as the chainotel configurator does. A ``_Timed`` processor also times the
    sampler."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if chain is not None:
        install_sampler(provider, chain)
    if isinstance(processor, _Timed):
        provider.sampler = _TimedSampler(provider.sampler, processor)
    if processor is not None:
        provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(_NoopExporter()))
    return provider.get_tracer("bench")


CHILD_ATTRIBUTES = {"http.request.method": "GET", "server.address": "backend", "url.full": "http://backend/quote"}
"""Start attributes of a child in the "with start attributes" shape (an HTTP client span's)."""


def _run_traces(tracer, traces: int, route: str, child_attributes: dict | None = None) -> int:
    """Create and end ``traces`` traces of 1 server span + CHILDREN children (started with
    ``child_attributes``); returns the span count."""
    attrs = {"http.route": route, "http.request.method": "POST"}
    for _ in range(traces):
        with tracer.start_as_current_span("POST " + route, kind=SpanKind.SERVER, attributes=attrs):
            for _ in range(CHILDREN):
                with tracer.start_as_current_span("child", attributes=child_attributes):
                    pass
    return traces * (CHILDREN + 1)


def load_revision(rev: str):
    """``(ChainSpanProcessor, install)`` of git revision ``rev``: its ``chainotel/processor.py`` and
    ``chainotel/sampler.py`` loaded as separate modules (the rest of chainotel is today's).

    Raises:
        subprocess.CalledProcessError: ``rev`` or the files are not in the repository.
    """
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import types  # noqa: PLC0415

    root = Path(__file__).resolve().parent.parent
    modules = {}
    for name in ("processor", "sampler"):
        source = subprocess.run(["git", "-C", str(root), "show", f"{rev}:chainotel/{name}.py"], check=True,
                                capture_output=True, text=True).stdout  # fmt: skip
        module = types.ModuleType(f"bench_baseline_{name}")
        sys.modules[module.__name__] = module  # dataclasses and the like look modules up by name
        exec(compile(source.replace("chainotel.processor", "bench_baseline_processor"), f"{rev}:{name}.py", "exec"),
             module.__dict__)  # fmt: skip
        modules[name] = module
    return modules["processor"].ChainSpanProcessor, modules["sampler"].install


def span_cost(rounds: int = 15, traces: int = 500, baseline: tuple | None = None) -> dict[str, dict[str, float]]:
    """Per-span figures in seconds for each trace shape, each the best of ``rounds`` interleaved rounds.

    ``sdk``: CPU time per span of the plain SDK (``time.process_time``); ``with``: the same with the
    chain processor added — ``with - sdk`` is the cost added per span, including the SDK's work on
    the four more attributes per span; ``inside``: time measured inside the processor and the
    sampler (a timing shim around them, minus the same shim around an empty processor and the
    SDK's sampler), which is steadier on a busy machine; ``minimal`` / ``minimal inside``: the same
    with the processor in ``minimal`` mode. ``baseline``: ``(ChainSpanProcessor, install)`` of
    another revision (:func:`load_revision`), measured in the same rounds as ``before`` /
    ``before inside``.
    """
    # The built-in catalog's api-gateway catch-all B1 matches any gateway span, so the unmatched
    # case uses another service: its children really try the span-name rules.
    cases = {
        "matched (B3), children without start attributes": ("api-gateway", "/api/v1/trading/orders", None),
        "matched (B3), children with 3 start attributes": ("api-gateway", "/api/v1/trading/orders", CHILD_ATTRIBUTES),
        "unmatched": ("trading-engine", "/not/in/catalog", None),
    }
    variants = {"with": (ChainSpanProcessor, install),
                "minimal": (functools.partial(ChainSpanProcessor, span_attributes="minimal"), install)}  # fmt: skip
    if baseline is not None:
        variants["before"] = baseline
    out = {}
    for case, (service, route, child_attributes) in cases.items():
        tracers, timers = {"sdk": _tracer(None, service)}, {}
        for key, (processor_class, install_sampler) in variants.items():
            chain, timed_chain = processor_class(default_catalog()), processor_class(default_catalog())
            tracers[key] = _tracer(chain, service, chain, install_sampler)
            timers[key] = _Timed(timed_chain)
            tracers[key + " timed"] = _tracer(timers[key], service, timed_chain, install_sampler)
        empty = _Timed(SpanProcessor())
        tracers["shim"] = _tracer(empty, service)
        for tracer in tracers.values():
            _run_traces(tracer, 200, route, child_attributes)  # warm-up
        best = dict.fromkeys(list(tracers) + [k + " inside" for k in variants], float("inf"))
        for _ in range(rounds):
            empty.ns = 0
            for timer in timers.values():
                timer.ns = 0
            for key, tracer in tracers.items():
                t = time.process_time()
                n = _run_traces(tracer, traces, route, child_attributes)
                best[key] = min(best[key], (time.process_time() - t) / n)
            for key, timer in timers.items():
                best[key + " inside"] = min(best[key + " inside"], timer.ns / 1e9 / n)
            best["shim"] = min(best["shim"], empty.ns / 1e9 / n)
        out[case] = {"sdk": best["sdk"]}
        for key in variants:
            out[case][key] = best[key]
            out[case][key + " inside"] = max(best[key + " inside"] - best["shim"], 0.0)
    return out


class _ConstantAttributes(Sampler):
    """Asks ``inner`` with constant chain-like attributes added (``ATTRIBUTES``, or ``attributes``):
    what the SDK's own work on the attributes costs, without any chainotel code."""

    ATTRIBUTES = {"chain.id": "B3", "chain.category": "service_communication", "chain.name": "Trading API request",
                  "chain.instance_id": "4fb3dca0-9c24-2878-ef8b-6c780f1ae5a6"}  # fmt: skip

    def __init__(self, inner: Sampler, attributes: dict | None = None):
        self.inner = inner
        self.added = self.ATTRIBUTES if attributes is None else attributes

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        merged = {**attributes, **self.added} if attributes else self.added
        return self.inner.should_sample(parent_context, trace_id, name, kind, merged, links, trace_state)

    def get_description(self):
        return "ConstantAttributes"


def _constant_tracer(service: str, attributes: dict | None = None):
    """A tracer whose spans get constant attributes at creation (:class:`_ConstantAttributes`)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.sampler = _ConstantAttributes(provider.sampler, attributes)
    provider.add_span_processor(SimpleSpanProcessor(_NoopExporter()))
    return provider.get_tracer("bench")


def _entry_spans(tracer, count: int, route: str, child_attributes: dict | None = None) -> int:
    """``count`` traces of the server span alone (the entry span); returns the span count."""
    attrs = {"http.route": route, "http.request.method": "POST"}
    for _ in range(count):
        with tracer.start_as_current_span("POST " + route, kind=SpanKind.SERVER, attributes=attrs):
            pass
    return count


def _child_spans(tracer, count: int, route: str, child_attributes: dict | None = None) -> int:
    """``count`` children (started with ``child_attributes``) of one server span; returns ``count``
    (the one server span is counted in the time, 1/``count`` of it)."""
    with tracer.start_as_current_span("POST " + route, kind=SpanKind.SERVER,
                                      attributes={"http.route": route, "http.request.method": "POST"}):  # fmt: skip
        for _ in range(count):
            with tracer.start_as_current_span("child", attributes=child_attributes):
                pass
    return count


BREAKDOWN_SHAPES = {
    "trace (1 server + 9 children)": (_run_traces, None),
    "entry (server) span alone": (_entry_spans, None),
    "child span": (_child_spans, None),
    "child span with 3 start attributes": (_child_spans, CHILD_ATTRIBUTES),
}
"""What :func:`breakdown` measures: name → (span loop, child start attributes)."""


def breakdown(rounds: int = 15, traces: int = 500) -> dict[str, dict[str, float]]:
    """Seconds added per span, against the plain SDK in the same rounds, for each of
    :data:`BREAKDOWN_SHAPES` (matched chain), by: four constant attributes added at creation
    ("attributes"), one (``chain.id``, "attribute"), one empty span processor ("empty processor"),
    and the chain processor and sampler ("chainotel", "chainotel minimal"); ``"sdk"``: the plain
    SDK's own seconds per span."""
    service, route = "api-gateway", "/api/v1/trading/orders"
    out = {}
    for shape, (run, child_attributes) in BREAKDOWN_SHAPES.items():
        chain = ChainSpanProcessor(default_catalog())
        minimal = ChainSpanProcessor(default_catalog(), span_attributes="minimal")
        tracers = {
            "sdk": _tracer(None, service),
            "attributes": _constant_tracer(service),
            "attribute": _constant_tracer(service, {"chain.id": "B3"}),
            "empty processor": _tracer(SpanProcessor(), service),
            "chainotel": _tracer(chain, service, chain),
            "chainotel minimal": _tracer(minimal, service, minimal),
        }
        count = traces if run is _run_traces else traces * (CHILDREN + 1)
        for tracer in tracers.values():
            run(tracer, count // 3, route, child_attributes)  # warm-up
        best = dict.fromkeys(tracers, float("inf"))
        for _ in range(rounds):
            for key, tracer in tracers.items():
                t = time.process_time()
                n = run(tracer, count, route, child_attributes)
                best[key] = min(best[key], (time.process_time() - t) / n)
        out[shape] = {key: best[key] - best["sdk"] for key in tracers if key != "sdk"} | {"sdk": best["sdk"]}
    return out


# --- two-service app ------------------------------------------------------------------------------
_BASELINE_ENTRY_POINTS = """\
[opentelemetry_distro]
baseline = opentelemetry.instrumentation.distro:DefaultDistro

[opentelemetry_configurator]
baseline = opentelemetry.sdk._configuration:_OTelSDKConfigurator
"""


def _baseline_path(tmp: Path) -> str:
    info = tmp / "bench_otel_baseline-0.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-otel-baseline\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text(_BASELINE_ENTRY_POINTS)
    return str(tmp)


async def _load(url: str, requests: int, concurrency: int, timeout_s: float) -> tuple[float, int]:
    """(requests/s, requests done) for ``requests`` GETs with ``concurrency`` workers (bounded by
    ``timeout_s``)."""
    import httpx  # noqa: PLC0415

    remaining = list(range(requests))
    deadline = time.monotonic() + timeout_s
    done = 0

    async def worker(client):
        nonlocal done
        while remaining and time.monotonic() < deadline:
            remaining.pop()
            r = await client.get(url, headers={"X-Chain-ID": str(uuid.uuid4())})
            r.raise_for_status()
            done += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return done / (time.perf_counter() - start), done


def requests_per_second(requests: int, concurrency: int, repeats: int = 2) -> dict[str, float]:
    """Best requests/s of the gateway→backend app per variant ("chainotel", "chainotel, minimal":
    with ``CHAINOTEL_SPAN_ATTRIBUTES=minimal``, "plain", and
    "chainotel, tagging off": the distro with ``CHAINOTEL_TAGGING_ENABLED=false``, which keeps its
    propagators, ID generator and the processor's ``X-Chain-ID`` attributes but tags no span, so
    the difference to "chainotel" is the cost of chain tagging, export of the attributes included)."""
    from tests.distro.otlp_sink import OtlpSink  # noqa: PLC0415
    from tests.distro.services import Service, otel_env  # noqa: PLC0415

    sink = OtlpSink()
    names = ("chainotel", "chainotel, minimal", "chainotel, tagging off", "plain")
    results: dict[str, list[float]] = {name: [] for name in names}
    cpu_per_request: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        baseline = _baseline_path(tmp)
        variants = {
            "chainotel": ({}, ""),
            "chainotel, minimal": ({"CHAINOTEL_SPAN_ATTRIBUTES": "minimal"}, ""),
            "chainotel, tagging off": ({"CHAINOTEL_TAGGING_ENABLED": "false"}, ""),
            "plain": (
                {"OTEL_PYTHON_DISTRO": "baseline", "OTEL_PYTHON_CONFIGURATOR": "baseline",
                 "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"},
                baseline,
            ),
        }
        try:
            for _ in range(repeats):
                for name, (extra, pythonpath) in variants.items():
                    env_b = {**otel_env(sink, "bench-backend"), **extra, "OTEL_BSP_SCHEDULE_DELAY": "1000"}
                    backend = Service("backend", env_b, tmp, pythonpath=pythonpath)
                    try:
                        env_g = {**otel_env(sink, "bench-gateway", BACKEND_URL=backend.url), **extra,
                                 "OTEL_BSP_SCHEDULE_DELAY": "1000"}
                        gateway = Service("gateway", env_g, tmp, pythonpath=pythonpath)
                        try:
                            url = f"{gateway.url}/api/v1/trading/orders"
                            asyncio.run(_load(url, 200, concurrency, 30))  # warm-up
                            cpu = _cpu_seconds(gateway, backend)
                            rps, done = asyncio.run(_load(url, requests, concurrency, 120))
                            results[name].append(rps)
                            cpu_per_request[name].append((_cpu_seconds(gateway, backend) - cpu) / done)
                        finally:
                            gateway.stop()
                    finally:
                        backend.stop()
        finally:
            sink.close()
    return (
        {name: max(values) for name, values in results.items()}
        | {f"{name} (all runs)": statistics.fmean(values) for name, values in results.items()}
        | {f"{name} cpu": min(values) for name, values in cpu_per_request.items()}
    )


def _cpu_seconds(*services) -> float:
    """User+system CPU seconds used so far by the services' processes (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for service in services:
        fields = Path(f"/proc/{service.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--skip-http", action="store_true", help="only the span-cost part")
    parser.add_argument("--breakdown", action="store_true",
                        help="also measure what four constant attributes and an empty processor cost the SDK")
    parser.add_argument("--baseline-rev", metavar="REV",
                        help="also measure the processor and sampler of this git revision (e.g. main), same run")
    args = parser.parse_args()

    baseline = load_revision(args.baseline_rev) if args.baseline_rev else None
    print("### Chain span processor: cost per span (SDK, no-op exporter, 1 server + 9 child spans per trace)\n")
    print("| trace | variant | SDK alone µs/span | SDK + chain processor µs/span | added µs/span | added / SDK cost | "
          "goal ≤ 2 µs and ≤ 10 % | time inside the processor µs/span |")
    print("|---|---|---:|---:|---:|---:|---|---:|")
    names = {"before": f"{args.baseline_rev} (before)", "with": "this tree, full", "minimal": "this tree, minimal"}
    for case, f in span_cost(baseline=baseline).items():
        for key, name in names.items():
            if key not in f:
                continue
            added = f[key] - f["sdk"]
            ok = added * 1e6 <= 2 and added / f["sdk"] <= 0.10
            print(
                f"| {case} | {name} | {f['sdk'] * 1e6:.2f} | {f[key] * 1e6:.2f} | {added * 1e6:.2f} | "
                f"{added / f['sdk']:.1%} | {'met' if ok else 'NOT met'} | {f[key + ' inside'] * 1e6:.2f} |"
            )
    if args.breakdown:
        print("\n### Where it goes: µs added per span against the SDK alone, same rounds (matched chain)\n")
        print("| span | SDK alone µs | four constant attributes | one (chain.id) | one empty span processor | "
              "chainotel, full | chainotel, minimal |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for shape, parts in breakdown().items():
            cells = " | ".join(f"{parts[k] * 1e6:+.2f}" for k in
                               ("attributes", "attribute", "empty processor", "chainotel", "chainotel minimal"))  # fmt: skip
            print(f"| {shape} | {parts['sdk'] * 1e6:.2f} | {cells} |")
    if args.skip_http:
        return
    print(f"\n### Two-service app (gateway → backend): {args.requests} requests, concurrency {args.concurrency}\n")
    rps = requests_per_second(args.requests, args.concurrency)
    ratio = rps["chainotel"] / rps["plain"]
    print("| variant | requests/s (best of 2) | mean of runs | service CPU ms/request (best) |")
    print("|---|---:|---:|---:|")
    for name in ("plain", "chainotel, tagging off", "chainotel", "chainotel, minimal"):
        print(
            f"| {name} opentelemetry-instrument | {rps[name]:.0f} | {rps[name + ' (all runs)']:.0f} | "
            f"{rps[name + ' cpu'] * 1e3:.2f} |"
        )
    cpu_ratio = rps["plain cpu"] / rps["chainotel cpu"]
    minimal = rps["chainotel, minimal"] / rps["plain"]
    print(f"\nratio chainotel / plain requests/s: **{ratio:.3f}** (goal ≥ 0.95: {'met' if ratio >= 0.95 else 'NOT met'}), "
          f"minimal: **{minimal:.3f}** ({'met' if minimal >= 0.95 else 'NOT met'}), by CPU per request (plain / minimal) "
          f"{rps['plain cpu'] / rps['chainotel, minimal cpu']:.3f}; "
          f"by CPU per request (plain / chainotel): {cpu_ratio:.3f}; CPU per request of chain tagging "
          f"(chainotel − tagging off): {(rps['chainotel cpu'] - rps['chainotel, tagging off cpu']) * 1e3:+.2f} ms, "
          f"of the rest of the distro (tagging off − plain): {(rps['chainotel, tagging off cpu'] - rps['plain cpu']) * 1e3:+.2f} ms")


if __name__ == "__main__":
    main()
