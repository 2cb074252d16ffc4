"""``span_attributes="minimal"`` (``CHAINOTEL_SPAN_ATTRIBUTES=minimal``) in-process with the real SDK:
all four chain attributes on local roots (and on the span a ``span_name`` rule matched), ``chain.id``
alone on every other span — with the ``ChainSampler``, without it, and with a sampler it always asks."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.trace import SpanKind

from chainotel import attributes as attr
from chainotel.processor import ChainSpanProcessor
from tests.distro.test_processor import CATALOG, by_name, make_provider

FOUR = {attr.CHAIN_ID, attr.CHAIN_CATEGORY, attr.CHAIN_NAME, attr.CHAIN_INSTANCE_ID}


def chain_keys(span) -> set[str]:
    return {k for k in span.attributes if k.startswith("chain.")}


@pytest.fixture(params=["with-sampler", "processor-only", "always-asked-sampler"])
def minimal(request):
    """A tracer of a provider whose processor runs in ``minimal`` mode; ``always-asked-sampler``: the
    ChainSampler wraps a sampler it cannot answer for (so every span goes through the wrapped one)."""
    exporter = InMemorySpanExporter()
    processor = ChainSpanProcessor(CATALOG, span_attributes="minimal")
    kwargs = {"sampler": TraceIdRatioBased(1.0)} if request.param == "always-asked-sampler" else {}
    provider = make_provider(processor, exporter, request.param != "processor-only", **kwargs)
    return provider.get_tracer("t"), processor, exporter


def test_entry_span_gets_all_four_and_other_spans_chain_id_alone(minimal):
    tracer, processor, exporter = minimal
    with tracer.start_as_current_span("GET /trade", kind=SpanKind.SERVER, attributes={"http.route": "/trade"}) as root:
        with tracer.start_as_current_span("child"):
            with tracer.start_as_current_span("grandchild", attributes={"db.system.name": "postgresql"}):
                pass
        with tracer.start_as_current_span("client", kind=SpanKind.CLIENT, attributes={"http.request.method": "GET"}):
            pass
    assert not processor.decisions
    spans = by_name(exporter)
    entry = spans["GET /trade"].attributes
    assert chain_keys(spans["GET /trade"]) == FOUR
    assert (entry[attr.CHAIN_ID], entry[attr.CHAIN_CATEGORY], entry[attr.CHAIN_NAME]) == ("B3", "service_communication", "Trading")
    assert entry[attr.CHAIN_INSTANCE_ID] == str(uuid.UUID(int=root.get_span_context().trace_id))
    for name in ("child", "grandchild", "client"):
        assert chain_keys(spans[name]) == {attr.CHAIN_ID}, name
        assert spans[name].attributes[attr.CHAIN_ID] == "B3"
    assert spans["grandchild"].attributes["db.system.name"] == "postgresql"  # start attributes kept
    assert spans["client"].attributes["http.request.method"] == "GET"


def test_another_local_root_of_a_known_trace_gets_all_four(minimal):
    """A second server span of a trace already open in this process (the service called by itself,
    or one span per message) is an entry span too."""
    tracer, _, exporter = minimal
    with tracer.start_as_current_span("GET /trade", kind=SpanKind.SERVER, attributes={"http.route": "/trade"}) as first:
        sc = first.get_span_context()
        remote = trace.SpanContext(sc.trace_id, sc.span_id, is_remote=True, trace_flags=sc.trace_flags)
        ctx = trace.set_span_in_context(trace.NonRecordingSpan(remote))
        with tracer.start_as_current_span("GET /other", context=ctx, kind=SpanKind.SERVER):
            with tracer.start_as_current_span("inner"):
                pass
    spans = by_name(exporter)
    assert chain_keys(spans["GET /other"]) == FOUR
    assert spans["GET /other"].attributes[attr.CHAIN_ID] == "B3"
    assert chain_keys(spans["inner"]) == {attr.CHAIN_ID}


def test_span_name_rule_match_is_the_entry_span(minimal):
    tracer, _, exporter = minimal
    with tracer.start_as_current_span("GET /other", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("ml.inference.run"):
            with tracer.start_as_current_span("after"):
                pass
    spans = by_name(exporter)
    assert not chain_keys(spans["GET /other"])
    assert chain_keys(spans["ml.inference.run"]) == FOUR
    assert spans["ml.inference.run"].attributes[attr.CHAIN_CATEGORY] == "ai_ml_processing"
    assert chain_keys(spans["after"]) == {attr.CHAIN_ID}
    assert spans["after"].attributes[attr.CHAIN_ID] == "D1"


def test_synthetic_probe_traces_keep_the_flag_on_every_span(minimal):
    tracer, _, exporter = minimal
    ctx = baggage.set_baggage(attr.BAGGAGE_SYNTHETIC, "true", baggage.set_baggage(attr.BAGGAGE_CHAIN_ID, "B3", context.Context()))
    with tracer.start_as_current_span("GET /trade", context=ctx, kind=SpanKind.SERVER):
        with tracer.start_as_current_span("child"):
            pass
    spans = by_name(exporter)
    assert chain_keys(spans["GET /trade"]) == FOUR | {attr.CHAIN_SYNTHETIC}
    assert chain_keys(spans["child"]) == {attr.CHAIN_ID, attr.CHAIN_SYNTHETIC}
    assert spans["child"].attributes[attr.CHAIN_SYNTHETIC] is True


def test_full_mode_is_the_default_and_other_modes_are_refused():
    assert ChainSpanProcessor(CATALOG).span_attributes == "full"
    with pytest.raises(ValueError, match="span_attributes must be one of"):
        ChainSpanProcessor(CATALOG, span_attributes="none")
