"""ChainSpanProcessor, XChainPropagator and XChainIdGenerator in-process with the real SDK
(in-memory exporter): decision table lifecycle, bounds, baggage, one-shot requested trace IDs."""

from __future__ import annotations

import threading
import uuid

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from chainotel import attributes as attr
from chainotel.catalog import parse_catalog
from chainotel.id_generator import XChainIdGenerator
from chainotel.processor import ChainSpanProcessor
from chainotel.propagator import XChainPropagator

CATALOG = parse_catalog(
    """
chains:
  - {id: B3, name: Trading, category: service_communication, max_duration_ms: 1,
     match: [{service: svc, route: "/trade*"}]}
  - {id: D1, name: Inference, category: ai_ml_processing, max_duration_ms: 1,
     match: [{span_name: "ml.inference*"}]}
""",
    "test",
)


@pytest.fixture
def setup():
    exporter = InMemorySpanExporter()
    processor = ChainSpanProcessor(CATALOG, max_traces=4)
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}), id_generator=XChainIdGenerator())
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("t"), processor, exporter


def by_name(exporter):
    return {s.name: s for s in exporter.get_finished_spans()}


def test_entry_span_decides_and_children_inherit(setup):
    tracer, processor, exporter = setup
    with tracer.start_as_current_span("GET /trade", kind=SpanKind.SERVER, attributes={"http.route": "/trade"}):
        with tracer.start_as_current_span("child"):
            pass
        assert len(processor._decisions) == 1
    assert not processor._decisions  # dropped when the local root ended
    spans = by_name(exporter)
    assert spans["child"].attributes[attr.CHAIN_ID] == "B3"
    assert spans["GET /trade"].attributes[attr.CHAIN_INSTANCE_ID] == str(uuid.UUID(int=spans["child"].context.trace_id))


def test_first_matching_span_decides_later_spans(setup):
    tracer, _, exporter = setup
    with tracer.start_as_current_span("GET /other", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("before"):
            pass
        with tracer.start_as_current_span("ml.inference.run"):
            with tracer.start_as_current_span("after"):
                pass
    spans = by_name(exporter)
    assert attr.CHAIN_ID not in spans["GET /other"].attributes
    assert attr.CHAIN_ID not in spans["before"].attributes
    assert spans["ml.inference.run"].attributes[attr.CHAIN_ID] == "D1"
    assert spans["after"].attributes[attr.CHAIN_ID] == "D1"


def test_upstream_baggage_wins_over_rules(setup):
    tracer, _, exporter = setup
    ctx = baggage.set_baggage(attr.BAGGAGE_CHAIN_ID, "C7", context.Context())  # unknown here: no name
    with tracer.start_as_current_span("GET /trade", context=ctx, attributes={"http.route": "/trade"}):
        pass
    s = by_name(exporter)["GET /trade"]
    assert s.attributes[attr.CHAIN_ID] == "C7"
    assert s.attributes[attr.CHAIN_CATEGORY] == "user_experience"
    assert attr.CHAIN_NAME not in s.attributes


def test_decision_table_is_bounded(setup):
    tracer, processor, _ = setup
    open_spans = [tracer.start_span(f"root{i}") for i in range(10)]
    assert len(processor._decisions) == 4
    for span in open_spans:
        span.end()
    assert not processor._decisions


def test_requested_trace_id_is_one_shot_and_per_context(setup):
    tracer, _, _ = setup
    propagator = XChainPropagator()
    results = {}

    def request(chain: uuid.UUID):
        ctx = propagator.extract({attr.HEADER_CHAIN_ID: str(chain)})
        token = context.attach(ctx)
        try:
            first = tracer.start_span("server", context=ctx)
            second = tracer.start_span("another root", context=ctx)
            results[chain] = (first.get_span_context().trace_id, second.get_span_context().trace_id, first.parent)
            first.end()
            second.end()
        finally:
            context.detach(token)

    chains = [uuid.uuid4() for _ in range(8)]
    threads = [threading.Thread(target=request, args=(c,)) for c in chains]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for chain in chains:
        first, second, parent = results[chain]
        assert first == chain.int and parent is None
        assert second != chain.int


def test_inject_writes_chain_id_and_baggage_once(setup):
    tracer, _, _ = setup
    propagator = XChainPropagator()
    with tracer.start_as_current_span("GET /trade", attributes={"http.route": "/trade"}):
        with tracer.start_as_current_span("client") as client:
            carrier: dict[str, str] = {}
            propagator.inject(carrier)
            assert carrier[attr.HEADER_CHAIN_ID] == str(uuid.UUID(int=client.get_span_context().trace_id))
            assert carrier["baggage"] == "chain.id=B3"
            with_baggage = baggage.set_baggage(attr.BAGGAGE_CHAIN_ID, "B3")
            carrier = {}
            propagator.inject(carrier, context=with_baggage)
            assert "baggage" not in carrier  # the baggage propagator already carries it


def test_extract_never_raises():
    class Broken:
        def get(self, carrier, key):
            raise RuntimeError("bad getter")

        def keys(self, carrier):
            return []

    ctx = context.Context()
    assert XChainPropagator().extract({}, ctx, Broken()) is ctx


def test_span_limits_are_honoured():
    from opentelemetry.sdk.trace import SpanLimits

    for limits, check in (
        (SpanLimits(max_span_attributes=3), lambda s: len(s.attributes) == 3 and s.dropped_attributes >= 1),
        (SpanLimits(max_attribute_length=6), lambda s: s.attributes[attr.CHAIN_NAME] == "Tradin"),
    ):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": "svc"}), span_limits=limits)
        provider.add_span_processor(ChainSpanProcessor(CATALOG))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("t")
        with tracer.start_as_current_span("GET /trade", attributes={"http.route": "/trade"}):
            with tracer.start_as_current_span("child"):
                pass
        for span in exporter.get_finished_spans():
            assert check(span), (limits, dict(span.attributes))


# --- SpanContext reads and attribute writes that rely on SDK internals (checked, with fallbacks) ---

def test_span_context_layout_is_checked_at_import(monkeypatch):
    from chainotel import processor

    assert processor._span_context_rebuilder() is None  # the installed API: direct tuple reads

    class ReorderedSpanContext(tuple):
        """A future SpanContext that keeps its properties but not the tuple order."""

        def __new__(cls, trace_id, span_id, is_remote):
            return tuple.__new__(cls, (is_remote, span_id, trace_id))

        trace_id = property(lambda self: self[2])
        span_id = property(lambda self: self[1])
        is_remote = property(lambda self: self[0])

    monkeypatch.setattr(processor, "SpanContext", ReorderedSpanContext)
    rebuild = processor._span_context_rebuilder()
    ctx = ReorderedSpanContext(0xABC, 0xDEF, False)
    assert rebuild(ctx)[processor._TRACE_ID] == 0xABC and rebuild(ctx)[processor._IS_REMOTE] is False


def test_property_fallback_tags_like_the_direct_reads(monkeypatch):
    """With the layout check failed, the processor reads the properties and tags the same."""
    from chainotel import processor

    rebuilt = []

    def rebuild(ctx):
        rebuilt.append(ctx)
        return processor._span_context_tuple(ctx)

    monkeypatch.setattr(processor, "_rebuild_span_context", rebuild)
    exporter = InMemorySpanExporter()
    chain_processor = ChainSpanProcessor(CATALOG)
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    provider.add_span_processor(chain_processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    remote = trace.SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
    with tracer.start_as_current_span("GET /trade", context=trace.set_span_in_context(trace.NonRecordingSpan(remote)),
                                      attributes={"http.route": "/trade"}):
        with tracer.start_as_current_span("child"):
            pass
        assert len(chain_processor._decisions) == 1
    assert not chain_processor._decisions  # the remote-parent local root was recognised at its end
    spans = by_name(exporter)
    assert spans["child"].attributes[attr.CHAIN_ID] == spans["GET /trade"].attributes[attr.CHAIN_ID] == "B3"
    assert spans["child"].attributes[attr.CHAIN_INSTANCE_ID] == str(uuid.UUID(int=0x1234))
    assert len(rebuilt) == 4  # on_start and on_end of both spans read through the properties


def _stored_elsewhere_class():
    from opentelemetry.attributes import BoundedAttributes

    class StoredElsewhere(BoundedAttributes):
        """As if the SDK kept span attributes outside ``_dict``: the API writes and reads another
        dict, so a direct ``_dict`` write would be lost."""

        def __init__(self, *args, **kwargs):
            self._store = {}
            super().__init__(*args, **kwargs)

        def _setitem_locked(self, key, value):
            self._store[key] = value

        def __getitem__(self, key):
            return self._store[key]

        def __iter__(self):
            return iter(list(self._store))

        def __len__(self):
            return len(self._store)

    return StoredElsewhere


def test_direct_writes_are_checked_against_what_the_sdk_reads_back(monkeypatch):
    import opentelemetry.sdk.trace as sdk_trace

    monkeypatch.setattr(sdk_trace, "BoundedAttributes", _stored_elsewhere_class())
    exporter = InMemorySpanExporter()
    processor = ChainSpanProcessor(CATALOG)
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET /trade", attributes={"http.route": "/trade"}):
        with tracer.start_as_current_span("child"):
            pass
    assert processor._room == -1  # the write check failed: the public API is used
    for span in exporter.get_finished_spans():
        assert span.attributes[attr.CHAIN_ID] == "B3", dict(span.attributes)


def test_write_check_leaves_no_trace_on_the_span(setup):
    tracer, processor, exporter = setup
    with tracer.start_as_current_span("GET /trade", attributes={"http.route": "/trade", "z": 1, "a": 2}):
        pass
    assert processor._room >= 0  # direct writes verified on the installed SDK
    (span,) = exporter.get_finished_spans()
    keys = list(span.attributes)
    assert keys[:3] == ["http.route", "z", "a"] and not any("write_check" in k for k in keys), keys


def test_span_name_rules_are_tried_once_per_name_that_cannot_match(setup):
    tracer, processor, exporter = setup
    with tracer.start_as_current_span("GET /other", kind=SpanKind.SERVER):
        for _ in range(3):
            with tracer.start_as_current_span("db.query"):
                pass
        with tracer.start_as_current_span("ml.inference.batch"):
            pass
    rules = next(iter(processor._rules_by_resource.values()))
    assert rules.unmatched_names == {"db.query"}
    assert by_name(exporter)["ml.inference.batch"].attributes[attr.CHAIN_ID] == "D1"
