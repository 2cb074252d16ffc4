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
ends) — with ``span_attributes="minimal"`` (``CHAINOTEL_SPAN_ATTRIBUTES``) only the local roots
(and the span a ``span_name`` rule matched) get all four, every other span ``chain.id`` alone: the
category and name follow from ``chain.id`` through the catalog, the instance ID is the trace ID,
and each attribute left out saves the SDK's work on it at span creation and at export.
``chain.synthetic`` stays on every span of a synthetic probe's trace in both modes. Downstream
services learn the chain from baggage written by :class:`chainotel.propagator.XChainPropagator`.

The local root also gets what :class:`chainotel.propagator.XChainPropagator` extracted:
``chain.instance.conflict``, ``chain.instance.invalid`` and a link to the ``X-Parent-Chain-ID``
trace (span ID zero, which the OpenTelemetry spec allows for links with attributes).

How the attributes get onto a span — public SDK API only:

- At creation, from :class:`chainotel.sampler.ChainSampler`, which wraps the configured sampler
  and adds them to the ``SamplingResult.attributes`` the SDK builds the span with: every span of a
  decided trace, and a local root that a rule or the upstream baggage gives a chain (the sampler
  matches it with :meth:`ChainSpanProcessor.root_chain` and the rules of its provider's resource).
  The SDK checks a span's start attributes once anyway, so this is the cheapest public path;
  ``span.set_attributes`` after creation costs ~3 µs per call for the four attributes (the SDK's
  lock and per-value checks).
- The sampler tells :meth:`~ChainSpanProcessor.on_start` (same thread, right after
  ``should_sample``) what it did through :data:`tagged_at_creation`: for a span it tagged,
  ``on_start`` returns after one comparison; a local root of a trace new to the table that the
  SDK will record the sampler also counts in the table itself
  (:meth:`~ChainSpanProcessor.open_local_root`, deciding the trace when it matched), so
  ``on_start`` only reads the hand-off (and writes the ``X-Chain-ID`` attributes).
- Any span the sampler did not tag gets them through ``span.set_attributes`` in ``on_start``: the
  first span a ``span_name`` rule matches, and every span when there is no ``ChainSampler`` (a
  tracer provider that is not the SDK's, a tracer holding an older sampler, a wrapped sampler
  that returns attributes of its own).

Thread safety: the decision table's entries are changed only under a lock (local roots starting —
in the sampler or in ``on_start`` — and ending, a trace being decided by a later span): the count
of open local roots is read, changed and tested, which no single dict operation does atomically.
The one change without it is adding a new trace's complete entry by one ``dict.setdefault``
(atomic under the GIL), which never changes an entry already there; entries are removed only under
the lock. The per-span path reads the table without the lock: one
``dict.get`` and the read of an attribute that is set once, to a complete dict. The sampler's
matching of local roots fills the rule caches without the lock, by single dict operations (atomic
under the GIL); two threads starting local roots of one trace compute the same attributes.

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

__all__ = ["SPAN_ATTRIBUTE_MODES", "ChainSpanProcessor", "TraceDecision", "tagged_at_creation"]

_logger = logging.getLogger(__name__)

_SERVICE_NAME = "service.name"
_HTTP_ROUTE, _HTTP_METHOD = "http.route", "http.request.method"  # what server spans have (semantic conventions)
_CHAIN_ID, _CHAIN_SYNTHETIC = attr.CHAIN_ID, attr.CHAIN_SYNTHETIC
_chain_id_re = re.compile(CHAIN_ID_PATTERN)

SPAN_ATTRIBUTE_MODES = ("full", "minimal")
"""Values of ``ChainSpanProcessor(span_attributes=...)`` (``CHAINOTEL_SPAN_ATTRIBUTES``): ``full``,
the four chain attributes on every span; ``minimal``, all four on local roots and ``chain.id``
alone on the other spans."""

class _Handoff(threading.local):
    """What :class:`chainotel.sampler.ChainSampler` tells :meth:`ChainSpanProcessor.on_start` about
    the span it just sampled, on the same thread (the class attributes are every thread's initial
    values). The SDK calls the sampler and then, synchronously, the processors' ``on_start`` for the
    span it created from that sampling result, so ``on_start`` reads and resets these first.

    Attributes:
        trace_id: trace ID (128-bit ``int``) of the span the sampler gave the chain attributes; 0: none.
        root: ``(trace ID, chain attributes, incoming)`` of the local root the sampler matched and
            counted in the decision table (:meth:`ChainSpanProcessor.open_local_root`): the
            attributes it must carry (``None``: undecided trace) and the
            :class:`~chainotel.propagator.IncomingChain` of its parent context (or ``None``);
            ``None``: no such span. One tuple: one read and one reset per local root.
    """

    trace_id = 0
    root: tuple[int, dict | None, IncomingChain | None] | None = None


tagged_at_creation = _Handoff()
"""The hand-off from :class:`chainotel.sampler.ChainSampler` to :meth:`ChainSpanProcessor.on_start`."""


class _Rules:
    """The catalog rules for one service: all of them (tried at local roots) and those with a
    ``span_name`` (the only ones tried at later spans of an undecided trace).

    Two bounded caches (cleared when full) keep repeated work off the per-span path: ``cache``,
    the static chain attributes (or ``None``) per :meth:`Catalog.span_key` of a local root (per span
    name, ``http.route`` and ``http.request.method`` as given when the span has both), and
    ``unmatched_names``, the span names that match no ``span_name`` pattern (span names have low
    cardinality by the OpenTelemetry conventions, so most later spans of an undecided trace cost
    one set lookup). Both are changed by single dict and set operations (atomic under the GIL), also
    by the sampler without the processor's lock; a lost entry costs one more rule scan.
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
        attributes: the chain attributes every new span of the trace that is not a local root gets
            (``chain.id``, ``chain.category``, ``chain.name`` when known, ``chain.instance_id``;
            ``chain.id`` alone in ``minimal`` mode; ``chain.synthetic`` in both); ``None`` while
            undecided. Set once — when the entry is created, or under the processor's lock after
            ``root_attributes`` — and never changed afterwards.
        root_attributes: the chain attributes a local root of the trace gets (all four); the same
            object as ``attributes`` in ``full`` mode. ``None`` while undecided.
        rules: the service's rules (their ``span_name`` rules are tried while undecided).
        open: how many local roots of the trace are open (changed under the processor's lock).
        sampling_result: the ``SamplingResult`` :class:`chainotel.sampler.ChainSampler` gives the
            trace's children without start attributes (built once per trace, read-only).
    """

    __slots__ = ("attributes", "open", "root_attributes", "rules", "sampling_result")

    def __init__(self, rules: _Rules, root_attributes: dict | None = None, attributes: dict | None = None):
        self.attributes: dict[str, str] | None = attributes
        self.root_attributes: dict[str, str] | None = root_attributes
        self.rules = rules
        self.open = 1
        self.sampling_result = None


class ChainSpanProcessor(SpanProcessor):
    """Tags spans with their chain (see the module doc).

    Args:
        catalog: the chain catalog; ``None`` turns chain tagging off (the request attributes from
            ``X-Chain-ID`` handling — conflict, invalid, parent link — are still written).
        max_traces: bound of the per-trace decision table (entries, not bytes).
        span_attributes: ``"full"`` (the four chain attributes on every span) or ``"minimal"``
            (all four on local roots, ``chain.id`` alone on the other spans); see
            :data:`SPAN_ATTRIBUTE_MODES`.

    Raises:
        ValueError: ``span_attributes`` is not one of :data:`SPAN_ATTRIBUTE_MODES`.

    Attributes:
        decisions: trace ID (128-bit ``int``) → :class:`TraceDecision`, for the traces with an
            open local root in this process. Read-only outside this class (the sampler reads it).
    """

    def __init__(self, catalog: Catalog | None, max_traces: int = 10_000, span_attributes: str = "full"):
        if span_attributes not in SPAN_ATTRIBUTE_MODES:
            raise ValueError(f"span_attributes must be one of {SPAN_ATTRIBUTE_MODES}, got {span_attributes!r}")
        self.catalog = catalog
        self.span_attributes = span_attributes
        self._minimal = span_attributes == "minimal"
        self.max_traces = max_traces
        self.decisions: dict[int, TraceDecision] = {}
        self._lock = threading.Lock()
        self._rules_by_resource: dict[int, _Rules] = {}
        self._static_attributes: dict[str, dict[str, str] | None] = {}
        self._chain_id_only: dict[str, dict[str, str]] = {}  # minimal mode: chain.id → {chain.id: …}
        self._last_rules: _Rules | None = None  # rules of the last resource seen (usually the only one)
        self._warned = False

    # -- SpanProcessor ---------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Tag ``span`` if its trace is decided and the sampler did not; at a local root, decide
        (or only read what the sampler counted and decided). Never raises."""
        try:
            handoff = tagged_at_creation
            tagged = handoff.trace_id
            if tagged:
                handoff.trace_id = 0
            parent = span.parent
            if parent is not None and not parent.is_remote:
                trace_id = parent.trace_id
                if tagged == trace_id:  # ChainSampler gave it the attributes: the per-span fast path
                    return
                decision = self.decisions.get(trace_id)
                if decision is not None:
                    attributes = decision.attributes
                    if attributes is not None:
                        span.set_attributes(attributes)
                    elif decision.rules.span_rules and span.name not in decision.rules.unmatched_names:
                        with self._lock:
                            self._try_span_rules(span, decision)
                return
            trace_id = span.context.trace_id
            root = handoff.root
            if root is not None:
                handoff.root = None
                if root[0] == trace_id:  # ChainSampler matched and counted it: the entry fast path
                    _, chain, info = root
                    if info is not None:
                        self._record_incoming(span, info)
                    if chain is not None and tagged != trace_id:  # the delegate dropped the chain attributes
                        span.set_attributes(chain)
                    return
            context = parent_context if parent_context is not None else get_current()
            info = context.get(INCOMING_CHAIN_KEY)  # a Context is a dict
            if info is not None:
                self._record_incoming(span, info)
            if self.catalog is not None:
                with self._lock:
                    self._start_local_root(span, context, tagged == trace_id)
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
        else:
            rules = self.rules_for(span.resource)
            if rules is None:  # tagging switched off meanwhile
                return
            decision = self._add_decision(trace_id, TraceDecision(rules))
        if decision.root_attributes is not None:
            if not tagged:
                span.set_attributes(decision.root_attributes)
            return
        chain = self.root_chain(self.rules_for(span.resource), span.name, span.attributes, context, trace_id)
        if chain is not None:
            self._publish(decision, chain)
            if not tagged:
                span.set_attributes(chain)

    def open_local_root(self, trace_id: int, rules: _Rules | None, chain: dict | None) -> dict | None:
        """Count a local root of trace ``trace_id`` (128-bit ``int``) that
        :class:`chainotel.sampler.ChainSampler` matched to ``chain`` (:meth:`root_chain`'s answer)
        and whose span the SDK is about to record, deciding the trace by ``chain`` if undecided —
        what :meth:`on_start` does for a local root, done once, by the sampler, before the span
        exists (:meth:`on_start` then only reads the hand-off). ``rules``: the service's rules;
        ``None`` (tagging off) counts nothing.

        Returns:
            the chain attributes the local root must carry (the trace's ``root_attributes``), or
            ``None`` when the trace is undecided. Never raises.
        """
        if rules is None:
            return None
        try:
            if chain is None or not self._minimal:
                others = chain
            else:  # minimal: the shared {chain.id: …} of the chain, looked up here without a call
                others = None if _CHAIN_SYNTHETIC in chain else self._chain_id_only.get(chain[_CHAIN_ID])
                if others is None:
                    others = self.span_attributes_of(chain)
            fresh = TraceDecision(rules, chain, others)
            # The usual case, a trace new here, without the lock: setdefault is one atomic dict
            # operation that only adds a complete entry (open == 1) for an absent trace and never
            # changes one in the table. Every other change (counting a known trace's local root,
            # deciding one, on_end's count down and delete, eviction) stays under the lock, and
            # entries are only removed under it, so on_end cannot remove the entry between an
            # increment and its check; the threaded test in tests/distro/test_processor.py forces
            # thread switches inside these sequences.
            if len(self.decisions) < self.max_traces and self.decisions.setdefault(trace_id, fresh) is fresh:
                return chain
            with self._lock:
                decision = self._add_decision(trace_id, fresh)
                if decision is not fresh and chain is not None and decision.root_attributes is None:
                    self._publish(decision, chain)
                return decision.root_attributes
        except Exception:  # noqa: BLE001 - never break the instrumented application
            self._warn_once()
            return None

    def _add_decision(self, trace_id: int, fresh: TraceDecision) -> TraceDecision:
        """The entry for ``trace_id`` after counting one more open local root: ``fresh`` (one open
        local root), added when the trace is new (the oldest entry dropped when the table is full),
        else the entry already there, its count raised. Called with the lock held."""
        decisions = self.decisions
        decision = decisions.get(trace_id)
        if decision is None:
            if len(decisions) >= self.max_traces:
                try:
                    del decisions[next(iter(decisions))]
                except (KeyError, RuntimeError, StopIteration):  # a lock-free add meanwhile: drop one later
                    pass
            decision = decisions.setdefault(trace_id, fresh)  # a lock-free add may have come first
            if decision is fresh:
                return fresh
        decision.open += 1
        return decision

    def _publish(self, decision: TraceDecision, chain: dict) -> None:
        """Record ``chain`` (a local root's attributes) as ``decision``'s: ``root_attributes``
        first, then ``attributes`` (what the lock-free readers test), each a complete dict."""
        decision.root_attributes = chain
        decision.attributes = self.span_attributes_of(chain)

    def span_attributes_of(self, chain: dict) -> dict:
        """The attributes the spans that are not local roots get, from a local root's ``chain``:
        ``chain`` itself in ``full`` mode; ``chain.id`` (and ``chain.synthetic`` when present) in
        ``minimal`` mode."""
        if not self._minimal:
            return chain
        chain_id = chain[attr.CHAIN_ID]
        synthetic = chain.get(attr.CHAIN_SYNTHETIC)
        if synthetic is not None:
            return {attr.CHAIN_ID: chain_id, attr.CHAIN_SYNTHETIC: synthetic}
        out = self._chain_id_only.get(chain_id)  # one read-only dict per chain, shared by its traces
        if out is None:
            out = {attr.CHAIN_ID: chain_id}
            if len(self._chain_id_only) < 1024:  # bounded as _static_attributes
                self._chain_id_only[chain_id] = out
        return out

    def root_chain(
        self, rules: _Rules | None, name: str, attributes: Mapping | None, context: Context | None, trace_id: int
    ) -> dict[str, str | bool] | None:
        """The chain attributes of a local root (see the module doc), or ``None`` (no chain, or a
        chain switched off with ``enabled: false``): ``chain.id``, ``chain.category``,
        ``chain.name`` when known, ``chain.instance_id`` (``trace_id``, 128-bit ``int``, as a UUID)
        and ``chain.synthetic`` for a synthetic probe's trace. ``rules``: the service's rules
        (:meth:`rules_for`), ``context``: the span's parent context (``None``: the current one).

        Safe without the lock (called by the sampler on any thread): the caches it fills are
        changed by single dict operations, atomic under the GIL; a lost cache entry costs one
        rule scan."""
        entries = baggage.get_all(context)
        upstream = entries.get(attr.BAGGAGE_CHAIN_ID) if entries else None
        if upstream is not None and isinstance(upstream, str) and _chain_id_re.match(upstream):
            static = self._static_attributes_for(upstream)
        elif rules is None:
            return None
        else:
            if attributes:
                route, method = attributes.get(_HTTP_ROUTE), attributes.get(_HTTP_METHOD)
            else:
                route = method = None
            if route is not None and method is not None:  # as given (span_key's result is a function of it)
                key = (name, route, method)
            else:
                key = Catalog.span_key(name, attributes or _EMPTY)
            cache = rules.cache
            static = cache.get(key, _MISSING)
            if static is _MISSING:
                matched = Catalog.match_key(rules.all, Catalog.span_key(name, attributes or _EMPTY))
                static = None if matched is None else self._static_attributes_for(matched.id)
                if len(cache) >= rules.CACHE_SIZE:
                    cache.clear()
                cache[key] = static
        if static is None:
            return None
        chain = {**static, attr.CHAIN_INSTANCE_ID: format_instance_id(trace_id)}
        if entries and entries.get(attr.BAGGAGE_SYNTHETIC) == "true":  # a synthetic probe's trace
            chain[attr.CHAIN_SYNTHETIC] = True
        return chain

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
            span.set_attributes(decision.attributes)  # (the deciding span got the root attributes)
        elif decision.rules.may_match_name(span.name):
            chain = Catalog.match_rules(decision.rules.span_rules, span.name, span.attributes or _EMPTY)
            if chain is not None:
                static = self._static_attributes_for(chain.id)
                if static is not None:
                    attributes = dict(static)
                    attributes[attr.CHAIN_INSTANCE_ID] = format_instance_id(span.context.trace_id)
                    self._publish(decision, attributes)  # the deciding span counts as the entry span
                    span.set_attributes(attributes)

    def rules_for(self, resource: object) -> _Rules | None:
        """The catalog rules for the service of ``resource`` (an SDK ``Resource``), cached per
        resource; ``None`` when tagging is off. Safe without the lock (see :meth:`root_chain`)."""
        if self.catalog is None:
            return None
        rules = self._last_rules
        if rules is None or rules.resource is not resource or rules.catalog is not self.catalog:
            rules = self._last_rules = self._rules_for(resource)
        return rules

    def _rules_for(self, resource: object) -> _Rules:
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
