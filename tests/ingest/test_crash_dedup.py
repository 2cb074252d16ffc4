"""``kill -9`` of an analyzer at random moments under load: the next start completes the batches cut
short (the views fed by chain_history — chain_traces, chain_metrics — agree with it before anything
is retried), and after a Collector-style replay of every request chain_history holds each span once,
the views agree with it, and chain_request_log records each request stored once. A batch whose INSERT
died half-way is inserted again from chain_history with its token: refused by the tables that have
its block, stored by those that do not (deduplication in dependent views).

Real analyzer processes (tests/processes.py) on one chDB data directory, one after the other: no
state of a killed process survives but what ClickHouse wrote. Bounded: 3 kills, 48 requests.
"""

from __future__ import annotations

import random
import threading
import time

import httpx

from tests.ingest.conftest import open_db
from tests.ingest.otlp_data import request
from tests.processes import Analyzer

PB = {"Content-Type": "application/x-protobuf"}
KILLS = 3
REQUESTS = 48
SPANS = 120  # per request: 20 traces × 6 spans


def _post_all(url: str, bodies: list[bytes], acked: set[int], stop: threading.Event) -> None:
    """Four senders POST ``bodies`` (each once) until done or ``stop``; indices answered 200 go to ``acked``."""
    todo = list(range(len(bodies)))
    lock = threading.Lock()

    def sender() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                with lock:
                    if not todo:
                        return
                    i = todo.pop()
                try:
                    if client.post(url, content=bodies[i], headers=PB).status_code == 200:
                        with lock:
                            acked.add(i)
                except httpx.TransportError:
                    return  # the analyzer is gone

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)


def test_views_agree_with_chain_history_after_kill_9_and_replay(tmp_path):
    rng = random.Random(8)
    data = tmp_path / "db"
    bodies = [request(n_traces=20, spans_per_trace=6, service=f"svc{i % 4}").SerializeToString() for i in range(REQUESTS)]
    acked: set[int] = set()
    env = {"CHAINOTEL_DECODE_WORKERS": "0"}
    for _ in range(KILLS):
        analyzer = Analyzer(data, env, grpc=False).start()
        stop = threading.Event()
        sending = threading.Thread(target=_post_all, args=(analyzer.http + "/v1/traces", bodies, acked, stop))
        sending.start()
        time.sleep(rng.uniform(0.05, 1.0))  # somewhere in the middle of the INSERTs
        analyzer.proc.kill()
        analyzer.proc.wait(10)
        stop.set()
        sending.join(60)
        analyzer.stop()
    assert len(acked) < REQUESTS  # the kills cut the load short (else the test proves nothing)
    # a start alone completes what the last kill cut short
    Analyzer(data, env, grpc=False).start().stop()
    with open_db(data) as db:
        stored = db.command("SELECT count() FROM chain_history")
        assert stored >= len(acked) * SPANS
        assert db.command("SELECT sum(span_count) FROM chain_traces") == stored
        assert db.command("SELECT sum(calls) FROM chain_metrics") == stored
    # the Collector's replay: every request again, acknowledged or not
    analyzer = Analyzer(data, env, grpc=False).start()
    try:
        with httpx.Client(timeout=30) as client:
            for body in bodies:
                assert client.post(analyzer.http + "/v1/traces", content=body, headers=PB).status_code == 200
    finally:
        analyzer.stop()
    total = REQUESTS * SPANS
    with open_db(data) as db:
        assert db.command("SELECT count() FROM chain_history") == total
        assert db.command("SELECT uniqExact(span_id) FROM chain_history") == total
        assert db.command("SELECT sum(span_count) FROM chain_traces") == total
        assert db.command("SELECT sum(calls) FROM chain_metrics") == total
        logged = db.query(
            "SELECT request_digest, insert_batch, max(state), any(span_count) FROM chain_request_log GROUP BY ALL"
        ).result_rows
        stored_batches = [(digest, n) for digest, _, state, n in logged if state == 1]
        assert sorted(n for _, n in stored_batches) == [SPANS] * REQUESTS  # each request in one stored batch
        assert len({digest for digest, _ in stored_batches}) == REQUESTS
        assert all(state in (1, 2) for _, _, state, _ in logged)  # nothing left pending
