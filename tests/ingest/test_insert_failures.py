"""A failed INSERT is acknowledged only once the writer has seen that its rows are stored; a request
that makes an INSERT fail fails no other; a retry stores exactly what is missing — once in
chain_history, and the views healed — because the writer completes the batch that carried it and
ClickHouse refuses the blocks it already has (insert_deduplication_token); while the store is down
everything gets 503 until it answers again.

In-process SpanWriter on a chDB store, as the analyzer runs it. The failures are real ClickHouse
behaviour (a materialized view that throws, a CHECK constraint), except the lost response after a
commit — a ClickHouse server's HTTP read timeout, which chDB (in-process) cannot produce — injected by
raising after the real INSERT returned.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from chainotel_analyzer.ingest.otlp import decode_request
from chainotel_analyzer.ingest.receive import request_digest
from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.client import open_store
from chainotel_analyzer.store.migrations import migrate
from chainotel_analyzer.store.writer import SpanWriter, StoreUnavailable
from tests.ingest.otlp_data import request


@pytest.fixture
def writer_and_db(tmp_path) -> Iterator[tuple[SpanWriter, object]]:
    settings = AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}", batch_max_wait_s=0)
    store = open_store(settings)
    try:
        migrate(store.client)
        writer = SpanWriter(store, settings)
        writer.start()
        yield writer, store.client
        writer.stop()
    finally:
        store.close()


def _send(writer: SpanWriter, body: bytes) -> bool:
    """What a receiver does with one request; True stored now, False recognised as stored before."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    return writer.submit(request_digest(body), decode_request(ExportTraceServiceRequest.FromString(body))).result(30)


def _counts(db, service: str) -> tuple[int, int, int, int]:
    """Of ``service``: chain_history rows, distinct span IDs, chain_metrics calls, chain_traces spans."""
    p = {"s": service}
    return (
        db.command("SELECT count() FROM chain_history WHERE service_name = {s:String}", parameters=p),
        db.command("SELECT uniqExact(span_id) FROM chain_history WHERE service_name = {s:String}", parameters=p),
        db.command("SELECT sum(calls) FROM chain_metrics WHERE service_name = {s:String}", parameters=p),
        db.command(
            "SELECT sum(span_count) FROM chain_traces "
            "WHERE trace_id IN (SELECT trace_id FROM chain_history WHERE service_name = {s:String})", parameters=p,
        ),
    )


def test_view_failure_after_the_table_committed_is_healed_by_the_retry(writer_and_db):
    writer, db = writer_and_db
    # a view that throws for one service: ClickHouse has written chain_history's part when it runs
    db.command("CREATE TABLE boom_sink (x UInt8) ENGINE = Null")
    db.command(
        "CREATE MATERIALIZED VIEW boom_mv TO boom_sink AS "
        "SELECT throwIf(service_name = 'boom', 'provoked view failure') AS x FROM chain_history"
    )
    body = request(n_traces=2, spans_per_trace=3, service="boom").SerializeToString()
    with pytest.raises(StoreUnavailable, match="provoked view failure"):
        _send(writer, body)
    assert writer.healthy
    db.command("DROP VIEW boom_mv")  # the failure was transient; the sender retries
    _send(writer, body)
    assert _counts(db, "boom") == (6, 6, 6, 6)  # stored once, and every view holds each span once
    assert _send(writer, body) is False  # a further retry: already stored


def test_lost_response_after_commit(writer_and_db, monkeypatch):
    writer, db = writer_and_db
    client = writer._client
    real_insert = client.insert_arrow

    def insert_then_lose_the_response(*args, **kwargs):
        real_insert(*args, **kwargs)
        monkeypatch.setattr(client, "insert_arrow", real_insert)  # once
        raise OperationalError("HTTPConnectionPool(host='clickhouse', port=8123): Read timed out.")

    monkeypatch.setattr(client, "insert_arrow", insert_then_lose_the_response)
    body = request(n_traces=2, spans_per_trace=3, service="lost").SerializeToString()
    # the writer looks at what the failed INSERT left: all of it is committed, so it is acknowledged
    assert _send(writer, body) is True
    assert writer.spans_refused == 0
    assert _send(writer, body) is False  # the exporter's retry: stored before
    assert _counts(db, "lost") == (6, 6, 6, 6)  # chain_history and both views hold each span once


def test_insert_refused_before_commit_gets_503_and_is_stored_once_on_retry(writer_and_db):
    writer, db = writer_and_db
    db.command("ALTER TABLE chain_history ADD CONSTRAINT no_refused CHECK service_name != 'refused'")
    body = request(n_traces=1, spans_per_trace=4, service="refused").SerializeToString()
    with pytest.raises(StoreUnavailable, match="INSERT failed.*no_refused"):
        _send(writer, body)
    assert writer.healthy  # the store answers: other requests go on
    assert _send(writer, request(n_traces=1, spans_per_trace=2).SerializeToString()) is True
    db.command("ALTER TABLE chain_history DROP CONSTRAINT no_refused")
    assert _send(writer, body) is True
    assert _send(writer, body) is False
    assert _counts(db, "refused") == (4, 4, 4, 4)


def test_a_retry_reaching_a_writer_without_any_process_memory_is_not_stored_again(tmp_path):
    """Two writers one after the other on one store, the second with no state of the first: the retry
    is recognised from chain_request_log and its rows are stored once."""
    body = request(n_traces=3, spans_per_trace=4, service="twice").SerializeToString()
    settings = AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}", batch_max_wait_s=0)
    results = []
    for _ in range(2):
        store = open_store(settings)
        try:
            migrate(store.client)
            writer = SpanWriter(store, settings)
            writer.start()
            results.append(_send(writer, body))
            writer.stop()
            counts = _counts(store.client, "twice")
        finally:
            store.close()
        assert counts == (12, 12, 12, 12)
    assert results == [True, False]
    # a different request with the same spans is a different request: stored (not a retry)
    other = request(n_traces=1, spans_per_trace=1, service="twice")
    assert request_digest(other.SerializeToString()) != request_digest(body)


def test_a_request_that_fails_its_insert_fails_no_other_request_of_the_batch(tmp_path):
    """Six requests in one batch, one refused by ClickHouse (a CHECK constraint): the batch's INSERT
    fails with nothing committed, the writer inserts the halves on their own, and only the culprit
    gets 503; the other five are stored once, and the culprit is stored when retried after the fix."""
    settings = AnalyzerSettings(clickhouse_url=f"chdb://{tmp_path / 'db'}", batch_max_wait_s=1.0, batch_min_spans=10_000)
    store = open_store(settings)
    try:
        migrate(store.client)
        db = store.client
        db.command("ALTER TABLE chain_history ADD CONSTRAINT no_poison CHECK service_name != 'poison'")
        writer = SpanWriter(store, settings)
        writer.start()
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        bodies = [request(n_traces=1, spans_per_trace=3, service=f"ok{i}").SerializeToString() for i in range(5)]
        bodies.insert(3, request(n_traces=1, spans_per_trace=3, service="poison").SerializeToString())
        futures = [writer.submit(request_digest(b), decode_request(ExportTraceServiceRequest.FromString(b))) for b in bodies]
        for i, future in enumerate(futures):
            if i == 3:
                with pytest.raises(StoreUnavailable, match="no_poison"):
                    future.result(30)
            else:
                assert future.result(30) is True
        assert writer.healthy
        assert writer.spans_refused == 3  # the culprit's spans only
        assert writer.inserts == 2  # the two halves without the culprit: [ok0 ok1 ok2], then [ok3 ok4]
        assert db.command("SELECT count() FROM chain_history") == 15
        assert db.command("SELECT uniqExact(insert_batch) FROM chain_history") >= 2
        db.command("ALTER TABLE chain_history DROP CONSTRAINT no_poison")
        assert _send(writer, bodies[3]) is True
        assert all(_send(writer, b) is False for b in bodies)
        writer.stop()
        assert _counts(db, "poison") == (3, 3, 3, 3)
        assert db.command("SELECT count() FROM chain_history") == 18
        assert db.command("SELECT sum(calls) FROM chain_metrics") == 18
    finally:
        store.close()


def test_store_down_nothing_acknowledged_until_it_answers(writer_and_db):
    writer, db = writer_and_db
    assert writer.submit(1, decode_request(request())).result(10) is True
    # the look-up of stored requests fails: the store is down for the writer
    db.command("RENAME TABLE chain_request_log TO chain_request_log_away")
    with pytest.raises(StoreUnavailable, match="INSERT failed"):
        writer.submit(2, decode_request(request())).result(10)
    assert not writer.healthy
    with pytest.raises(StoreUnavailable, match="unavailable"):
        writer.submit(3, decode_request(request()))
    db.command("RENAME TABLE chain_request_log_away TO chain_request_log")
    deadline = time.monotonic() + 10
    while not writer.healthy and time.monotonic() < deadline:  # the writer probes the store every second
        time.sleep(0.1)
    assert writer.healthy
    # the refused request is stored when the sender retries it, exactly once
    assert writer.submit(2, decode_request(request())).result(10) is True
    assert writer.submit(2, decode_request(request())).result(10) is False
    writer.stop()
    assert db.command("SELECT uniqExact(request_digest) FROM chain_history") == 2
