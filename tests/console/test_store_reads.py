"""The reads behind the console's speed, on a real chDB store: the overview's one-scan read gives the
health figures and the buckets the two separate queries give; the reader's session pool runs
queries side by side, never more than its limit, and gives a session back when a query fails."""

from __future__ import annotations

import random
import threading
import time

import pytest

from bench import analysis_store as data

HOUR_NS = 3600 * 10**9


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from chainotel_analyzer.settings import AnalyzerSettings
    from chainotel_analyzer.store.catalog import seed_definitions
    from chainotel_analyzer.store.client import open_store
    from chainotel_analyzer.store.migrations import migrate

    directory = tmp_path_factory.mktemp("reads") / "db"
    opened = open_store(AnalyzerSettings(clickhouse_url=f"chdb://{directory}", data_dir=str(directory.parent)))
    migrate(opened.client)
    seed_definitions(opened.client)
    old, data.TRACES = data.TRACES, 600
    try:
        cols = data.generate_rows(random.Random(11), ["A1", "B1", "C2"])
    finally:
        data.TRACES = old
    opened.client.insert("chain_history", list(cols.values()), column_names=list(cols), column_oriented=True)
    yield opened
    opened.close()


def test_overview_read_is_the_figures_and_the_buckets(store):
    from chainotel_analyzer.store.queries import ClickHouseTraceReader

    reader = ClickHouseTraceReader(store.client)
    since, until = data.T0_NS + HOUR_NS // 4, data.T0_NS + HOUR_NS  # a window that cuts traces off
    slas = {"A1": 150.0, "B1": None, "C2": 300.0}
    figures, buckets = reader.chain_overview(since, until, 300, slas)
    assert figures == reader.chain_figures(since, until, slas) and {f["chain"] for f in figures} == {"A1", "B1", "C2"}
    separate = {(r["chain"], r["bucket"]): r for r in reader.chain_buckets(since, until, 300)}
    assert {(r["chain"], r["bucket"]) for r in buckets} == set(separate) and len(separate) == 3 * 9
    for r in buckets:
        s = separate[(r["chain"], r["bucket"])]
        assert (r["traces"], r["error_traces"], r["p95_ms"]) == (s["traces"], s["errors"], s["p95_ms"])
    assert sum(r["traces"] for r in buckets) == sum(f["traces"] for f in figures)


def test_window_traces_reads_every_span_of_the_picked_traces(store):
    from chainotel_analyzer.store.queries import ClickHouseTraceReader

    reader = ClickHouseTraceReader(store.client)
    total, traces = reader.window_traces(data.T0_NS, data.T0_NS + HOUR_NS, "B1")
    assert total == len(traces) == 200
    assert {len(spans) for spans in traces.values()} == {data.SPANS_PER_TRACE}


def test_session_pool_runs_queries_side_by_side_within_its_limit(store):
    from chainotel_analyzer.store.queries import SessionPool

    opened: list = []

    def connect():
        opened.append(store.new_client())
        return opened[-1]

    pool = SessionPool(store.client, connect, limit=3)
    inside, most, lock = [0], [0], threading.Lock()
    clients: set[int] = set()

    def work():
        with pool.session() as client:
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                clients.add(id(client))
            client.query("SELECT sleep(0.2)")
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(7)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most[0] == 3 and len(opened) == 2 and len(clients) == 3  # the first session and two more
    assert time.monotonic() - t0 < 7 * 0.2  # some ran at the same time

    with pytest.raises(Exception):
        with pool.session() as client:
            client.query("SELECT no_such_function()")
    with pool.session() as client:  # the failed query's session came back
        assert client.command("SELECT 1") == 1


def test_session_pool_without_connect_is_one_session(store):
    from chainotel_analyzer.store.queries import SessionPool

    pool = SessionPool(store.client)
    seen = []

    def work():
        with pool.session() as client:
            seen.append(client)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(seen) == 3 and all(c is store.client for c in seen)
