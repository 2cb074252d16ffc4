"""The real Collector in front of an analyzer with authentication on: the exporter of
collector-config/otel-collector.yaml and of the drop-in sends ``authorization: Bearer
${env:CHAINOTEL_INGEST_TOKEN}``. With an ingest token every span arrives; with a wrong token, or a
token without the ``ingest`` scope, none is stored and the Collector logs why (401 / 403)."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest

from tests.processes import running

from .peers import DROP_IN, FULL, Collector, OtlpSink, emit_spans, wait_for
from .test_drop_in import THEIRS

TOKENS = {"collector": ("collector-ingest-token-0123456789", "ingest"), "viewer": ("viewer-read-token-0123456789", "read")}
LOG_CHARS = 10**7  # the whole log
CONFIGS = pytest.mark.parametrize("configs", [[FULL], [THEIRS, DROP_IN]], ids=["otel-collector.yaml", "drop-in"])


@pytest.fixture(scope="module")
def analyzer(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("collector-auth")
    auth = tmp / "tokens.yaml"
    auth.write_text("".join(f"- name: {name}\n  token_sha256: '{hashlib.sha256(token.encode()).hexdigest()}'\n"
                            f"  scopes: [{scope}]\n" for name, (token, scope) in TOKENS.items()))  # fmt: skip
    with running(tmp / "data", {"CHAINOTEL_AUTH_FILE": str(auth)}, grpc=False) as a:
        yield a


def stored(analyzer, sent: dict[str, set[str]]) -> set[str]:
    """Span IDs of the ``sent`` traces the analyzer stored (read with the read-scoped token)."""
    out: set[str] = set()
    with httpx.Client(base_url=analyzer.http, timeout=30, headers={"Authorization": f"Bearer {TOKENS['viewer'][0]}"}) as c:
        for trace_id in sent:
            r = c.get(f"/api/v1/chains/events/{uuid.UUID(hex=trace_id)}")
            assert r.status_code in (200, 404), r.text
            if r.status_code == 200:
                out.update(e["span_id"] for e in r.json()["events"])
    return out


@CONFIGS
def test_an_ingest_token_delivers_every_span(tmp_path, analyzer, configs):
    with OtlpSink() as sink:
        collector = Collector(tmp_path, configs, analyzer=analyzer.http,
                              env={"CHAINOTEL_INGEST_TOKEN": TOKENS["collector"][0], "THEIR_BACKEND": sink.url}).start()  # fmt: skip
        try:
            sent = emit_spans(collector.http, traces=5, spans_per_trace=4, service="auth-ok")
            expected = {s for spans in sent.values() for s in spans}
            assert wait_for(lambda: expected <= stored(analyzer, sent), 30), collector.tail()
        finally:
            collector.stop()
        assert "Unauthenticated" not in collector.tail(LOG_CHARS) and "PermissionDenied" not in collector.tail(LOG_CHARS)


@pytest.mark.parametrize("configs, token, logged", [
    ([FULL], "not-a-token-of-the-analyzer", ("HTTP Status Code 401", "code = Unauthenticated", "unknown bearer token")),
    ([THEIRS, DROP_IN], "not-a-token-of-the-analyzer", ("HTTP Status Code 401", "code = Unauthenticated")),
    ([FULL], TOKENS["viewer"][0], ("HTTP Status Code 403", "code = PermissionDenied", "lacks the 'ingest' scope")),
], ids=["wrong-token", "wrong-token-drop-in", "read-token"])  # fmt: skip
def test_a_refused_token_stores_nothing_and_the_collector_says_why(tmp_path, analyzer, configs, token, logged):
    with OtlpSink() as sink:
        collector = Collector(tmp_path, configs, analyzer=analyzer.http,
                              env={"CHAINOTEL_INGEST_TOKEN": token, "THEIR_BACKEND": sink.url}).start()  # fmt: skip
        try:
            sent = emit_spans(collector.http, traces=3, spans_per_trace=3, service="auth-refused")
            assert wait_for(lambda: all(word in collector.tail(LOG_CHARS) for word in logged), 30), collector.tail()
            assert "Dropping data" in collector.tail(LOG_CHARS)  # not retryable: the Collector does not resend it
        finally:
            collector.stop()
        if configs != [FULL]:  # the user's own exporter is not affected
            assert {s for spans in sent.values() for s in spans} <= sink.span_ids.keys()
    assert stored(analyzer, sent) == set()
