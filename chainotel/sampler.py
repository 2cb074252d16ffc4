"""``ChainSampler``: gives a span its chain attributes when it is created.

It wraps the configured sampler (``OTEL_TRACES_SAMPLER``, ``parentbased_always_on`` by default)
and changes nothing about sampling: the wrapped sampler decides, and is asked with the chain
attributes added to the span's start attributes — so a custom sampler can also sample by
``chain.id``, already at the entry span. The OpenTelemetry spec lets a sampler return attributes
for the new span (``SamplingResult.attributes``); the SDK builds the span with them, checking them
once together with the instrumentation's own, which is why this is the cheap way to tag spans (see
:mod:`chainotel.processor`).

Two kinds of spans are tagged here: every span of a trace a
:class:`~chainotel.processor.ChainSpanProcessor` in this process has decided, and a local root
(no parent, or a remote one) that the processor's catalog rules or the upstream ``chain.id``
baggage give a chain. A local root of a trace new to the processor's table is also counted there
by the sampler, once it knows the SDK will record the span
(:meth:`~chainotel.processor.ChainSpanProcessor.open_local_root`), so the processor's
``on_start`` does not repeat the work. Which attributes follows the processor's mode
(:attr:`~chainotel.processor.TraceDecision.root_attributes` for local roots,
:attr:`~chainotel.processor.TraceDecision.attributes` for the other spans). When the wrapped
sampler is the SDK's ``ParentBased`` with ``AlwaysOn`` for sampled local parents (the default), the
answer for a child of a sampled local span is built here without asking it
(:func:`samples_sampled_local_children`); the same for a local root when it has ``AlwaysOn`` for
spans without a parent or with a sampled remote parent (:func:`samples_local_roots`). Installed by
the chainotel configurator (:func:`install`); never raises into the application (on an internal
error the wrapped sampler is asked with the original arguments, and the processor tags the span).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.context import Context, get_current
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from chainotel.attributes import CHAIN_ID as _CHAIN_ID
from chainotel.processor import ChainSpanProcessor, tagged_at_creation
from chainotel.propagator import INCOMING_CHAIN_KEY

__all__ = ["ChainSampler", "install", "samples_local_roots", "samples_sampled_local_children"]

_logger = logging.getLogger(__name__)

_DROP, _SAMPLE = Decision.DROP, Decision.RECORD_AND_SAMPLE


class ChainSampler(Sampler):
    """``delegate``'s sampling, plus the chain attributes of the trace.

    Args:
        delegate: the sampler that decides (e.g. the tracer provider's configured one).
        processor: the processor whose decisions (``processor.decisions``) are read.
        resource: the tracer provider's resource (its ``service.name`` selects the catalog rules);
            ``None``: local roots are left to the processor, which tags them with ``set_attributes``.
    """

    def __init__(self, delegate: Sampler, processor: ChainSpanProcessor, resource: Resource | None = None):
        self.delegate = delegate
        self._processor = processor
        self._decisions = processor.decisions
        self._resource = resource
        self._warned = False
        self._samples_local_children = samples_sampled_local_children(delegate)
        self._samples_roots, self._samples_remote_sampled = samples_local_roots(delegate)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """The delegate's result for the span, asked with the chain attributes added when the
        trace (``trace_id``, 128-bit ``int``) is decided in this process, or when the span is a
        local root that a catalog rule (or the upstream ``chain.id`` baggage) gives a chain."""
        try:
            decision = self._decisions.get(trace_id)
            if decision is None:
                return self._sample_untracked(parent_context, trace_id, name, kind, attributes, links, trace_state)
            chain = decision.attributes
            if self._samples_local_children:
                parent = get_current_span(parent_context).get_span_context()
                if parent.is_valid and not parent.is_remote and parent.trace_flags.sampled:
                    return self._sampled_child(decision, chain, attributes, parent.trace_state, trace_id)
            if chain is None:  # undecided: a later span may match a span-name rule (in on_start)
                return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
            root = decision.root_attributes
            if root is not chain and _is_local_root(parent_context):  # minimal mode: a local root gets all
                chain = root
            return self._ask_with(chain, parent_context, trace_id, name, kind, attributes, links, trace_state)
        except Exception:  # noqa: BLE001 - sample as if chainotel were not there; the processor tags
            self._warn_once()
            return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def _sample_untracked(self, parent_context, trace_id, name, kind, attributes, links, trace_state) -> SamplingResult:
        """A span of a trace with no open local root here: if it is a local root, match it, count
        it in the processor's table when it will be recorded and hand the outcome to ``on_start``;
        else the delegate's plain answer."""
        context = parent_context if parent_context is not None else get_current()  # the one on_start gets
        parent = get_current_span(context).get_span_context()
        if self._resource is None or (parent.is_valid and not parent.is_remote):
            return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        incoming = context.get(INCOMING_CHAIN_KEY)  # a Context is a dict (read before anything is counted)
        processor = self._processor
        rules = processor.rules_for(self._resource)
        chain = processor.root_chain(rules, name, attributes, context, trace_id)
        merged = attributes if chain is None else {**attributes, **chain} if attributes else chain
        if parent.is_valid:  # a remote parent
            built, parent_state = self._samples_remote_sampled and parent.trace_flags.sampled, parent.trace_state
        else:
            built, parent_state = self._samples_roots, None
        if built:  # what the delegate answers, built here (see samples_local_roots)
            result = SamplingResult(_SAMPLE, merged, parent_state)
            if chain is not None:
                tagged_at_creation.trace_id = trace_id
        else:
            result = self.delegate.should_sample(parent_context, trace_id, name, kind, merged, links, trace_state)
            if result.decision is _DROP:  # no span is recorded: nothing to count
                return result
            if chain is not None and _CHAIN_ID in result.attributes:  # kept by the delegate
                tagged_at_creation.trace_id = trace_id
        tagged_at_creation.root = (trace_id, processor.open_local_root(trace_id, rules, chain), incoming)
        return result

    def _ask_with(self, chain, parent_context, trace_id, name, kind, attributes, links, trace_state) -> SamplingResult:
        """The delegate's answer, asked with ``chain`` added to the start attributes."""
        merged = {**attributes, **chain} if attributes else chain
        result = self.delegate.should_sample(parent_context, trace_id, name, kind, merged, links, trace_state)
        if result.decision is not _DROP and _CHAIN_ID in result.attributes:  # kept by the delegate
            tagged_at_creation.trace_id = trace_id
        return result

    @staticmethod
    def _sampled_child(decision, chain, attributes, parent_state, trace_id) -> SamplingResult:
        """What the delegate answers for a child of a sampled local span (see
        :func:`samples_sampled_local_children`), built here: ``RECORD_AND_SAMPLE`` with the start
        attributes plus ``chain`` and the parent's trace state. Children without start attributes
        share one result per trace (the SDK only reads it)."""
        if chain is None:
            return SamplingResult(_SAMPLE, attributes, parent_state)
        if attributes:
            result = SamplingResult(_SAMPLE, {**attributes, **chain}, parent_state)
        else:
            result = decision.sampling_result
            if result is None or result.trace_state is not parent_state:
                result = decision.sampling_result = SamplingResult(_SAMPLE, chain, parent_state)
        tagged_at_creation.trace_id = trace_id
        return result

    def get_description(self) -> str:
        """``ChainSampler{<the delegate's description>}``."""
        return f"ChainSampler{{{self.delegate.get_description()}}}"

    def _warn_once(self) -> None:
        if not self._warned:
            self._warned = True
            _logger.warning("chainotel: chain attributes not added at span creation; continuing", exc_info=True)


def _parent_based_parts(sampler: Sampler) -> dict[str, str] | None:
    """The descriptions of the samplers an SDK ``ParentBased`` delegates to, by its public
    description (``ParentBased{root:…,remoteParentSampled:…,remoteParentNotSampled:…,
    localParentSampled:…,localParentNotSampled:…}``), read from the end (the root sampler's own
    description may nest); ``None`` for any other sampler."""
    if type(sampler) is not ParentBased:
        return None
    description = sampler.get_description()
    head = "ParentBased{root:"
    if not (description.startswith(head) and description.endswith("}")):
        return None
    rest, parts = description[len(head) : -1], {}
    for key in ("localParentNotSampled", "localParentSampled", "remoteParentNotSampled", "remoteParentSampled"):
        rest, found, parts[key] = rest.rpartition(f",{key}:")
        if not found:
            return None
    parts["root"] = rest
    return parts


_ALWAYS_ON = "AlwaysOnSampler"


def samples_sampled_local_children(sampler: Sampler) -> bool:
    """Whether ``sampler`` is the SDK's ``ParentBased`` with ``AlwaysOn`` for a sampled local
    parent (the SDK default ``parentbased_always_on`` and ``parentbased_traceidratio``), read from
    its public description. For a child of a sampled local span such a sampler answers
    ``RECORD_AND_SAMPLE`` with the given attributes and the parent's trace state (the spec's
    ``ParentBased`` with its default ``localParentSampled``), so :class:`ChainSampler` builds that
    answer itself instead of asking it, saving a call chain per span."""
    parts = _parent_based_parts(sampler)
    return parts is not None and parts["localParentSampled"] == _ALWAYS_ON


def samples_local_roots(sampler: Sampler) -> tuple[bool, bool]:
    """``(roots, remote sampled)``: whether ``sampler`` is the SDK's ``ParentBased`` with
    ``AlwaysOn`` for spans without a parent (``root``: the SDK default ``parentbased_always_on``)
    and for spans with a sampled remote parent (``remoteParentSampled``: also
    ``parentbased_traceidratio``), read from its public description. For such a span, the entry
    span of a service, it answers ``RECORD_AND_SAMPLE`` with the given attributes and the parent's
    trace state (none without a parent), so :class:`ChainSampler` builds that answer itself."""
    parts = _parent_based_parts(sampler)
    if parts is None:
        return False, False
    return parts["root"] == _ALWAYS_ON, parts["remoteParentSampled"] == _ALWAYS_ON


def _is_local_root(parent_context: Context | None) -> bool:
    """Whether a span started in ``parent_context`` (``None``: the current context) is a local
    root: no valid parent span, or a remote one (as the SDK's ``Tracer.start_span`` reads it)."""
    parent = get_current_span(parent_context).get_span_context()
    return not parent.is_valid or parent.is_remote


def install(provider: object, processor: ChainSpanProcessor) -> bool:
    """Wrap ``provider``'s sampler (the public ``TracerProvider.sampler`` attribute, read by every
    tracer it creates afterwards) in a :class:`ChainSampler` reading ``processor``'s decisions and
    matching local roots by the rules for ``provider.resource``.

    Returns ``False`` (and changes nothing) when ``provider`` is not the SDK's
    :class:`~opentelemetry.sdk.trace.TracerProvider`; the processor then tags every span itself.
    """
    if not isinstance(provider, TracerProvider) or isinstance(provider.sampler, ChainSampler):
        return False
    provider.sampler = ChainSampler(provider.sampler, processor, provider.resource)
    return True
