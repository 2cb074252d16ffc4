"""A span the store cannot keep exactly is rejected alone, with its reason; its siblings are stored."""

from __future__ import annotations

from chainotel_analyzer.ingest.otlp import decode_request
from chainotel_analyzer.model.rows import MAX_START_NS
from tests.ingest.otlp_data import request


def test_a_start_after_2106_is_rejected_alone():
    """``chain_metrics.minute`` (DateTime, to 2106-02-07) saturated later starts into one minute."""
    req = request(n_traces=1, spans_per_trace=3)
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[1].start_time_unix_nano = MAX_START_NS + 1
    spans[1].end_time_unix_nano = MAX_START_NS + 10**9
    spans[2].start_time_unix_nano = MAX_START_NS  # the last storable start: kept
    spans[2].end_time_unix_nano = MAX_START_NS + 10**9
    decoded = decode_request(req)
    assert (decoded.count, decoded.rejected) == (2, 1)
    assert "after 2106-02-07T06:28:15Z" in decoded.error_message and spans[1].span_id.hex() in decoded.error_message
