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



_CUT_SHORT = r"""
import os, signal, sys
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from chainotel_analyzer.ingest.otlp import decode_request
from chainotel_analyzer.ingest.receive import request_digest
from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.client import open_store
from chainotel_analyzer.store.migrations import migrate
from chainotel_analyzer.store import writer as w

bodies = [bytes.fromhex(line) for line in sys.stdin.read().split()]
settings = AnalyzerSettings(clickhouse_url="chdb://" + sys.argv[1], batch_max_wait_s=1.0, batch_min_spans=10**6)
store = open_store(settings)
migrate(store.client)
store.client.command("DETACH TABLE chain_metrics_mv")  # until the restart: the INSERT does not reach chain_metrics
real_log = w.SpanWriter._log

def log_then_die(self, pairs, batch, state):
    if state == w.STORED:  # the INSERT has returned: die before chain_request_log says so
        os.kill(os.getpid(), signal.SIGKILL)
    real_log(self, pairs, batch, state)

w.SpanWriter._log = log_then_die
writer = w.SpanWriter(store, settings)
writer.start()
futures = [writer.submit(request_digest(b), decode_request(ExportTraceServiceRequest.FromString(b))) for b in bodies]
futures[0].result(60)
"""


def test_a_batch_cut_short_between_chain_history_and_a_view_is_completed_once(tmp_path):
    """The state a ``kill -9`` leaves between the commits of one INSERT's parts, made on purpose: a
    batch of four requests is in chain_history and chain_traces, not in chain_metrics, and still
    pending. The next start completes it: chain_metrics gets the batch, chain_history keeps it once
    (its rows, read back, are recognised as the batch they are), and the senders' retries are
    answered "already stored"."""
    import subprocess
    import sys

    data = tmp_path / "db"
    bodies = [request(n_traces=5, spans_per_trace=4, service=f"cut{i}").SerializeToString() for i in range(4)]
    died = subprocess.run([sys.executable, "-c", _CUT_SHORT, str(data)], input="\n".join(b.hex() for b in bodies),
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert died.returncode == -9, died.stderr[-2000:]
    with open_db(data) as db:
        assert db.query("SELECT uniqExact(insert_batch), count() FROM chain_history").result_rows == [(1, 80)]
        assert db.command("SELECT sum(span_count) FROM chain_traces") == 80
        assert db.command("SELECT count() FROM chain_metrics") == 0
    Analyzer(data, {}, grpc=False).start().stop()  # a start completes the pending batch
    with open_db(data) as db:
        assert db.command("SELECT count() FROM chain_history") == 80
        assert db.command("SELECT sum(span_count) FROM chain_traces") == 80
        assert db.command("SELECT sum(calls) FROM chain_metrics") == 80
        assert db.query("SELECT DISTINCT state FROM chain_request_log FINAL").result_rows == [(1,)]
    analyzer = Analyzer(data, {}, grpc=False).start()
    try:  # the senders' retries: already stored
        for body in bodies:
            assert httpx.post(analyzer.http + "/v1/traces", content=body, headers=PB, timeout=30).status_code == 200
    finally:
        analyzer.stop()
    with open_db(data) as db:
        assert db.command("SELECT count() FROM chain_history") == 80
        assert db.command("SELECT sum(calls) FROM chain_metrics") == 80
