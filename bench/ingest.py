"""Ingest benchmark: OTLP/HTTP → chDB end to end, against a direct clickhouse-connect insert.

``python -m bench.ingest [--requests N] [--senders 8] [--overload-seconds S]``

1. **End to end**: a real ``chainotel-analyzer serve`` (one uvicorn worker, chDB in a temp dir);
   ``--senders`` threads POST distinct 1 000-span ``application/x-protobuf`` requests (SDK-like spans:
   HTTP server/client attributes, chain tags) until ``--requests`` are acknowledged; a 200 means the
   spans are committed. Figure: spans/s = acknowledged spans / wall time.
2. **Direct baseline** (same run, same rows): the requests decoded to columns up front (not timed),
   then inserted with the writer's clickhouse-connect call (``insert_arrow``) into the same schema in
   batches of 10 000 spans — the rate ClickHouse can take from Python, no HTTP and no decoding;
   also reported until the background merges those INSERTs start have finished (the end-to-end
   run pays for its merges while it runs: about a third of the analyzer's CPU per span).
   A second direct run inserts each request alone with a deduplication token of its own (how the
   writer inserted before batches were logged in ``chain_request_log``): per-request / batched is
   what one INSERT per request costs the store. A third run feeds the same decoded requests to the
   analyzer's writer itself (:class:`~chainotel_analyzer.store.writer.SpanWriter`: batches, the request
   log and its look-ups), no HTTP and no decoding: writer / direct is what the writer adds to the store.
3. **Overload**: a second analyzer with a write queue of ``--overload-queue`` spans and a decoder
   backlog of ``--overload-decode-bytes`` is flooded by ``--overload-senders`` threads (more in
   flight than both hold) for
   ``--overload-seconds``; its RSS is sampled (``/proc/<pid>/status``) and must stay bounded (the queue
   bound holds, the excess gets 503).
4. **Bytes per span** on disk: ``system.parts`` (active parts) of ``chain_history`` and its views,
   after ``OPTIMIZE ... FINAL``; and ``chain_history`` of the same rows stored with and without the
   span, resource and scope messages (what keeping every field costs).

Goals: ≥ 50 000 spans/s end to end and ≥ 0.6 of the direct rate. Reported, not asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from chainotel.cli.demo import free_port
from tests.ingest.otlp_data import kv

SPANS_PER_REQUEST = 1000
SERVICES = ["frontend", "checkout", "cart", "payment", "shipping", "currency", "email", "catalog"]
ROUTES = ["/api/orders/{id}", "/api/cart", "/api/pay", "/api/ship", "/api/convert", "/api/products/{id}"]


def make_request(rng: random.Random, n: int = SPANS_PER_REQUEST) -> bytes:
    """One serialized ExportTraceServiceRequest of ``n`` spans (traces of 10 spans, SDK-like attributes)."""
    req = ExportTraceServiceRequest()
    by_service: dict[str, list[Span]] = {}
    base = time.time_ns() - 3_600_000_000_000
    for t in range(n // 10):
        trace_id = rng.randbytes(16)
        chain = f"B{rng.randint(1, 8)}"
        root_id = rng.randbytes(8)
        start = base + rng.randint(0, 3_600_000_000_000)
        for s in range(10):
            service = SERVICES[s % len(SERVICES)]
            span_id = root_id if s == 0 else rng.randbytes(8)
            kind = 2 if s % 2 == 0 else 3
            route = ROUTES[s % len(ROUTES)]
            dur = rng.randint(100_000, 50_000_000)
            span = Span(
                trace_id=trace_id, span_id=span_id, parent_span_id=b"" if s == 0 else root_id,
                name=f"GET {route}", kind=kind, start_time_unix_nano=start + s * 1000,
                end_time_unix_nano=start + s * 1000 + dur,
                attributes=[
                    kv("http.request.method", "GET"), kv("http.route", route), kv("url.path", route.replace("{id}", str(t))),
                    kv("http.response.status_code", 200), kv("chain.id", chain), kv("chain.category", "service_communication"),
                    kv("chain.name", "Checkout"), kv("chain.instance_id", trace_id.hex()),
                ] + ([kv("server.address", SERVICES[(s + 1) % len(SERVICES)])] if kind == 3 else []),
            )  # fmt: skip
            span.status.code = 2 if rng.random() < 0.01 else 0
            by_service.setdefault(service, []).append(span)
    for service, spans in by_service.items():
        rs = ResourceSpans(resource={"attributes": [kv("service.name", service), kv("telemetry.sdk.language", "python"),
                                                     kv("service.version", "1.2.3"), kv("host.name", "bench-host")]})
        rs.scope_spans.append(ScopeSpans(scope={"name": "opentelemetry.instrumentation.fastapi"}, spans=spans))
        req.resource_spans.append(rs)
    return req.SerializeToString()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its live children (the decoder
    processes), from ``/proc``: a figure that the load of a shared machine moves far less than wall time."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def children(pid: int) -> list[int]:
    """Live child processes of ``pid``."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def start_analyzer(data_dir: Path, port: int, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("chainotel-analyzer")
    env = {**os.environ, **(env_extra or {})}
    proc = subprocess.Popen(
        [str(exe), "serve", "--host", "127.0.0.1", "--grpc-port", "-1", "--http-port", str(port),
         "--clickhouse-url", f"chdb://{data_dir}", "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"analyzer exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("analyzer did not become healthy in 60 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def send_all(url: str, bodies: list[bytes], senders: int, time_limit: float) -> tuple[int, float, int]:
    """Post every body once (retrying 503s) from ``senders`` threads; return (acked, seconds, 503s)."""
    lock = threading.Lock()
    todo = list(range(len(bodies)))
    acked = [0]
    busy = [0]
    deadline = time.monotonic() + time_limit

    def worker() -> None:
        with httpx.Client(timeout=60) as client:
            while time.monotonic() < deadline:
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                r = client.post(url, content=bodies[i], headers={"Content-Type": "application/x-protobuf"})
                with lock:
                    if r.status_code == 200:
                        acked[0] += 1
                    else:
                        busy[0] += 1
                        todo.append(i)
                if r.status_code != 200:
                    time.sleep(0.05)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return acked[0], time.perf_counter() - t0, busy[0]


def overload(url: str, pid: int, bodies: list[bytes], senders: int, seconds: float) -> tuple[int, int, int, int]:
    """Flood for ``seconds``; return (RSS KiB before, max RSS KiB, 200s, 503s)."""
    stop = time.monotonic() + seconds
    counts = {"ok": 0, "busy": 0}
    lock = threading.Lock()
    rss0 = rss_kib(pid)
    peak = [rss0]
    rng = random.Random(7)

    def worker() -> None:
        with httpx.Client(timeout=60) as client:
            while time.monotonic() < stop:
                body = bodies[rng.randrange(len(bodies))] + make_suffix(rng)
                r = client.post(url, content=body, headers={"Content-Type": "application/x-protobuf"})
                with lock:
                    counts["ok" if r.status_code == 200 else "busy"] += 1

    def sampler() -> None:
        while time.monotonic() < stop + 1:
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.2)

    threads = [threading.Thread(target=worker) for _ in range(senders)] + [threading.Thread(target=sampler)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return rss0, peak[0], counts["ok"], counts["busy"]


def make_suffix(rng: random.Random) -> bytes:
    """A tiny extra ResourceSpans (1 span) appended to a body so every flood request is distinct."""
    extra = ExportTraceServiceRequest()
    rs = extra.resource_spans.add()
    rs.resource.attributes.append(kv("service.name", "flood"))
    sp = rs.scope_spans.add().spans.add()
    sp.trace_id, sp.span_id, sp.name = rng.randbytes(16), rng.randbytes(8), "flood"
    sp.start_time_unix_nano = sp.end_time_unix_nano = time.time_ns()
    return extra.SerializeToString()  # concatenated protobuf messages merge: repeated fields append


def direct_insert(data_dir: Path, bodies: list[bytes], per_request: bool = False) -> tuple[int, float, float]:
    """Insert the same rows with clickhouse-connect directly (the writer's Arrow insert call); return
    (rows, seconds for the INSERTs, seconds until background merges settled too). Decoding happens
    before the clock starts.

    ``per_request=False``: batches of 10 requests (10 000 spans), no deduplication token.
    ``per_request=True``: one INSERT per request with an ``insert_deduplication_token`` of its own and
    the writer's settings — how the writer inserted before it logged batches."""
    import pyarrow as pa

    from chainotel_analyzer.ingest.receive import decode_payload
    from chainotel_analyzer.settings import AnalyzerSettings
    from chainotel_analyzer.store.client import open_store
    from chainotel_analyzer.store.migrations import migrate
    from chainotel_analyzer.store.writer import INSERT_SETTINGS, batch_token

    decoded = [decode_payload(b, False, False, 1 << 30).spans for b in bodies]
    batches: list[tuple[pa.Table, dict | None]] = []
    group = 1 if per_request else 10
    for i in range(0, len(decoded), group):
        tables = [d.table.append_column("request_digest", pa.array([i + k] * d.count, pa.uint64()))
                  for k, d in enumerate(decoded[i : i + group])]  # fmt: skip
        settings = {**INSERT_SETTINGS, "insert_deduplication_token": batch_token(i)} if per_request else None
        batches.append((pa.concat_tables(tables), settings))
    store = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{data_dir}"))
    try:
        migrate(store.client)
        t0 = time.perf_counter()
        rows = 0
        for table, settings in batches:
            store.client.insert_arrow("chain_history", table, settings=settings)
            rows += table.num_rows
        inserted = time.perf_counter() - t0
        quiet = 0
        while quiet < 3 and time.perf_counter() - t0 < 120:  # merges the INSERTs started (the e2e run pays them)
            quiet = quiet + 1 if store.client.command("SELECT count() FROM system.merges") == 0 else 0
            time.sleep(0.1)
        return rows, inserted, time.perf_counter() - t0 - 0.3
    finally:
        store.close()


def writer_insert(data_dir: Path, bodies: list[bytes]) -> tuple[int, float, int]:
    """The analyzer's writer alone on the same rows: the decoded requests (decoded before the clock
    starts) submitted to a :class:`~chainotel_analyzer.store.writer.SpanWriter` as fast as its queue
    takes them, until every one is committed — batches, the ``chain_request_log`` look-up and log
    included, no HTTP and no decoding. Returns (rows, seconds, INSERTs)."""
    from chainotel_analyzer.ingest.receive import decode_payload
    from chainotel_analyzer.settings import AnalyzerSettings
    from chainotel_analyzer.store.client import open_store
    from chainotel_analyzer.store.interfaces import WriteQueueFull
    from chainotel_analyzer.store.migrations import migrate
    from chainotel_analyzer.store.writer import SpanWriter

    decoded = [decode_payload(b, False, False, 1 << 30) for b in bodies]
    settings = AnalyzerSettings(clickhouse_url=f"chdb://{data_dir}")
    store = open_store(settings)
    try:
        migrate(store.client)
        writer = SpanWriter(store, settings)
        writer.start()
        t0 = time.perf_counter()
        futures = []
        for payload in decoded:
            while True:
                try:
                    futures.append(writer.submit(payload.digest, payload.spans))
                    break
                except WriteQueueFull:
                    time.sleep(0.005)
        rows = sum(payload.spans.count for payload in decoded if futures.pop(0).result(300))
        secs = time.perf_counter() - t0
        writer.stop()
        return rows, secs, writer.inserts
    finally:
        store.close()


def message_bytes(data_dir: Path, bodies: list[bytes]) -> tuple[float, float]:
    """chain_history bytes per span (after merge) of ``bodies`` stored with and without the span,
    resource and scope messages (``span_otlp`` etc., migration 0006; without = ``''``, as rows stored
    before it): what keeping every field costs on disk. Returns (without, with)."""
    import pyarrow as pa

    from chainotel_analyzer.ingest.receive import decode_payload
    from chainotel_analyzer.model.rows import insert_table
    from chainotel_analyzer.settings import AnalyzerSettings
    from chainotel_analyzer.store.client import open_store
    from chainotel_analyzer.store.migrations import migrate

    decoded = [decode_payload(b, False, False, 1 << 30).spans for b in bodies]
    out = []
    for blank in (True, False):
        path = data_dir / ("without" if blank else "with")
        store = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{path}"))
        try:
            migrate(store.client)
            for i in range(0, len(decoded), 10):
                table = insert_table([(i + k, d) for k, d in enumerate(decoded[i : i + 10])])
                if blank:
                    for name in ("span_otlp", "resource_otlp", "scope_otlp"):
                        empty = pa.array([b""] * table.num_rows, pa.binary())
                        table = table.set_column(table.schema.get_field_index(name), name, empty)
                store.client.insert_arrow("chain_history", table)
        finally:
            store.close()
        size, rows = disk_usage(path)["chain_history"]
        out.append(size / max(rows, 1))
    return out[0], out[1]


def disk_usage(data_dir: Path) -> dict[str, tuple[int, int]]:
    """table → (bytes on disk, rows) over active parts, after OPTIMIZE FINAL."""
    from chainotel_analyzer.settings import AnalyzerSettings
    from chainotel_analyzer.store.client import open_store

    store = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{data_dir}"))
    try:
        out = {}
        for table in ("chain_history", "chain_traces", "chain_metrics", "chain_request_log"):
            store.client.command(f"OPTIMIZE TABLE {table} FINAL")
            row = store.client.query(
                "SELECT sum(bytes_on_disk), sum(rows) FROM system.parts WHERE active AND database = currentDatabase() "
                "AND table = {t:String}", parameters={"t": table},
            ).result_rows[0]  # fmt: skip
            out[table] = (int(row[0]), int(row[1]))
        return out
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=200, help="1 000-span requests in the end-to-end run")
    ap.add_argument("--senders", type=int, default=8)
    ap.add_argument("--overload-senders", type=int, default=32)
    ap.add_argument("--overload-queue", type=int, default=16_000, help="CHAINOTEL_QUEUE_MAX_SPANS of the overload run")
    ap.add_argument("--overload-decode-bytes", type=int, default=4 << 20, help="CHAINOTEL_DECODE_MAX_PENDING_BYTES there")
    ap.add_argument("--overload-seconds", type=float, default=10.0)
    ap.add_argument("--time-limit", type=float, default=120.0, help="cap on the end-to-end run (s)")
    args = ap.parse_args(argv)

    rng = random.Random(42)
    t = time.perf_counter()
    bodies = [make_request(rng) for _ in range(args.requests)]
    print(f"generated {len(bodies)} requests of {SPANS_PER_REQUEST} spans "
          f"({sum(map(len, bodies)) / len(bodies) / 1024:.0f} KiB each) in {time.perf_counter() - t:.1f} s", flush=True)  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        port = free_port()
        proc = start_analyzer(tmp / "e2e", port, {"CHAINOTEL_DECODE_WORKERS": os.environ.get("CHAINOTEL_DECODE_WORKERS", "2")})
        url = f"http://127.0.0.1:{port}/v1/traces"
        try:
            send_all(url, bodies[:16], args.senders, 30)  # warm-up (decoder processes, engine caches)
            cpu0 = tree_cpu_s(proc.pid)
            acked, secs, busy = send_all(url, bodies[16:], args.senders, args.time_limit)
            cpu_us_per_span = (tree_cpu_s(proc.pid) - cpu0) / max(acked * SPANS_PER_REQUEST, 1) * 1e6
            e2e_rate = acked * SPANS_PER_REQUEST / secs
            queue = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).json()["write_queue"]
            per_insert = queue["spans_written"] / max(queue["inserts"], 1)
            writer_busy = queue["insert_seconds"]
            print(f"writer: {queue['inserts']} INSERTs, {per_insert:,.0f} spans each, "
                  f"{writer_busy / max(queue['inserts'], 1) * 1000:.0f} ms each (all phases)", flush=True)  # fmt: skip
            print(f"end to end: {acked} requests in {secs:.2f} s ({busy} × 503)", flush=True)
        finally:
            stop(proc)
        # overload: a second analyzer whose queue (16 000 spans) is smaller than what the senders keep in flight
        port = free_port()
        proc = start_analyzer(tmp / "overload", port, {
            "CHAINOTEL_QUEUE_MAX_SPANS": str(args.overload_queue),
            "CHAINOTEL_DECODE_MAX_PENDING_BYTES": str(args.overload_decode_bytes),
        })  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/v1/traces"
            rss0, rss_peak, ok, n503 = overload(url, proc.pid, bodies, args.overload_senders, args.overload_seconds)
            print(f"overload: {ok} × 200, {n503} × 503, RSS {rss0 / 1024:.0f} → max {rss_peak / 1024:.0f} MiB", flush=True)
        finally:
            stop(proc)
        rows, dsecs, settled = direct_insert(tmp / "direct", bodies[16:])
        direct_rate = rows / dsecs
        settled_rate = rows / settled
        rows_1, dsecs_1, settled_1 = direct_insert(tmp / "direct-per-request", bodies[16:], per_request=True)
        per_request_rate, per_request_settled = rows_1 / dsecs_1, rows_1 / settled_1
        rows_w, secs_w, inserts_w = writer_insert(tmp / "writer", bodies[16:])
        writer_rate = rows_w / secs_w
        usage = disk_usage(tmp / "e2e")
        without_messages, with_messages = message_bytes(tmp / "bytes", bodies[16:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    hist_bytes, hist_rows = usage["chain_history"]
    views_bytes = usage["chain_traces"][0] + usage["chain_metrics"][0] + usage["chain_request_log"][0]
    ratio = e2e_rate / direct_rate
    print()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end of the run "
          "(shared machine: other processes compete for the same cores)")  # fmt: skip
    print()
    print("| figure | value | goal |")
    print("|---|---|---|")
    print(f"| end to end, OTLP/HTTP protobuf, {args.senders} senders × 1 000-span requests | {e2e_rate:,.0f} spans/s | ≥ 50 000 |")
    print(f"| direct clickhouse-connect insert, same rows, 10 000/insert | {direct_rate:,.0f} spans/s | baseline |")
    print(f"| direct insert incl. the background merges it causes | {settled_rate:,.0f} spans/s | — |")
    print(f"| direct insert, one INSERT per 1 000-span request with a token of its own (the former writer) | {per_request_rate:,.0f} spans/s "
          f"(incl. merges {per_request_settled:,.0f}) | — |")
    print(f"| per-request / batched direct insert (what one INSERT per request costs the store) | "
          f"{per_request_rate / direct_rate:.2f} (incl. merges {per_request_settled / settled_rate:.2f}) | ≈ 1 |")
    print(f"| the writer alone (SpanWriter: batches, request log, look-ups; no HTTP, no decoding), same rows | "
          f"{writer_rate:,.0f} spans/s in {inserts_w} INSERTs; / direct batched {writer_rate / direct_rate:.2f} | ≈ 1 |")
    print(f"| end to end / direct | {ratio:.2f} (vs incl. merges: {e2e_rate / settled_rate:.2f}) | ≥ 0.6 |")
    print(f"| analyzer CPU per span end to end (its process and the decoders, from /proc) | {cpu_us_per_span:.1f} µs | — |")
    print(f"| spans per INSERT (end to end) | {per_insert:,.0f} | ≤ 10 000 |")
    print(f"| RSS under {args.overload_seconds:.0f} s overload ({args.overload_senders} senders, queue {args.overload_queue:,} spans, decoder backlog {args.overload_decode_bytes >> 20} MiB) | {rss0 / 1024:.0f} → {rss_peak / 1024:.0f} MiB ({n503} × 503, {ok} × 200) | bounded |")
    print(f"| chain_history bytes/span on disk (after merge) | {hist_bytes / max(hist_rows, 1):.1f} B ({hist_rows:,} rows) | — |")
    print(f"| chain_history bytes/span without / with the span, resource and scope messages (same rows, "
          f"batched INSERTs, after merge) | {without_messages:.1f} B → {with_messages:.1f} B | — |")
    print(f"| + chain_traces + chain_metrics + chain_request_log bytes/span | {views_bytes / max(hist_rows, 1):.1f} B | — |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
