"""``xchain`` ID generator: a root span started for a request with a lone ``X-Chain-ID`` gets
exactly that trace ID.

Why an ID generator: the request must become the *root* of the trace named by ``X-Chain-ID``.
A made-up remote parent would give the server span a parent span ID that no exported span has.
The SDK asks the tracer provider's ``IdGenerator`` for a trace ID whenever a span has no valid
parent, and server instrumentations (ASGI, WSGI, … through the instrumentation package's shared
helper for server spans) attach the extracted context before starting the server span. So :meth:`XChainIdGenerator.generate_trace_id` looks for
the :class:`~chainotel.propagator.IncomingChain` that :class:`~chainotel.propagator.XChainPropagator`
put into that (current) context and takes its requested trace ID — once: the holder is emptied, so
any later root span in the same context gets a random ID. Contexts are per task/thread
(``contextvars``), so concurrent requests never see each other's request.

Entry point ``opentelemetry_id_generator`` → ``xchain``; the distro sets
``OTEL_PYTHON_ID_GENERATOR=xchain`` as a default.
"""

from __future__ import annotations

import threading

from opentelemetry import trace
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

from chainotel.propagator import incoming_chain

__all__ = ["XChainIdGenerator"]


class XChainIdGenerator(RandomIdGenerator):
    """Random IDs (like the SDK default), except the trace ID requested by a lone ``X-Chain-ID``."""

    def __init__(self) -> None:
        self._last = threading.local()

    def generate_trace_id(self) -> int:
        """The requested trace ID if the current context holds an unclaimed one and has no span,
        else 128 random bits (never zero). Returns a 128-bit ``int``."""
        requested = None
        if trace.get_current_span() is trace.INVALID_SPAN:
            info = incoming_chain()
            if info is not None:
                requested = info.take_requested()
        self._last.requested = requested is not None
        return requested if requested is not None else super().generate_trace_id()

    def is_trace_id_random(self) -> bool:
        """False right after handing out a requested ID (its bits came from the client), so the
        W3C ``random-trace-id`` flag is only set on IDs generated here; called by the SDK right
        after :meth:`generate_trace_id` on the same thread."""
        return not getattr(self._last, "requested", False)
