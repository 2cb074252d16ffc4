"""Memory and liveness under hostile requests: ``python -m bench.memory [--rounds N]``.

A real ``chainotel-analyzer serve`` with default settings (chDB in a temp dir) is measured idle —
the baseline of this run — and then while it takes, all at once and bounded in count and time:

- amplifying requests: a ~100 KB resource attribute over 20 000 tiny spans (≈ 150 KB gzip, ≈ 2 GB
  if every row held its copy), over OTLP/HTTP (gzip) and OTLP/gRPC;
- requests of 110 000 spans (more than the write queue holds);
- 1 100 sockets trickling partial headers, one stalled 15 MiB upload;
- ``since=1e999990`` on a window endpoint;
- well-behaved traffic beside it: 1 000-span requests from 4 senders.

Figures: peak RSS of the process tree (analyzer + decoders, sampled every 50 ms from /proc) against
the idle baseline and the 1.5 GiB budget; the slowest ``/health`` answer during the run; the answers
each kind of request got. Reported, never asserted.
"""

from __future__ import annotations

import argparse
import gzip
import random
import socket
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import httpx

from bench.ingest import make_request
from tests.processes import running
from tests.security.test_limits import amplifying_request, tree_rss_bytes
from tests.ingest.otlp_data import request

BUDGET_BYTES = 1536 * 1024**2
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
PB = {"Content-Type": "application/x-protobuf"}


def run(rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="chainotel-bench-memory-") as tmp, running(Path(tmp) / "db") as a:
        time.sleep(2)  # decoders warmed up
        idle = tree_rss_bytes(a.proc.pid)
        peak, stop = [idle], threading.Event()
        answers: Counter[str] = Counter()
        health_worst = [0.0]

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], tree_rss_bytes(a.proc.pid))
                time.sleep(0.05)

        def health():
            with httpx.Client(base_url=a.http, timeout=30) as http:
                while not stop.is_set():
                    t = time.perf_counter()
                    code = http.get("/health").status_code
                    health_worst[0] = max(health_worst[0], time.perf_counter() - t)
                    answers[f"/health {code}"] += 1
                    time.sleep(0.1)

        amplifier = amplifying_request().SerializeToString()
        amplifier_gz = gzip.compress(amplifier)
        too_many = request(n_traces=1, spans_per_trace=110_000).SerializeToString()

        def hostile():
            with httpx.Client(base_url=a.http, timeout=60) as http, grpc.insecure_channel(
                a.grpc, options=[("grpc.max_send_message_length", 64 * 1024**2)]
            ) as channel:
                export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=lambda b: b)
                for _ in range(rounds):
                    r = http.post("/v1/traces", content=amplifier_gz, headers={**PB, "Content-Encoding": "gzip"})
                    answers[f"amplifying HTTP {r.status_code}"] += 1
                    r = http.post("/v1/traces", content=too_many, headers=PB)
                    answers[f"110k spans HTTP {r.status_code}"] += 1
                    for body, what in ((amplifier, "amplifying gRPC"), (too_many, "110k spans gRPC")):
                        try:
                            export(body, timeout=60)
                            answers[f"{what} OK"] += 1
                        except grpc.RpcError as exc:
                            answers[f"{what} {exc.code().name}"] += 1
                    r = http.get("/api/v1/analytics/bottlenecks", params={"since": "1e999990"})
                    answers[f"since=1e999990 {r.status_code}"] += 1

        def polite(seed: int):
            rng = random.Random(seed)
            with httpx.Client(base_url=a.http, timeout=60) as http:
                for _ in range(rounds * 5):
                    r = http.post("/v1/traces", content=make_request(rng), headers=PB)
                    answers[f"1000-span HTTP {r.status_code}"] += 1

        threads = [threading.Thread(target=f) for f in (sample, health)]
        for t in threads:
            t.start()
        socks = []
        for _ in range(1100):
            s = socket.create_connection(("127.0.0.1", a.http_port), timeout=10)
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Ty")
            socks.append(s)
        stalled = socket.create_connection(("127.0.0.1", a.http_port), timeout=10)
        stalled.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                        b"Content-Length: 15728640\r\n\r\n" + b"\0" * (15 * 1024**2 - 1))  # fmt: skip
        started = time.monotonic()
        workers = [threading.Thread(target=hostile)] + [threading.Thread(target=polite, args=(i,)) for i in range(4)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(600)
        elapsed = time.monotonic() - started
        stop.set()
        for t in threads:
            t.join(30)
        for s in socks + [stalled]:
            s.close()
    mib = 1024**2
    print("| figure | value |\n|---|---|")
    print(f"| idle process tree RSS (baseline) | {idle / mib:.0f} MiB |")
    print(f"| peak process tree RSS under the hostile load | {peak[0] / mib:.0f} MiB "
          f"({peak[0] / idle:.2f}× idle; budget {BUDGET_BYTES / mib:.0f} MiB: "
          f"{'within' if peak[0] <= BUDGET_BYTES else 'OVER'}) |")  # fmt: skip
    print(f"| slowest /health during the run | {health_worst[0] * 1000:.0f} ms |")
    print(f"| run time | {elapsed:.1f} s |")
    for key, n in sorted(answers.items()):
        print(f"| answers: {key} | {n} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="Hostile rounds (each: 4 refused requests, 1 GET).")
    run(parser.parse_args().rounds)


if __name__ == "__main__":
    main()
