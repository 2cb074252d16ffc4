"""``X-Chain-ID`` ↔ W3C trace context: the ``xchain`` text-map propagator and the response propagator.

Selected with ``OTEL_PROPAGATORS=tracecontext,baggage,xchain`` (the distro's default); ``xchain``
must come after ``tracecontext`` so it sees the span context ``traceparent`` produced.

Extract (incoming request), rules (docs/distro.md):

- ``traceparent`` present and valid: it wins. An ``X-Chain-ID`` naming another trace is kept as
  :data:`~chainotel.attributes.CHAIN_INSTANCE_CONFLICT` on the server span.
- only ``X-Chain-ID``: the server span becomes the root of the trace whose ID is exactly the
  header's 128 bits. No remote parent is invented; instead the request is remembered in the
  context (:class:`IncomingChain`) and :class:`chainotel.id_generator.XChainIdGenerator` hands that
  trace ID to the next root span started in this context.
- invalid ``X-Chain-ID`` (not a UUID/32 hex, all zeros, too long, other characters): ignored for
  the trace context; the value (truncated to 128 characters) becomes
  :data:`~chainotel.attributes.CHAIN_INSTANCE_INVALID` on the server span.
- ``X-Parent-Chain-ID``: a span link from the server span to that trace.

The span attributes and the link are written by :class:`chainotel.processor.ChainSpanProcessor`
when the server span starts (it reads :class:`IncomingChain` from the span's parent context), so
they are present for samplers' successors, exporters and every server instrumentation alike.

Inject (outgoing request): ``X-Chain-ID`` of the current trace, and the trace's chain ID in the
W3C ``baggage`` header (entry ``chain.id``) when the current span carries ``chain.id`` and the
context's baggage does not have it yet. Nothing here raises into the application.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from opentelemetry import baggage, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context, create_key, get_value, set_value
from opentelemetry.instrumentation.propagators import ResponsePropagator
from opentelemetry.propagators import textmap

from chainotel import attributes as attr
from chainotel.ids import format_instance_id, try_parse_instance_id

__all__ = ["INCOMING_CHAIN_KEY", "IncomingChain", "XChainPropagator", "XChainResponsePropagator", "incoming_chain"]

_logger = logging.getLogger(__name__)

INCOMING_CHAIN_KEY = create_key("chainotel-incoming-chain")
"""Context key under which :meth:`XChainPropagator.extract` stores an :class:`IncomingChain`."""

_EXPOSE_HEADERS = "access-control-expose-headers"
_BAGGAGE = W3CBaggagePropagator()


@dataclass
class IncomingChain:
    """What the chain headers of one incoming request asked for.

    Attributes:
        requested: one-shot holder of the trace ID (128-bit int) requested by a lone
            ``X-Chain-ID``; emptied by the ID generator when the root span takes it.
        conflict: ``X-Chain-ID`` value that disagrees with ``traceparent`` (truncated).
        invalid: ``X-Chain-ID`` value that is not a chain instance ID (truncated).
        parent_trace_id: trace ID named by ``X-Parent-Chain-ID``, or ``None``.
    """

    requested: list[int] = field(default_factory=list)
    conflict: str | None = None
    invalid: str | None = None
    parent_trace_id: int | None = None

    def take_requested(self) -> int | None:
        """Remove and return the requested trace ID (thread-safe: ``list.pop`` is atomic)."""
        try:
            return self.requested.pop()
        except IndexError:
            return None


def incoming_chain(context: Context | None = None) -> IncomingChain | None:
    """The :class:`IncomingChain` stored in ``context`` (default: current), or ``None``."""
    return get_value(INCOMING_CHAIN_KEY, context)  # type: ignore[return-value]


def _first(values: Iterable[str] | str | None) -> str | None:
    if values is None:
        return None
    if isinstance(values, str):
        return values
    for value in values:
        return value
    return None


def _truncate(value: str) -> str:
    return value[: attr.INVALID_VALUE_MAX_CHARS]


class XChainPropagator(textmap.TextMapPropagator):
    """The ``xchain`` propagator: ``X-Chain-ID`` / ``X-Parent-Chain-ID`` (see the module doc).

    Entry point: ``opentelemetry_propagator`` → ``xchain``.
    """

    def extract(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        getter: textmap.Getter[textmap.CarrierT] = textmap.default_getter,
    ) -> Context:
        """Record the chain headers in the returned context; never raises (logs at debug)."""
        if context is None:
            context = Context()
        try:
            return self._extract(carrier, context, getter)
        except Exception:  # noqa: BLE001 - a propagator must not break the request
            _logger.debug("xchain: extract failed", exc_info=True)
            return context

    @staticmethod
    def _extract(carrier, context: Context, getter) -> Context:
        raw = _first(getter.get(carrier, attr.HEADER_CHAIN_ID))
        raw_parent = _first(getter.get(carrier, attr.HEADER_PARENT_CHAIN_ID))
        if baggage.get_baggage(attr.BAGGAGE_CHAIN_ID, context) is None:
            # Chain decided upstream, even when the baggage propagator is not configured.
            upstream = baggage.get_baggage(attr.BAGGAGE_CHAIN_ID, _BAGGAGE.extract(carrier, Context(), getter))
            if upstream is not None:
                context = baggage.set_baggage(attr.BAGGAGE_CHAIN_ID, upstream, context)
        if raw is None and raw_parent is None:
            return context
        info = IncomingChain()
        if raw is not None:
            trace_id = try_parse_instance_id(raw)
            current = trace.get_current_span(context).get_span_context()
            if trace_id is None:
                info.invalid = _truncate(raw)
            elif current.is_valid:
                if current.trace_id != trace_id:
                    info.conflict = _truncate(raw)
            else:
                info.requested.append(trace_id)
        if raw_parent is not None:
            info.parent_trace_id = try_parse_instance_id(raw_parent)
        return set_value(INCOMING_CHAIN_KEY, info, context)

    def inject(
        self,
        carrier: textmap.CarrierT,
        context: Context | None = None,
        setter: textmap.Setter[textmap.CarrierT] = textmap.default_setter,
    ) -> None:
        """Write ``X-Chain-ID`` (and ``chain.id`` into ``baggage``); never raises (logs at debug)."""
        try:
            span = trace.get_current_span(context)
            span_context = span.get_span_context()
            if not span_context.is_valid:
                return
            setter.set(carrier, attr.HEADER_CHAIN_ID, format_instance_id(span_context.trace_id))
            span_attributes = getattr(span, "attributes", None)
            chain_id = span_attributes.get(attr.CHAIN_ID) if span_attributes else None
            if chain_id and baggage.get_baggage(attr.BAGGAGE_CHAIN_ID, context) != chain_id:
                _BAGGAGE.inject(carrier, baggage.set_baggage(attr.BAGGAGE_CHAIN_ID, chain_id, context), setter)
        except Exception:  # noqa: BLE001
            _logger.debug("xchain: inject failed", exc_info=True)

    @property
    def fields(self) -> set[str]:
        """Headers this propagator writes."""
        return {attr.HEADER_CHAIN_ID, "baggage"}


class XChainResponsePropagator(ResponsePropagator):
    """Writes ``X-Chain-ID`` (the server span's trace ID as a UUID) on every HTTP response.

    Installed by the distro with
    ``opentelemetry.instrumentation.propagators.set_global_response_propagator``; the ASGI
    middleware calls it for every response message, including 4xx/5xx produced by Starlette's
    error handling, because FastAPI's instrumentation wraps ``ServerErrorMiddleware``. The header
    is also listed in ``Access-Control-Expose-Headers`` so browsers may read it.
    """

    def inject(self, carrier, context: Context | None = None, setter=textmap.default_setter) -> None:
        """Add the headers to ``carrier`` (an ASGI ``http.response.start`` message or header dict)."""
        try:
            if isinstance(carrier, dict) and carrier.get("type", "http.response.start") != "http.response.start":
                return  # ASGI body/trailer messages carry no headers
            span_context = trace.get_current_span(context).get_span_context()
            if not span_context.is_valid:
                return
            setter.set(carrier, attr.HEADER_CHAIN_ID, format_instance_id(span_context.trace_id))
            setter.set(carrier, _EXPOSE_HEADERS, attr.HEADER_CHAIN_ID)
        except Exception:  # noqa: BLE001
            _logger.debug("xchain: response inject failed", exc_info=True)
