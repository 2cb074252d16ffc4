"""``ChainSampler``: gives a span of an already decided trace its chain attributes when it is created.

It wraps the configured sampler (``OTEL_TRACES_SAMPLER``, ``parentbased_always_on`` by default)
and changes nothing about sampling: the wrapped sampler decides, and is asked with the chain
attributes added to the span's start attributes — so a custom sampler can also sample by
``chain.id``. The OpenTelemetry spec lets a sampler return attributes for the new span
(``SamplingResult.attributes``); the SDK builds the span with them, checking them once together
with the instrumentation's own, which is why this is the cheap way to tag the per-span path (see
:mod:`chainotel.processor`).

Only traces decided by a :class:`~chainotel.processor.ChainSpanProcessor` in this process are
tagged here; the spans that decide are tagged by the processor. Installed by the chainotel
configurator (:func:`install`); never raises into the application (on an internal error the
wrapped sampler is asked with the original arguments).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from chainotel.attributes import CHAIN_ID as _CHAIN_ID
from chainotel.processor import ChainSpanProcessor, tagged_at_creation

__all__ = ["ChainSampler", "install"]

_logger = logging.getLogger(__name__)


class ChainSampler(Sampler):
    """``delegate``'s sampling, plus the chain attributes of the trace for spans of decided traces.

    Args:
        delegate: the sampler that decides (e.g. the tracer provider's configured one).
        processor: the processor whose decisions (``processor.decisions``) are read.
    """

    def __init__(self, delegate: Sampler, processor: ChainSpanProcessor):
        self.delegate = delegate
        self._decisions = processor.decisions
        self._warned = False

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
        trace (``trace_id``, 128-bit ``int``) is decided in this process."""
        decision = self._decisions.get(trace_id)
        chain = decision.attributes if decision is not None else None
        if chain is None:
            return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        try:
            merged = {**attributes, **chain} if attributes else chain
        except Exception:  # noqa: BLE001 - odd attributes: sample as if chainotel were not there
            self._warn_once()
            return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        result = self.delegate.should_sample(parent_context, trace_id, name, kind, merged, links, trace_state)
        if result.decision is not Decision.DROP and _CHAIN_ID in result.attributes:  # kept by the delegate
            tagged_at_creation.trace_id = trace_id
        return result

    def get_description(self) -> str:
        """``ChainSampler{<the delegate's description>}``."""
        return f"ChainSampler{{{self.delegate.get_description()}}}"

    def _warn_once(self) -> None:
        if not self._warned:
            self._warned = True
            _logger.warning("chainotel: chain attributes not added at span creation; continuing", exc_info=True)


def install(provider: object, processor: ChainSpanProcessor) -> bool:
    """Wrap ``provider``'s sampler (the public ``TracerProvider.sampler`` attribute, read by every
    tracer it creates afterwards) in a :class:`ChainSampler` reading ``processor``'s decisions.

    Returns ``False`` (and changes nothing) when ``provider`` is not the SDK's
    :class:`~opentelemetry.sdk.trace.TracerProvider`; the processor then tags every span itself.
    """
    if not isinstance(provider, TracerProvider) or isinstance(provider.sampler, ChainSampler):
        return False
    provider.sampler = ChainSampler(provider.sampler, processor)
    return True
