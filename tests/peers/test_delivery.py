"""Delivery guarantees of collector-config/otel-collector.yaml's analyzer exporter, observed on the
real Collector and the real analyzer: the sending queue and retry carry spans across an analyzer
outage and its 503 answers under overload, each span stored exactly once; with the persistent queue
(collector-config/persistent-queue.yaml) a Collector killed with SIGKILL delivers after its restart
what it had accepted."""

from __future__ import annotations

import time

import pytest

from tests.processes import Analyzer

from .peers import FULL, PERSISTENT_QUEUE, Collector, analyzer_span_ids, emit_spans, wait_for

OUTAGE_S = 20


def _delivered_once(analyzer_url: str, sent: dict[str, set[str]], timeout_s: float) -> None:
    expected = {s for spans in sent.values() for s in spans}
    wait_for(lambda: expected <= analyzer_span_ids(analyzer_url, sent).keys(), timeout_s, interval_s=1)
    stored = analyzer_span_ids(analyzer_url, sent)
    missing = expected - stored.keys()
    assert not missing, f"{len(missing)} of {len(expected)} spans never reached the analyzer"
    twice = {s: n for s, n in stored.items() if n > 1}
    assert not twice, f"{len(twice)} spans stored more than once"
    assert stored.keys() == expected


def test_an_analyzer_outage_of_20_s_loses_and_duplicates_nothing(tmp_path):
    analyzer = Analyzer(tmp_path / "data", grpc=False).start()
    collector = Collector(tmp_path, [FULL], analyzer=analyzer.http).start()
    try:
        before = emit_spans(collector.http, traces=10, spans_per_trace=4)
        _delivered_once(analyzer.http, before, 30)
        analyzer.stop()
        down_since = time.monotonic()
        during = emit_spans(collector.http, traces=30, spans_per_trace=4)  # accepted by the Collector, queued
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_since)))
        assert "connection refused" in collector.tail(20000).lower(), "the Collector never saw the analyzer down"
        analyzer.start()  # same ports, same chDB directory
        _delivered_once(analyzer.http, during, 90)
        _delivered_once(analyzer.http, before, 5)
    finally:
        collector.stop()
        analyzer.stop()


def test_503_under_overload_is_retried_until_every_span_is_stored_once(tmp_path):
    # the analyzer answers 503 once CHAINOTEL_HTTP_MAX_CONCURRENCY requests are in progress; the Collector's four
    # queue consumers send in parallel, so most of its requests are refused at first.
    analyzer = Analyzer(tmp_path / "data", env={"CHAINOTEL_HTTP_MAX_CONCURRENCY": "1"}, grpc=False).start()
    collector = Collector(tmp_path, [FULL], analyzer=analyzer.http,
                          env={"GOMAXPROCS": "2"}).start()  # fmt: skip
    try:
        sent = {}
        for _ in range(3):  # bursts larger than one batch, so several exports are in flight at once
            sent |= emit_spans(collector.http, traces=100, spans_per_trace=10)
        # Bounded generously: refused exports back off exponentially (up to 30 s between tries), and
        # on a loaded machine the analyzer lets few through.
        _delivered_once(analyzer.http, sent, 180)
        assert "503" in collector.tail(200000), "the analyzer never answered 503: the test did not overload it"
    finally:
        collector.stop()
        analyzer.stop()


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent-queue", "in-memory-queue"])
def test_a_collector_killed_with_sigkill_delivers_its_persistent_queue_after_restart(tmp_path, persistent):
    """With persistent-queue.yaml every accepted span arrives after the restart; without it (the
    control) the spans that were only in the in-memory queue are gone."""
    analyzer = Analyzer(tmp_path / "data", grpc=False)  # ports chosen, not started: the analyzer is down
    queue_dir = tmp_path / "queue"
    configs = [FULL, PERSISTENT_QUEUE] if persistent else [FULL]
    collector = Collector(tmp_path, configs, analyzer=analyzer.http, env={"OTEL_COLLECTOR_QUEUE_DIR": str(queue_dir)}).start()
    try:
        sent = emit_spans(collector.http, traces=25, spans_per_trace=4)
        time.sleep(3)  # past the batch processor's 1 s timeout: the batches are in the exporter's queue
        collector.kill()
        assert (queue_dir.is_dir() and any(queue_dir.iterdir())) == persistent
        analyzer.start()
        collector.start()  # same ports, same queue directory
        if persistent:
            _delivered_once(analyzer.http, sent, 60)
        else:
            time.sleep(5)
            assert not analyzer_span_ids(analyzer.http, sent), "spans of a SIGKILLed in-memory queue arrived"
    finally:
        collector.stop()
        analyzer.stop()
