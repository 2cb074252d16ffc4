"""Load check: the demo gateway under chainotel vs plain OpenTelemetry vs no instrumentation.

``python -m bench.load [--requests 1000] [--concurrency 100] [--rounds 2]``

For each mode the five demo services run as local processes (``chainotel.cli.demo.Stack``, free
127.0.0.1 ports, no injected slowdown or errors) and the traffic generator sends ``--requests``
gateway flows (AI decision and trading order, each with its own ``X-Chain-ID``) with
``--concurrency`` in flight:

- ``chainotel``: ``opentelemetry-instrument`` with ``OTEL_PYTHON_DISTRO=chainotel``, exporting OTLP/HTTP
  to a ``chainotel-analyzer serve`` on a fresh chDB store;
- ``otel``: ``opentelemetry-instrument`` with the SDK's own configurator (what ``opentelemetry-distro``
  provides; a two-line shim is put on PYTHONPATH because no opentelemetry-distro release matches the
  pinned instrumentation version), exporting to an analyzer the same way;
- ``none``: plain uvicorn.

Rounds alternate the modes (noisy shared machine); latencies are pooled over rounds, throughput
is the median over rounds. On a machine with two or more CPUs the analyzer (every thread of every
process of its session) runs on the last CPU and the services and the load generator on the
others, in every mode, so the analyzer's ingest does not take CPU from the services being
compared. After each load the resident memory (``VmRSS``) of every service process is read, so
the distro's memory per service is chainotel minus none (and minus plain OpenTelemetry); the
services' CPU time during the load (user + system, ``/proc/<pid>/stat``) per request is reported
too, a figure that other work on a shared machine disturbs less than requests/s. Goals (reported,
not asserted): chainotel throughput ≥ 0.95 of plain OpenTelemetry, p95/p99 within 5 %, and 100 % of the chainotel requests' chains stored (each
request's X-Chain-ID found via ``GET /api/v1/chains/events/{instance_id}`` with the right chain ID).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

import httpx

from chainotel.cli.demo import Stack, load_traffic

FLOWS = ["ai-decision", "trading-order"]
EXPECTED_CHAIN = {"ai-decision": "A2", "trading-order": "B3"}

_SHIM = '''\
"""Plain OpenTelemetry SDK set-up for opentelemetry-instrument, as opentelemetry-distro does it."""
import os
from opentelemetry.environment_variables import OTEL_TRACES_EXPORTER
from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _OTelSDKConfigurator


class Distro(BaseDistro):
    def _configure(self, **kwargs):
        os.environ.setdefault(OTEL_TRACES_EXPORTER, "otlp")


class Configurator(_OTelSDKConfigurator):
    pass
'''


def plain_otel_env(workdir: Path) -> dict[str, str]:
    """Env that makes ``opentelemetry-instrument`` use the plain SDK configurator (``plainotel`` shim)."""
    shim = workdir / "plainotel-shim"
    (shim / "plainotel-0.0.dist-info").mkdir(parents=True, exist_ok=True)
    (shim / "plainotel.py").write_text(_SHIM)
    (shim / "plainotel-0.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: plainotel\nVersion: 0.0\n")
    (shim / "plainotel-0.0.dist-info" / "entry_points.txt").write_text(textwrap.dedent("""\
        [opentelemetry_distro]
        plainotel = plainotel:Distro

        [opentelemetry_configurator]
        plainotel = plainotel:Configurator
        """))
    return {"PYTHONPATH": str(shim), "OTEL_PYTHON_DISTRO": "plainotel", "OTEL_PYTHON_CONFIGURATOR": "plainotel"}


def percentile(values: list[float], q: float) -> float:
    """q-th percentile (0..100) by linear interpolation (numpy's default method)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def count_stored(analyzer_url: str, results) -> tuple[int, int]:
    """(requests whose chain instance is stored with the expected chain ID, requests checked)."""
    found = 0
    with httpx.Client(base_url=analyzer_url, timeout=30) as client:
        for r in results:
            response = client.get(f"/api/v1/chains/events/{r.instance_id}")
            if response.status_code == 200:
                events = response.json().get("events", [])
                if events and {e.get("chain") for e in events} == {EXPECTED_CHAIN[r.flow]}:
                    found += 1
    return found, len(results)


def cpu_split() -> tuple[set[int], set[int]] | None:
    """(CPUs for the services and the load generator, CPU for the analyzer), or ``None`` with one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    return (set(cpus[:-1]), {cpus[-1]}) if len(cpus) >= 2 else None


def session_pids(sid: int) -> list[int]:
    """The processes of session ``sid`` (a Stack child and whatever it forked)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after "(comm)": state ppid pgrp session …
            pids.append(int(stat.parent.name))
    return pids


def pin(sid: int, cpus: set[int]) -> None:
    """Pin every thread of every process of session ``sid`` to ``cpus`` (children forked later inherit it)."""
    for pid in session_pids(sid):
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(task.name), cpus)


def rss_bytes(sid: int) -> int:
    """Resident memory (VmRSS) of the processes of session ``sid``, in bytes."""
    total = 0
    for pid in session_pids(sid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def cpu_seconds(sid: int) -> float:
    """User + system CPU seconds used so far by the processes of session ``sid`` (``/proc/<pid>/stat``;
    a process that already exited is not counted)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in session_pids(sid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14, 15 of stat)
    return total


def run_mode(mode: str, requests: int, concurrency: int, workdir: Path) -> dict:
    """Start the stack in ``mode``, warm up, drive the load; return latencies (ms), wall time (s), results, stored count."""
    traffic = load_traffic()
    extra = plain_otel_env(workdir) if mode == "otel" else {}
    stack = Stack(workdir / mode, mode=mode, free_ports=True, slow="", error_rate=0.0,
                  with_analyzer=mode != "none", extra_env=extra)
    with stack:
        split = cpu_split()
        if split is not None:
            services_cpus, analyzer_cpus = split
            os.sched_setaffinity(0, services_cpus)
            for proc in stack.processes:
                pin(proc.popen.pid, analyzer_cpus if proc.name == "analyzer" else services_cpus)
        asyncio.run(traffic.drive(stack.entry(), min(100, requests), concurrency, flows=FLOWS, deadline_s=120))
        services = [proc.popen.pid for proc in stack.processes if proc.name != "analyzer"]
        cpu_before = sum(cpu_seconds(sid) for sid in services)
        start = time.perf_counter()
        results = asyncio.run(traffic.drive(stack.entry(), requests, concurrency, flows=FLOWS, deadline_s=300))
        wall = time.perf_counter() - start
        cpu_s = sum(cpu_seconds(sid) for sid in services) - cpu_before
        rss = [rss_bytes(proc.popen.pid) for proc in stack.processes if proc.name != "analyzer"]
        stored, spans = None, None
        if mode != "none":
            time.sleep(2.0)
            spans = httpx.get(f"{stack.analyzer_url}/health", timeout=10).json().get("write_queue", {}).get("spans_written")
        if mode == "chainotel":
            time.sleep(2.0)  # spans leave the services every 200 ms; the analyzer commits within 1 s
            ok = [r for r in results if r.ok]
            deadline = time.monotonic() + 60
            while True:
                stored = count_stored(stack.analyzer_url, ok)
                if stored[0] == stored[1] or time.monotonic() > deadline:
                    break
                time.sleep(2.0)
    if split is not None:
        os.sched_setaffinity(0, split[0] | split[1])
    return {"latencies": [r.duration_ms for r in results if r.ok], "wall": wall, "results": results, "stored": stored,
            "spans": spans, "rss_mb": statistics.fmean(rss) / 2**20, "cpu_ms": 1e3 * cpu_s / max(len(results), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="chainotel vs plain OpenTelemetry vs none, on the demo gateway")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)

    modes = ["chainotel", "otel", "none"]
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="chainotel-load-") as tmp:
        for i in range(args.rounds):
            order = modes if i % 2 == 0 else list(reversed(modes))
            for mode in order:
                print(f"round {i + 1}: {mode} …", file=sys.stderr, flush=True)
                runs[mode].append(run_mode(mode, args.requests, args.concurrency, Path(tmp) / f"r{i}"))

    summary = {}
    for mode in modes:
        lat = [x for run in runs[mode] for x in run["latencies"]]
        ok = sum(len(run["latencies"]) for run in runs[mode])
        sent = sum(len(run["results"]) for run in runs[mode])
        summary[mode] = {
            "rps": statistics.median(len(run["latencies"]) / run["wall"] for run in runs[mode]),
            "p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99),
            "ok": ok, "sent": sent,
            "spans": "-" if mode == "none" else str(sum(run["spans"] or 0 for run in runs[mode])),
            "rss_mb": statistics.fmean(run["rss_mb"] for run in runs[mode]),
            "cpu_ms": min(run["cpu_ms"] for run in runs[mode]),
        }
    base, bare = summary["otel"], summary["none"]
    split = cpu_split()
    placement = (f"analyzer pinned to CPU {sorted(split[1])}, services and load generator to CPUs {sorted(split[0])}"
                 if split else "one CPU: analyzer and services share it")
    print(f"\n{args.requests} requests × {args.rounds} rounds at {args.concurrency} concurrent "
          f"(gateway flows {', '.join(FLOWS)}), 5 services + analyzer on this machine; {placement}\n")
    print("| mode | ok/sent | spans stored | req/s | p50 ms | p95 ms | p99 ms | req/s vs otel | p95 vs otel | p99 vs otel "
          "| req/s vs none | p95 vs none | RSS per service MB | service CPU ms/request | CPU vs otel | CPU vs none |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for mode in modes:
        s = summary[mode]
        print(f"| {mode} | {s['ok']}/{s['sent']} | {s['spans']} | {s['rps']:.0f} | {s['p50']:.1f} | {s['p95']:.1f} | {s['p99']:.1f} "
              f"| {s['rps'] / base['rps']:.3f} | {s['p95'] / base['p95']:.3f} | {s['p99'] / base['p99']:.3f} "
              f"| {s['rps'] / bare['rps']:.3f} | {s['p95'] / bare['p95']:.3f} | {s['rss_mb']:.1f} "
              f"| {s['cpu_ms']:.2f} | {s['cpu_ms'] / base['cpu_ms']:.3f} | {s['cpu_ms'] / bare['cpu_ms']:.3f} |")
    chain_rss = summary["chainotel"]["rss_mb"]
    print(f"\nmemory per service: chainotel − none {chain_rss - bare['rss_mb']:+.1f} MB, "
          f"chainotel − plain OpenTelemetry {chain_rss - base['rss_mb']:+.1f} MB (VmRSS after the load, mean of 5 services)")
    overhead = 1 - summary["chainotel"]["rps"] / bare["rps"]
    print(f"throughput cost against no tracing: chainotel {overhead:.1%}, plain OpenTelemetry "
          f"{1 - base['rps'] / bare['rps']:.1%} (the seeds' budget: < 2–5 %)")
    chain_cpu = summary["chainotel"]["cpu_ms"]
    print(f"service CPU per request (all 5 services, best round): chainotel {chain_cpu:.2f} ms, plain OpenTelemetry "
          f"{base['cpu_ms']:.2f} ms, none {bare['cpu_ms']:.2f} ms — chainotel costs {chain_cpu / base['cpu_ms'] - 1:+.1%} "
          f"over plain OpenTelemetry and {chain_cpu / bare['cpu_ms'] - 1:+.1%} over no tracing "
          "(steadier than req/s on a shared machine)")
    for mode in modes:
        failed = Counter(r.status for run in runs[mode] for r in run["results"] if not r.ok)
        if failed:
            print(f"failed requests ({mode}): " + ", ".join(f"{n}× status {st or 'transport error'}" for st, n in sorted(failed.items())))
    stored = [run["stored"] for run in runs["chainotel"]]
    found, checked = sum(s[0] for s in stored), sum(s[1] for s in stored)
    print(f"\nchains stored (chainotel): {found}/{checked} successful requests found under their X-Chain-ID "
          f"with the expected chain ({100 * found / max(checked, 1):.1f} %)")
    ratio = summary["chainotel"]["rps"] / base["rps"]
    print(f"goal chainotel ≥ 0.95 × plain OpenTelemetry throughput: {'met' if ratio >= 0.95 else 'NOT met'} ({ratio:.3f}); "
          f"goal 100 % of chains stored: {'met' if found == checked and checked else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
