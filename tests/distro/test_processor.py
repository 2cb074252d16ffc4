"""ChainSpanProcessor, XChainPropagator and XChainIdGenerator in-process with the real SDK
(in-memory exporter): decision table lifecycle, bounds, baggage, one-shot requested trace IDs."""

from __future__ import annotations

import sys
import threading
import time
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
from chainotel.sampler import ChainSampler, install

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


def make_provider(processor, exporter, chain_sampler=True, **kwargs):
    """An SDK provider with ``processor`` (and its ChainSampler, as the configurator installs it)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}), **kwargs)
    if chain_sampler:
        assert install(provider, processor)
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture(params=["with-sampler", "processor-only"])
def setup(request):
    """Every behaviour holds with the ChainSampler (children tagged at creation) and without it
    (the processor tags them with set_attributes)."""
    exporter = InMemorySpanExporter()
    processor = ChainSpanProcessor(CATALOG, max_traces=4)
    provider = make_provider(processor, exporter, request.param == "with-sampler", id_generator=XChainIdGenerator())
    return provider.get_tracer("t"), processor, exporter


def by_name(exporter):
    return {s.name: s for s in exporter.get_finished_spans()}


def test_entry_span_decides_and_children_inherit(setup):
    tracer, processor, exporter = setup
    with tracer.start_as_current_span("GET /trade", kind=SpanKind.SERVER, attributes={"http.route": "/trade"}):
        with tracer.start_as_current_span("child"):
            pass
        assert len(processor.decisions) == 1
    assert not processor.decisions  # dropped when the local root ended
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
    assert len(processor.decisions) == 4
    for span in open_spans:
        span.end()
    assert not processor.decisions


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
        tracer = make_provider(ChainSpanProcessor(CATALOG), exporter, span_limits=limits).get_tracer("t")
        with tracer.start_as_current_span("GET /trade", attributes={"http.route": "/trade"}):
            with tracer.start_as_current_span("child"):
                pass
        for span in exporter.get_finished_spans():
            assert check(span), (limits, dict(span.attributes))


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


class SwitchingDict(dict):
    """The decision table, with a forced thread switch inside every lookup: the window between
    reading an entry and changing it, where unsynchronised code loses updates."""

    def get(self, key, default=None):
        value = super().get(key, default)
        time.sleep(0)  # another thread runs before the caller acts on what it read
        return value


def run_threads(work, threads: int) -> None:
    """``work(k)`` on ``threads`` threads at once, thread switches every 10 µs (bounded: 60 s each)."""
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
    finally:
        sys.setswitchinterval(switch)


@pytest.mark.parametrize("mode", ["full", "minimal"])
@pytest.mark.parametrize("sampler", [True, False], ids=["with-sampler", "processor-only"])
def test_concurrent_local_roots_of_one_trace_from_many_threads(sampler, mode):
    """Many threads start and end local roots (remote parent, as one server span per message or
    request) of the same traces at once: every span is tagged (each local root with all four chain
    attributes in both modes) and no decision is left behind."""
    exporter = InMemorySpanExporter()
    processor = ChainSpanProcessor(CATALOG, max_traces=64, span_attributes=mode)
    processor.decisions = SwitchingDict()
    tracer = make_provider(processor, exporter, sampler).get_tracer("t")
    traces = [0x1000 + i for i in range(2)]
    threads, rounds = 8, 150
    barrier = threading.Barrier(threads)
    errors = []

    def work(k):
        try:
            barrier.wait()
            for i in range(rounds):
                remote = trace.SpanContext(traces[(i + k) % 2], 0x100 + k, is_remote=True,
                                           trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
                ctx = trace.set_span_in_context(trace.NonRecordingSpan(remote))
                with tracer.start_as_current_span("GET /trade", context=ctx, kind=SpanKind.SERVER,
                                                  attributes={"http.route": "/trade"}):
                    with tracer.start_as_current_span("child"):
                        time.sleep(0)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    run_threads(work, threads)
    assert not errors
    spans = exporter.get_finished_spans()
    assert len(spans) == threads * rounds * 2
    untagged = [s.name for s in spans if s.attributes.get(attr.CHAIN_ID) != "B3"]
    assert not untagged, f"{len(untagged)} of {len(spans)} spans untagged"
    partial = [s.name for s in spans if (s.name == "GET /trade" or mode == "full") and attr.CHAIN_INSTANCE_ID not in s.attributes]
    assert not partial, f"{len(partial)} spans without all four chain attributes"
    if mode == "minimal":
        assert all(attr.CHAIN_CATEGORY not in s.attributes for s in spans if s.name == "child")
    assert not processor.decisions


def test_sampler_keeps_the_wrapped_decision_and_describes_it():
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    exporter = InMemorySpanExporter()
    processor = ChainSpanProcessor(CATALOG)
    provider = make_provider(processor, exporter, chain_sampler=False, sampler=ParentBased(ALWAYS_OFF))
    assert install(provider, processor) and not install(provider, processor)  # wraps once
    assert provider.sampler.get_description() == "ChainSampler{ParentBased{root:AlwaysOffSampler,remoteParentSampled:AlwaysOnSampler,remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,localParentNotSampled:AlwaysOffSampler}}"
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET /trade", attributes={"http.route": "/trade"}):
        with tracer.start_as_current_span("child"):
            pass
    assert not exporter.get_finished_spans()  # not sampled: nothing recorded, nothing tagged


def test_sampler_sees_the_chain_so_a_custom_sampler_can_sample_by_it():
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    seen = []

    class ByChain(Sampler):
        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                          trace_state=None):
            seen.append((name, (attributes or {}).get(attr.CHAIN_ID)))
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

        def get_description(self):
            return "ByChain"

    exporter = InMemorySpanExporter()
    processor = ChainSpanProcessor(CATALOG)
    provider = make_provider(processor, exporter, chain_sampler=False, sampler=ByChain())
    install(provider, processor)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET /trade", attributes={"http.route": "/trade"}):
        with tracer.start_as_current_span("child"):
            pass
    assert seen == [("GET /trade", "B3"), ("child", "B3")]  # the entry span is matched in the sampler too
    assert isinstance(provider.sampler, ChainSampler)


def test_a_delegate_that_replaces_the_attributes_does_not_untag_spans():
    """A custom sampler may return attributes of its own instead of the ones it was given; the
    processor then tags the spans (the entry span and the later ones) itself."""
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

    class OwnAttributes(Sampler):
        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                          trace_state=None):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, {"sampler.own": True})

        def get_description(self):
            return "OwnAttributes"

    exporter = InMemorySpanExporter()
    processor = ChainSpanProcessor(CATALOG)
    provider = make_provider(processor, exporter, chain_sampler=False, sampler=OwnAttributes())
    install(provider, processor)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET /trade", attributes={"http.route": "/trade"}):
        with tracer.start_as_current_span("child"):
            pass
    spans = exporter.get_finished_spans()
    assert [s.attributes.get(attr.CHAIN_ID) for s in spans] == ["B3", "B3"]
    assert all(s.attributes["sampler.own"] for s in spans)
    assert not processor.decisions


def test_a_synthetic_probes_trace_is_marked_on_every_span(setup):
    tracer, _, exporter = setup
    ctx = baggage.set_baggage(attr.BAGGAGE_SYNTHETIC, "true", context.Context())
    with tracer.start_as_current_span("GET /trade", context=ctx, attributes={"http.route": "/trade"}):
        with tracer.start_as_current_span("child"):
            pass
    with tracer.start_as_current_span("GET /trade", attributes={"http.route": "/trade"}):
        pass
    spans = exporter.get_finished_spans()  # in end order: child, probe's entry span, real entry span
    assert [s.attributes.get(attr.CHAIN_SYNTHETIC) for s in spans] == [True, True, None]
    assert all(s.attributes[attr.CHAIN_ID] == "B3" for s in spans)


def test_a_tracer_holding_the_unwrapped_sampler_still_tags():
    """A tracer created before the sampler was installed samples without it; the processor then
    tags its spans itself (the hand-off from the sampler is per span, not a global switch)."""
    exporter = InMemorySpanExporter()
    processor = ChainSpanProcessor(CATALOG)
    provider = make_provider(processor, exporter, chain_sampler=False)
    early = provider.get_tracer("early")
    install(provider, processor)
    late = provider.get_tracer("late")
    with late.start_as_current_span("GET /trade", attributes={"http.route": "/trade"}):
        with early.start_as_current_span("early child"):
            with late.start_as_current_span("late child"):
                pass
    assert {s.name: s.attributes.get(attr.CHAIN_ID) for s in exporter.get_finished_spans()} == {
        "GET /trade": "B3", "early child": "B3", "late child": "B3"}


def test_children_keep_the_sampling_and_trace_state_the_configured_sampler_gives():
    """ChainSampler answers for children of sampled local spans itself when the configured sampler
    is the SDK's ParentBased with AlwaysOn for them; the answer must be the one ParentBased gives."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, DEFAULT_ON, ParentBased, TraceIdRatioBased
    from opentelemetry.trace.span import TraceState

    from chainotel.sampler import samples_sampled_local_children

    assert samples_sampled_local_children(DEFAULT_ON)
    assert samples_sampled_local_children(ParentBased(TraceIdRatioBased(0.5)))
    assert not samples_sampled_local_children(ALWAYS_ON)
    assert not samples_sampled_local_children(ParentBased(ALWAYS_ON, local_parent_sampled=TraceIdRatioBased(0.5)))

    state = TraceState([("vendor", "x1")])
    for route, chain in (("/trade", "B3"), ("/other", None)):
        exporter = InMemorySpanExporter()
        processor = ChainSpanProcessor(CATALOG)
        tracer = make_provider(processor, exporter).get_tracer("t")
        remote = trace.SpanContext(0xABC, 0x1, is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
                                   trace_state=state)
        ctx = trace.set_span_in_context(trace.NonRecordingSpan(remote))
        with tracer.start_as_current_span("GET", context=ctx, kind=SpanKind.SERVER, attributes={"http.route": route}):
            with tracer.start_as_current_span("bare"):
                pass
            with tracer.start_as_current_span("with attributes", attributes={"k": "v"}):
                pass
        spans = by_name(exporter)
        for name in ("bare", "with attributes"):
            span = spans[name]
            assert span.context.trace_state == state and span.context.trace_flags.sampled, name
            assert span.attributes.get(attr.CHAIN_ID) == chain, name
        assert spans["with attributes"].attributes["k"] == "v"
        assert not processor.decisions


def test_entry_spans_keep_the_sampling_and_trace_state_the_configured_sampler_gives():
    """ChainSampler answers for local roots itself when the configured sampler is the SDK's
    ParentBased with AlwaysOn for them; the answer must be the one ParentBased gives, and a local
    root it does not record leaves nothing in the decision table."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, DEFAULT_ON, ParentBased, TraceIdRatioBased
    from opentelemetry.trace.span import TraceState

    from chainotel.sampler import samples_local_roots

    assert samples_local_roots(DEFAULT_ON) == (True, True)
    assert samples_local_roots(ParentBased(TraceIdRatioBased(0.5))) == (False, True)
    assert samples_local_roots(ParentBased(ALWAYS_ON, remote_parent_sampled=ALWAYS_OFF)) == (True, False)
    assert samples_local_roots(ParentBased(ParentBased(ALWAYS_ON, remote_parent_sampled=ALWAYS_OFF))) == (False, True)
    assert samples_local_roots(ALWAYS_ON) == (False, False)

    state = TraceState([("vendor", "x1")])
    for sampler in (DEFAULT_ON, ParentBased(TraceIdRatioBased(1.0)), ParentBased(ALWAYS_ON, remote_parent_sampled=ALWAYS_ON)):
        for route, chain in (("/trade", "B3"), ("/other", None)):
            exporter = InMemorySpanExporter()
            processor = ChainSpanProcessor(CATALOG)
            tracer = make_provider(processor, exporter, sampler=sampler).get_tracer("t")
            for flags in (trace.TraceFlags.SAMPLED, trace.TraceFlags.DEFAULT):
                remote = trace.SpanContext(0xABC + flags, 0x1, is_remote=True, trace_flags=trace.TraceFlags(flags),
                                           trace_state=state)
                ctx = trace.set_span_in_context(trace.NonRecordingSpan(remote))
                with tracer.start_as_current_span("remote", context=ctx, kind=SpanKind.SERVER,
                                                  attributes={"http.route": route}) as span:
                    assert span.is_recording() == (flags == trace.TraceFlags.SAMPLED)
                    assert len(processor.decisions) == (1 if span.is_recording() else 0)
            with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes={"http.route": route}):
                pass
            spans = by_name(exporter)
            assert set(spans) == {"remote", "root"}
            assert spans["remote"].context.trace_state == state and spans["remote"].context.trace_flags.sampled
            assert not spans["root"].context.trace_state and spans["root"].context.trace_flags.sampled
            assert {s.attributes.get(attr.CHAIN_ID) for s in spans.values()} == {chain}
            assert not processor.decisions


@pytest.mark.parametrize("chain_sampler", [True, False], ids=["with-sampler", "processor-only"])
def test_entry_span_match_cache_keeps_the_rules_method_and_route_fallbacks(chain_sampler):
    """Local roots are matched once per (span name, route, method) as the span gives them; the
    rule still sees the method upper-cased and ``url.path`` standing in for a missing route."""
    catalog = parse_catalog(
        """
chains:
  - {id: B3, name: Trading, category: service_communication, max_duration_ms: 1,
     match: [{service: svc, route: "/trade*", method: POST}]}
""",
        "test",
    )
    exporter = InMemorySpanExporter()
    processor = ChainSpanProcessor(catalog)
    tracer = make_provider(processor, exporter, chain_sampler).get_tracer("t")
    cases = [({"http.route": "/trade", "http.request.method": "post"}, "B3"),
             ({"http.route": "/trade", "http.request.method": "GET"}, None),
             ({"http.route": "/trade", "http.request.method": "post"}, "B3"),
             ({"url.path": "/trade/1", "http.request.method": "POST"}, "B3"),
             ({"http.route": "/trade", "http.method": "POST"}, "B3"),
             ({"http.route": "/trade"}, None)]
    for attributes, _ in cases:
        with tracer.start_as_current_span("entry", kind=SpanKind.SERVER, attributes=attributes):
            pass
    assert [s.attributes.get(attr.CHAIN_ID) for s in exporter.get_finished_spans()] == [c for _, c in cases]
    assert not processor.decisions


@pytest.mark.parametrize("sampler", [True, False], ids=["with-sampler", "processor-only"])
def test_local_roots_opened_at_once_are_all_counted(sampler):
    """Local roots of one trace opened by many threads at once (thread switches forced inside the
    table's lookups) are each counted: when half of them have ended, the trace is still known, so
    the spans the others start afterwards are tagged; and nothing is left behind."""
    exporter = InMemorySpanExporter()
    processor = ChainSpanProcessor(CATALOG, max_traces=64)
    processor.decisions = SwitchingDict()
    tracer = make_provider(processor, exporter, sampler).get_tracer("t")
    threads, rounds = 8, 20
    opened, halved = threading.Barrier(threads), threading.Barrier(threads)
    errors = []

    def work(k):
        try:
            for i in range(rounds):
                remote = trace.SpanContext(0x2000 + i, 0x100 + k, is_remote=True,
                                           trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
                ctx = trace.set_span_in_context(trace.NonRecordingSpan(remote))
                opened.wait()
                span = tracer.start_span("GET /trade", context=ctx, kind=SpanKind.SERVER,
                                         attributes={"http.route": "/trade"})
                opened.wait()  # every local root of the trace is open
                if k % 2:
                    span.end()
                halved.wait()  # half of them have ended
                if not k % 2:
                    with tracer.start_as_current_span("late child", context=trace.set_span_in_context(span)):
                        pass
                    span.end()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    run_threads(work, threads)
    assert not errors
    late = [s for s in exporter.get_finished_spans() if s.name == "late child"]
    assert len(late) == threads // 2 * rounds
    untagged = [s for s in late if s.attributes.get(attr.CHAIN_ID) != "B3"]
    assert not untagged, f"{len(untagged)} of {len(late)} spans started after half the local roots ended untagged"
    assert not processor.decisions
