"""Benchmark of the chainotel distro: ``python -m bench.distro [--requests N] [--concurrency C]``.

1. **Span cost**: spans created and ended through the real SDK (``TracerProvider`` →
   ``SimpleSpanProcessor`` → a no-op exporter), in traces of one server span (matching a catalog
   rule) plus 9 children, with and without :class:`~chainotel.processor.ChainSpanProcessor` and its
   :class:`~chainotel.sampler.ChainSampler` (the built-in catalog; installed as the configurator
   does), interleaved rounds in the same process, CPU time, best round. Reported: µs added per span
   and the ratio to the SDK's own per-span cost (goal: ≤ 2 µs and ≤ 10 %), plus the time measured
   inside the processor and the sampler. The same for traces that match no rule.
2. **Requests/s** of the two-service fixture app (``tests/distro/apps``: gateway → backend over
   httpx) under ``opentelemetry-instrument`` with the chainotel distro vs with the SDK's plain
   configurator (``_OTelSDKConfigurator`` + ``DefaultDistro``, registered for this run through a
   temporary ``*.dist-info``), both exporting OTLP/HTTP to a local sink, metrics/logs off in both.
   Fixed request count and concurrency, alternated runs (A B A B), best of each. Goal: ≥ 0.95.

Goals are reported, not asserted (shared, noisy machines).
"""

from __future__ import annotations

import argparse
import asyncio
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


def _tracer(processor: SpanProcessor | None, service: str, chain: ChainSpanProcessor | None = None):
    """A tracer of a new provider with ``processor`` (if any) and a no-op exporter; ``chain``: the
    chain processor whose :class:`~chainotel.sampler.ChainSampler` is installed, as the chainotel
    configurator does. A ``_Timed`` processor also times the sampler."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if chain is not None:
        install(provider, chain)
    if isinstance(processor, _Timed):
        provider.sampler = _TimedSampler(provider.sampler, processor)
    if processor is not None:
        provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(_NoopExporter()))
    return provider.get_tracer("bench")


def _run_traces(tracer, traces: int, route: str) -> int:
    """Create and end ``traces`` traces of 1 server span + CHILDREN children; returns the span count."""
    attrs = {"http.route": route, "http.request.method": "POST"}
    for _ in range(traces):
        with tracer.start_as_current_span("POST " + route, kind=SpanKind.SERVER, attributes=attrs):
            for _ in range(CHILDREN):
                with tracer.start_as_current_span("child"):
                    pass
    return traces * (CHILDREN + 1)


def span_cost(rounds: int = 15, traces: int = 500) -> dict[str, dict[str, float]]:
    """Per-span figures in seconds for each case, each the best of ``rounds`` interleaved rounds.

    ``sdk``: CPU time per span of the plain SDK (``time.process_time``); ``with``: the same with the
    chain processor added — ``with - sdk`` is the cost added per span, including the memory work of
    four more attributes per span; ``inside``: time measured inside the processor's
    ``on_start``/``on_end`` (a timing shim around it, minus the same shim around an empty
    processor), which is steadier on a busy machine.
    """
    # The built-in catalog's api-gateway catch-all B1 matches any gateway span, so the unmatched
    # case uses another service: its children really try the span-name rules.
    cases = {
        "matched (B3)": ("api-gateway", "/api/v1/trading/orders"),
        "unmatched": ("trading-engine", "/not/in/catalog"),
    }
    out = {}
    for case, (service, route) in cases.items():
        chain, timed_chain = ChainSpanProcessor(default_catalog()), ChainSpanProcessor(default_catalog())
        timed, empty = _Timed(timed_chain), _Timed(SpanProcessor())
        tracers = {
            "sdk": _tracer(None, service),
            "with": _tracer(chain, service, chain),
            "timed": _tracer(timed, service, timed_chain),
            "shim": _tracer(empty, service),
        }
        for tracer in tracers.values():
            _run_traces(tracer, 200, route)  # warm-up
        best = dict.fromkeys(("sdk", "with", "inside", "shim"), float("inf"))
        for _ in range(rounds):
            timed.ns = empty.ns = 0
            for key, tracer in tracers.items():
                t = time.process_time()
                n = _run_traces(tracer, traces, route)
                if key in ("sdk", "with"):
                    best[key] = min(best[key], (time.process_time() - t) / n)
            best["inside"] = min(best["inside"], timed.ns / 1e9 / n)
            best["shim"] = min(best["shim"], empty.ns / 1e9 / n)
        out[case] = {"sdk": best["sdk"], "with": best["with"], "inside": max(best["inside"] - best["shim"], 0.0)}
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
    """Best requests/s of the gateway→backend app per variant ("chainotel", "plain")."""
    from tests.distro.otlp_sink import OtlpSink  # noqa: PLC0415
    from tests.distro.services import Service, otel_env  # noqa: PLC0415

    sink = OtlpSink()
    results: dict[str, list[float]] = {"chainotel": [], "plain": []}
    cpu_per_request: dict[str, list[float]] = {"chainotel": [], "plain": []}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        baseline = _baseline_path(tmp)
        variants = {
            "chainotel": ({}, ""),
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
    args = parser.parse_args()

    print("### Chain span processor: cost per span (SDK, no-op exporter, 1 server + 9 child spans per trace)\n")
    print("| trace | SDK alone µs/span | SDK + chain processor µs/span | added µs/span | added / SDK cost | "
          "goal ≤ 2 µs and ≤ 10 % | time inside the processor µs/span |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for case, f in span_cost().items():
        added = f["with"] - f["sdk"]
        ok = added * 1e6 <= 2 and added / f["sdk"] <= 0.10
        print(
            f"| {case} | {f['sdk'] * 1e6:.2f} | {f['with'] * 1e6:.2f} | {added * 1e6:.2f} | {added / f['sdk']:.1%} | "
            f"{'met' if ok else 'NOT met'} | {f['inside'] * 1e6:.2f} |"
        )
    if args.skip_http:
        return
    print(f"\n### Two-service app (gateway → backend): {args.requests} requests, concurrency {args.concurrency}\n")
    rps = requests_per_second(args.requests, args.concurrency)
    ratio = rps["chainotel"] / rps["plain"]
    print("| variant | requests/s (best of 2) | mean of runs | service CPU ms/request (best) |")
    print("|---|---:|---:|---:|")
    for name in ("plain", "chainotel"):
        print(
            f"| {name} opentelemetry-instrument | {rps[name]:.0f} | {rps[name + ' (all runs)']:.0f} | "
            f"{rps[name + ' cpu'] * 1e3:.2f} |"
        )
    cpu_ratio = rps["plain cpu"] / rps["chainotel cpu"]
    print(f"\nratio chainotel / plain requests/s: **{ratio:.3f}** (goal ≥ 0.95: {'met' if ratio >= 0.95 else 'NOT met'}); "
          f"by CPU per request (plain / chainotel): {cpu_ratio:.3f}")


if __name__ == "__main__":
    main()
