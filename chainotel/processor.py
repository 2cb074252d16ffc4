"""Chain span processor: decides a trace's chain once, at its entry span, and tags every span.

Per process, per trace, the processor keeps one small decision entry, created when a *local root*
starts (a span with no parent or a remote parent: the server span of an incoming request, or a
root span) and dropped when the last open local root of that trace ends. The table is bounded
(``max_traces``, oldest dropped first), so a leak of unended spans cannot grow memory.

At a local root, the chain is:

1. the ``chain.id`` W3C baggage entry, when an upstream service already decided it; else
2. the chain of the first catalog rule that matches the span (service.name, span name,
   ``http.route``/``url.path``, HTTP method — FastAPI's instrumentation sets ``http.route``
   before it starts the server span).

If neither gives a chain, later spans of the trace in this process are tried against the rules
until one matches ("the first span that matches a rule"); spans started before that carry no
chain. Once decided, every span started in the trace gets ``chain.id``, ``chain.category``,
``chain.name`` and ``chain.instance_id`` at ``on_start`` (attributes cannot be added after a span
ends). Downstream services learn the chain from baggage written by
:class:`chainotel.propagator.XChainPropagator`.

The local root also gets what :class:`chainotel.propagator.XChainPropagator` extracted:
``chain.instance.conflict``, ``chain.instance.invalid`` and a link to the ``X-Parent-Chain-ID``
trace (span ID zero, which the OpenTelemetry spec allows for links with attributes).

Hot path (a child span of a decided trace): one dict lookup and one ``set_attributes``.
No method raises into the application; failures are logged once at warning level.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from opentelemetry import baggage
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanContext

from chainotel import attributes as attr
from chainotel.catalog import Catalog, Category
from chainotel.catalog.models import CHAIN_ID_PATTERN
from chainotel.ids import format_chain_id
from chainotel.propagator import incoming_chain

__all__ = ["ChainSpanProcessor"]

_logger = logging.getLogger(__name__)

_SERVICE_NAME = "service.name"
_chain_id_re = re.compile(CHAIN_ID_PATTERN)


class _Decision:
    """A trace's chain in this process: the attributes to set (``None`` while undecided), the rules
    still worth trying, and how many local roots of the trace are open."""

    __slots__ = ("attributes", "open", "rules")

    def __init__(self, attributes: dict[str, str] | None, rules: tuple, open_roots: int):
        self.attributes = attributes
        self.rules = rules
        self.open = open_roots


class ChainSpanProcessor(SpanProcessor):
    """Tags spans with their chain (see the module doc).

    Args:
        catalog: the chain catalog; ``None`` turns chain tagging off (the request attributes from
            ``X-Chain-ID`` handling — conflict, invalid, parent link — are still written).
        max_traces: bound of the per-trace decision table (entries, not bytes).
    """

    def __init__(self, catalog: Catalog | None, max_traces: int = 10_000):
        self.catalog = catalog
        self.max_traces = max_traces
        self._decisions: dict[int, _Decision] = {}
        self._rules_by_resource: dict[int, tuple] = {}
        self._warned = False

    # -- SpanProcessor ---------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Tag ``span`` if its trace is decided; at a local root, decide. Never raises."""
        try:
            parent = span.parent
            if parent is not None and not parent.is_remote:
                decision = self._decisions.get(parent.trace_id)
                if decision is not None:
                    if decision.attributes is not None:
                        span.set_attributes(decision.attributes)
                    elif decision.rules:
                        self._try_rules(span, decision)
                return
            self._start_local_root(span, parent_context if parent_context is not None else get_current())
        except Exception:  # noqa: BLE001 - never break the instrumented application
            self._warn_once()

    def on_end(self, span: ReadableSpan) -> None:
        """Drop the trace's entry when its last open local root ends. Never raises."""
        parent = span.parent
        if parent is None or parent.is_remote:
            trace_id = span.context.trace_id
            decision = self._decisions.get(trace_id)
            if decision is not None:
                decision.open -= 1
                if decision.open <= 0:
                    self._decisions.pop(trace_id, None)

    def shutdown(self) -> None:
        """Forget all decisions."""
        self._decisions.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered; returns ``True``."""
        return True

    # -- internals ---------------------------------------------------------------------------------
    def _start_local_root(self, span: Span, context: Context) -> None:
        info = incoming_chain(context)
        if info is not None:
            if info.conflict is not None:
                span.set_attribute(attr.CHAIN_INSTANCE_CONFLICT, info.conflict)
            if info.invalid is not None:
                span.set_attribute(attr.CHAIN_INSTANCE_INVALID, info.invalid)
            if info.parent_trace_id is not None:
                parent_instance = format_chain_id(info.parent_trace_id)
                span.add_link(
                    SpanContext(info.parent_trace_id, 0, is_remote=True),
                    {attr.CHAIN_PARENT_INSTANCE_ID: parent_instance},
                )
                span.set_attribute(attr.CHAIN_PARENT_INSTANCE_ID, parent_instance)
        if self.catalog is None:
            return
        trace_id = span.context.trace_id
        decision = self._decisions.get(trace_id)
        if decision is not None:  # another local root of a trace this process already knows
            decision.open += 1
            if decision.attributes is not None:
                span.set_attributes(decision.attributes)
                return
        else:
            if len(self._decisions) >= self.max_traces:
                self._decisions.pop(next(iter(self._decisions)), None)
            decision = _Decision(None, self._rules_for(span), 1)
            self._decisions[trace_id] = decision
        upstream = baggage.get_baggage(attr.BAGGAGE_CHAIN_ID, context)
        if isinstance(upstream, str) and _chain_id_re.match(upstream):
            decision.attributes = self._attributes_for(upstream, trace_id)
            span.set_attributes(decision.attributes)
        elif decision.rules:
            self._try_rules(span, decision)

    def _try_rules(self, span: Span, decision: _Decision) -> None:
        chain = Catalog.match_rules(decision.rules, span.name, span.attributes or _EMPTY)
        if chain is not None:
            decision.attributes = self._attributes_for(chain.id, span.context.trace_id)
            decision.rules = ()
            span.set_attributes(decision.attributes)

    def _rules_for(self, span: Span) -> tuple:
        resource = span.resource
        key = id(resource)
        rules = self._rules_by_resource.get(key)
        if rules is None:
            service = resource.attributes.get(_SERVICE_NAME) if resource is not None else None
            rules = self.catalog.rules_for_service(service)  # type: ignore[union-attr]
            self._rules_by_resource[key] = rules
        return rules

    def _attributes_for(self, chain_id: str, trace_id: int) -> dict[str, str]:
        chain = self.catalog.get(chain_id) if self.catalog is not None else None
        out = {attr.CHAIN_ID: chain_id, attr.CHAIN_CATEGORY: Category.from_letter(chain_id[0]).value}
        if chain is not None:
            out[attr.CHAIN_NAME] = chain.name
        out[attr.CHAIN_INSTANCE_ID] = format_chain_id(trace_id)
        return out

    def _warn_once(self) -> None:
        if not self._warned:
            self._warned = True
            _logger.warning("chainotel: chain tagging failed for a span; continuing", exc_info=True)


_EMPTY: Mapping[str, str] = {}
