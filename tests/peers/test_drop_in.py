"""The drop-in, collector-config/chainotel-exporter.yaml, added to a user's own Collector with a
second ``--config``: their exporter still gets every span, and the analyzer gets every span too —
with and without the ``confmap.enableMergeAppendOption`` feature gate. And what the Collector really
does with a later file's list (the reason the drop-in brings its own pipeline)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.processes import running

from .peers import BIN, DROP_IN, NO_SELF_METRICS, Collector, OtlpSink, analyzer_span_ids, emit_spans, wait_for

HERE = Path(__file__).parent
THEIRS = HERE / "theirs.yaml"
NAIVE = HERE / "naive-drop-in.yaml"
MERGE_APPEND = "confmap.enableMergeAppendOption"
GATES = pytest.mark.parametrize("gates", ["", MERGE_APPEND], ids=["default-merge", "merge-append-gate"])


@GATES
def test_their_exporter_and_the_analyzer_both_get_every_span(tmp_path, gates):
    with OtlpSink() as sink, running(tmp_path / "data", grpc=False) as analyzer:
        collector = Collector(tmp_path, [THEIRS, DROP_IN], analyzer=analyzer.http, env={"THEIR_BACKEND": sink.url},
                              feature_gates=gates).start()  # fmt: skip
        try:
            sent = emit_spans(collector.http, traces=20, spans_per_trace=5)
            expected = {s for spans in sent.values() for s in spans}
            assert wait_for(lambda: expected <= sink.span_ids.keys(), 30), "their exporter lost spans"
            assert wait_for(lambda: expected <= analyzer_span_ids(analyzer.http, sent).keys(), 30), "the analyzer lost spans"
        finally:
            collector.stop()
        assert all(sink.span_ids[s] == 1 for s in expected)
        stored = analyzer_span_ids(analyzer.http, sent)
        assert all(stored[s] == 1 for s in expected)


def _merged(tmp_path: Path, configs: list[Path], gates: str) -> dict:
    """The configuration the Collector resolved from ``configs`` (its ``print-config`` command)."""
    argv = [str(BIN / "otelcol-chainotel"), "print-config", "--mode", "unredacted"]
    if gates:
        argv.append(f"--feature-gates={gates}")
    for config in [*configs, NO_SELF_METRICS]:
        argv += ["--config", str(config)]
    env = {"OTEL_COLLECTOR_GRPC_ENDPOINT": "127.0.0.1:1", "OTEL_COLLECTOR_HTTP_ENDPOINT": "127.0.0.1:2",
           "OTEL_COLLECTOR_HEALTH_ENDPOINT": "127.0.0.1:3", "THEIR_BACKEND": "http://127.0.0.1:4",
           "CHAINOTEL_ANALYZER_ENDPOINT": "http://127.0.0.1:5", "PATH": "/usr/bin:/bin"}  # fmt: skip
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


@GATES
def test_the_drop_in_adds_a_pipeline_and_leaves_theirs_alone(tmp_path, gates):
    merged = _merged(tmp_path, [THEIRS, DROP_IN], gates)
    pipelines = merged["service"]["pipelines"]
    assert pipelines["traces"] == {"receivers": ["otlp"], "processors": ["memory_limiter", "batch/theirs"],
                                   "exporters": ["otlphttp/theirs"]}  # fmt: skip
    assert pipelines["traces/chainotel"]["exporters"] == ["otlphttp/chainotel"]
    assert merged["service"]["extensions"] == ["health_check"]


def test_without_the_gate_a_later_list_replaces_the_earlier_one(tmp_path):
    """Default merge: maps merge key by key, every list of the later file replaces the earlier one —
    the naive file's exporter list drops the user's own exporter, whose backend would get nothing."""
    merged = _merged(tmp_path, [THEIRS, NAIVE], "")
    traces = merged["service"]["pipelines"]["traces"]
    assert traces["exporters"] == ["otlphttp/chainotel"]
    assert traces["processors"] == ["batch/naive"]
    assert traces["receivers"] == ["otlp"]  # not in the later file: kept
    assert {"memory_limiter", "batch/theirs", "batch/naive"} <= merged["processors"].keys()  # maps merged


def test_with_the_gate_a_later_exporters_list_is_appended(tmp_path):
    """``confmap.enableMergeAppendOption``: ``service::extensions`` and the ``receivers``/``exporters``
    lists under ``service`` are appended, earlier entries first, without duplicates; a pipeline's
    ``processors`` list is still replaced."""
    merged = _merged(tmp_path, [THEIRS, NAIVE], MERGE_APPEND)
    traces = merged["service"]["pipelines"]["traces"]
    assert traces["exporters"] == ["otlphttp/theirs", "otlphttp/chainotel"]
    assert merged["service"]["extensions"] == ["health_check"]
    assert traces["processors"] == ["batch/naive"]
