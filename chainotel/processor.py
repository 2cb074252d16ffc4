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
that have a ``span_name`` (e.g. a manual ``trading.decision`` span) until one matches ("the first
span that matches a rule"); spans started before that carry no chain. Match results of local
roots are cached per (span name, route, method), so a route costs one rule scan per process.
Once decided, every span started in the trace gets ``chain.id``, ``chain.category``,
``chain.name`` and ``chain.instance_id`` when it starts (attributes cannot be added after a span
ends). Downstream services learn the chain from baggage written by
:class:`chainotel.propagator.XChainPropagator`.

The local root also gets what :class:`chainotel.propagator.XChainPropagator` extracted:
``chain.instance.conflict``, ``chain.instance.invalid`` and a link to the ``X-Parent-Chain-ID``
trace (span ID zero, which the OpenTelemetry spec allows for links with attributes).

How the attributes get onto a span — public SDK API only:

- The spans that decide (local roots, the first span a ``span_name`` rule matches) get them
  through ``span.set_attributes`` in :meth:`ChainSpanProcessor.on_start`.
- Every later span of a decided trace (the per-span path) gets them *at creation*, from
  :class:`chainotel.sampler.ChainSampler`, which wraps the configured sampler and adds them to the
  ``SamplingResult.attributes`` the SDK builds the span with. ``span.set_attributes`` costs
  ~2.6 µs per call with the SDK's per-value checks and lock, more than the whole per-span budget;
  at creation the SDK checks the span's attributes once anyway. The sampler tells
  :meth:`~ChainSpanProcessor.on_start` (same thread, right after ``should_sample``) that it tagged
  the span; any span it did not tag (no ``ChainSampler`` on that tracer provider, a tracer
  holding an older sampler) is tagged in ``on_start`` with ``set_attributes``.

Thread safety: the decision table is changed only under a lock (local roots starting and ending,
a trace being decided). The per-span path reads it without the lock: one ``dict.get`` and the
read of an attribute that is set once.

No method raises into the application; failures are logged once at warning level.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import threading
from collections.abc import Mapping

from opentelemetry import baggage
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanContext

from chainotel import attributes as attr
from chainotel.catalog import Catalog, Category
from chainotel.catalog.models import CHAIN_ID_PATTERN
from chainotel.ids import format_instance_id
from chainotel.propagator import INCOMING_CHAIN_KEY, IncomingChain

__all__ = ["ChainSpanProcessor", "TraceDecision", "tagged_at_creation"]

_logger = logging.getLogger(__name__)

_SERVICE_NAME = "service.name"
_chain_id_re = re.compile(CHAIN_ID_PATTERN)

class _Handoff(threading.local):
    trace_id = 0  # the class attribute is every thread's initial value


tagged_at_creation = _Handoff()
"""Hand-off from :class:`chainotel.sampler.ChainSampler` to :meth:`ChainSpanProcessor.on_start` on
the same thread: ``trace_id`` is the trace ID of the span the sampler just gave the chain
attributes (0: none). The SDK calls the sampler and then, synchronously, the processors' ``on_start``
for the span it created from that sampling result."""


class _Rules:
    """The catalog rules for one service: all of them (tried at local roots) and those with a
    ``span_name`` (the only ones tried at later spans of an undecided trace).

    Two bounded caches (cleared when full) keep repeated work off the per-span path: ``cache``,
    the static chain attributes (or ``None``) per :meth:`Catalog.span_key` of a local root, and
    ``unmatched_names``, the span names that match no ``span_name`` pattern (span names have low
    cardinality by the OpenTelemetry conventions, so most later spans of an undecided trace cost
    one set lookup). Both are changed under the processor's lock.
    """

    __slots__ = ("all", "cache", "catalog", "prefilter", "resource", "span_rules", "unmatched_names")

    CACHE_SIZE = 4096

    def __init__(self, rules: tuple, resource: object, catalog: object = None):
        self.catalog = catalog  # the catalog the rules come from (a live catalog swaps it)
        self.resource = resource  # keeps the id() used as cache key from being reused
        self.all = rules
        self.cache: dict[tuple, dict[str, str] | None] = {}
        self.span_rules = tuple((r, c) for r, c in rules if r.span_name is not None)
        patterns = "|".join(f"(?:{fnmatch.translate(r.span_name)})" for r, _ in self.span_rules)
        self.prefilter = re.compile(patterns).match if patterns else None  # one match for all patterns
        self.unmatched_names: set[str] = set()

    def may_match_name(self, name: str) -> bool:
        """Whether a ``span_name`` pattern matches ``name``; a ``False`` is remembered in ``unmatched_names``."""
        if self.prefilter is not None and self.prefilter(name) is not None:
            return True
        if len(self.unmatched_names) >= self.CACHE_SIZE:
            self.unmatched_names.clear()
        self.unmatched_names.add(name)
        return False


class TraceDecision:
    """A trace's chain in this process.

    Attributes:
        attributes: the chain attributes every new span of the trace gets (``chain.id``,
            ``chain.category``, ``chain.name`` when known, ``chain.instance_id``); ``None`` while
            undecided. Set once, under the processor's lock; never changed afterwards.
        rules: the service's rules (their ``span_name`` rules are tried while undecided).
        open: how many local roots of the trace are open (changed under the processor's lock).
    """

    __slots__ = ("attributes", "open", "rules")

    def __init__(self, rules: _Rules):
        self.attributes: dict[str, str] | None = None
        self.rules = rules
        self.open = 1


class ChainSpanProcessor(SpanProcessor):
    """Tags spans with their chain (see the module doc).

    Args:
        catalog: the chain catalog; ``None`` turns chain tagging off (the request attributes from
            ``X-Chain-ID`` handling — conflict, invalid, parent link — are still written).
        max_traces: bound of the per-trace decision table (entries, not bytes).

    Attributes:
        decisions: trace ID (128-bit ``int``) → :class:`TraceDecision`, for the traces with an
            open local root in this process. Read-only outside this class (the sampler reads it).
    """

    def __init__(self, catalog: Catalog | None, max_traces: int = 10_000):
        self.catalog = catalog
        self.max_traces = max_traces
        self.decisions: dict[int, TraceDecision] = {}
        self._lock = threading.Lock()
        self._rules_by_resource: dict[int, _Rules] = {}
        self._static_attributes: dict[str, dict[str, str] | None] = {}
        self._last_rules: _Rules | None = None  # rules of the last resource seen (usually the only one)
        self._warned = False

    # -- SpanProcessor ---------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Tag ``span`` if its trace is decided and the sampler did not; at a local root, decide.
        Never raises."""
        try:
            parent = span.parent
            if parent is not None and not parent.is_remote:
                trace_id = parent.trace_id
                decision = self.decisions.get(trace_id)
                if decision is not None:
                    attributes = decision.attributes
                    if attributes is not None:
                        if tagged_at_creation.trace_id == trace_id:  # ChainSampler gave it the attributes
                            tagged_at_creation.trace_id = 0
                        else:
                            span.set_attributes(attributes)
                    elif decision.rules.span_rules and span.name not in decision.rules.unmatched_names:
                        with self._lock:
                            self._try_span_rules(span, decision)
                return
            tagged = tagged_at_creation.trace_id
            if tagged:
                tagged_at_creation.trace_id = 0
            context = parent_context if parent_context is not None else get_current()
            info = context.get(INCOMING_CHAIN_KEY)  # a Context is a dict
            if info is not None:
                self._record_incoming(span, info)
            if self.catalog is not None:
                with self._lock:
                    self._start_local_root(span, context, tagged == span.context.trace_id)
        except Exception:  # noqa: BLE001 - never break the instrumented application
            self._warn_once()

    def on_end(self, span: ReadableSpan) -> None:
        """Drop the trace's entry when its last open local root ends. Never raises."""
        try:
            parent = span.parent
            if parent is None or parent.is_remote:
                trace_id = span.context.trace_id
                with self._lock:
                    decision = self.decisions.get(trace_id)
                    if decision is not None:
                        decision.open -= 1
                        if decision.open <= 0:
                            del self.decisions[trace_id]
        except Exception:  # noqa: BLE001
            self._warn_once()

    def set_catalog(self, catalog: Catalog | None) -> None:
        """Tag new traces by ``catalog`` from now on (a live catalog swaps it, see
        :mod:`chainotel.catalog.remote`); traces already decided keep their chain. Never raises."""
        try:  # rules built from the old catalog are rebuilt on their next use (_Rules.catalog)
            with self._lock:
                self.catalog = catalog
                self._static_attributes = {}
        except Exception:  # noqa: BLE001
            self._warn_once()

    def shutdown(self) -> None:
        """Forget all decisions."""
        with self._lock:
            self.decisions.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered; returns ``True``."""
        return True

    # -- internals (called with the lock held) -----------------------------------------------------
    def _start_local_root(self, span: Span, context: Context, tagged: bool) -> None:
        """Count the local root; tag it unless the sampler did (``tagged``); decide if undecided."""
        trace_id = span.context.trace_id
        decision = self.decisions.get(trace_id)
        if decision is not None:  # another local root of a trace this process already knows
            decision.open += 1
            if decision.attributes is not None:
                if not tagged:
                    span.set_attributes(decision.attributes)
                return
            rules = self._rules_for(span)
        else:
            rules = self._last_rules
            if rules is None or rules.resource is not span.resource or rules.catalog is not self.catalog:
                rules = self._last_rules = self._rules_for(span)
            if len(self.decisions) >= self.max_traces:
                del self.decisions[next(iter(self.decisions))]
            decision = TraceDecision(rules)
            self.decisions[trace_id] = decision
        upstream = baggage.get_baggage(attr.BAGGAGE_CHAIN_ID, context)
        if upstream is not None and isinstance(upstream, str) and _chain_id_re.match(upstream):
            static = self._static_attributes_for(upstream)
            if static is None:  # switched off here with enabled: false
                return
        else:
            key = Catalog.span_key(span.name, span.attributes or _EMPTY)
            static = rules.cache.get(key, _MISSING)
            if static is _MISSING:
                chain = Catalog.match_key(rules.all, key)
                static = None if chain is None else self._static_attributes_for(chain.id)
                if len(rules.cache) >= rules.CACHE_SIZE:
                    rules.cache.clear()
                rules.cache[key] = static
            if static is None:
                return
        self._decide(span, decision, static, trace_id)
        if baggage.get_baggage(attr.BAGGAGE_SYNTHETIC, context) == "true":  # a synthetic probe's trace
            # a new dict, published whole: other threads may be reading the old one
            decision.attributes = {**decision.attributes, attr.CHAIN_SYNTHETIC: True}
            span.set_attribute(attr.CHAIN_SYNTHETIC, True)

    @staticmethod
    def _record_incoming(span: Span, info: IncomingChain) -> None:
        """Conflict / invalid ``X-Chain-ID`` attributes and the ``X-Parent-Chain-ID`` link."""
        if info.conflict is not None:
            span.set_attribute(attr.CHAIN_INSTANCE_CONFLICT, info.conflict)
        if info.invalid is not None:
            span.set_attribute(attr.CHAIN_INSTANCE_INVALID, info.invalid)
        if info.parent_trace_id is not None:
            parent_instance = format_instance_id(info.parent_trace_id)
            span.add_link(
                SpanContext(info.parent_trace_id, 0, is_remote=True),
                {attr.CHAIN_PARENT_INSTANCE_ID: parent_instance},
            )
            span.set_attribute(attr.CHAIN_PARENT_INSTANCE_ID, parent_instance)

    def _try_span_rules(self, span: Span, decision: TraceDecision) -> None:
        """A later span of an undecided trace: decide if a ``span_name`` rule matches it."""
        if decision.attributes is not None:  # decided by another thread meanwhile
            span.set_attributes(decision.attributes)
        elif decision.rules.may_match_name(span.name):
            chain = Catalog.match_rules(decision.rules.span_rules, span.name, span.attributes or _EMPTY)
            if chain is not None:
                self._decide(span, decision, self._static_attributes_for(chain.id), span.context.trace_id)

    @staticmethod
    def _decide(span: Span, decision: TraceDecision, static: dict[str, str], trace_id: int) -> None:
        """Record the trace's chain attributes — the chain's ``static`` ones plus
        ``chain.instance_id`` — and set them on ``span``, the span that decided."""
        attributes = dict(static)
        attributes[attr.CHAIN_INSTANCE_ID] = format_instance_id(trace_id)
        decision.attributes = attributes  # published complete: readers never see a partial dict
        span.set_attributes(attributes)

    def _rules_for(self, span: Span) -> _Rules:
        resource = span.resource
        key = id(resource)
        rules = self._rules_by_resource.get(key)
        catalog = self.catalog
        if rules is None or rules.catalog is not catalog:
            service = resource.attributes.get(_SERVICE_NAME) if resource is not None else None
            rules = _Rules(catalog.rules_for_service(service), resource, catalog)  # type: ignore[union-attr]
            self._rules_by_resource[key] = rules
        return rules

    def _static_attributes_for(self, chain_id: str) -> dict[str, str] | None:
        """``chain.id``, ``chain.category`` and (if in the catalog) ``chain.name``; ``None`` for a
        chain the catalog has with ``enabled: false``. Cached."""
        static = self._static_attributes.get(chain_id, _MISSING)
        if static is not _MISSING:
            return static
        chain = self.catalog.get(chain_id) if self.catalog is not None else None
        if chain is not None and not chain.enabled:
            self._static_attributes[chain_id] = None
            return None
        static = {attr.CHAIN_ID: chain_id, attr.CHAIN_CATEGORY: Category.from_letter(chain_id[0]).value}
        if chain is not None:
            static[attr.CHAIN_NAME] = chain.name
        if len(self._static_attributes) < 1024:  # bounded: baggage may name unknown chains
            self._static_attributes[chain_id] = static
        return static

    def _warn_once(self) -> None:
        if not self._warned:
            self._warned = True
            _logger.warning("chainotel: chain tagging failed for a span; continuing", exc_info=True)


_EMPTY: Mapping[str, str] = {}
_MISSING = object()
