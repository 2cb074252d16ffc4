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
roots are cached per (span name, route, method), so a route costs one rule scan per process. Once decided, every span started in the trace gets ``chain.id``, ``chain.category``,
``chain.name`` and ``chain.instance_id`` at ``on_start`` (attributes cannot be added after a span
ends). Downstream services learn the chain from baggage written by
:class:`chainotel.propagator.XChainPropagator`.

The local root also gets what :class:`chainotel.propagator.XChainPropagator` extracted:
``chain.instance.conflict``, ``chain.instance.invalid`` and a link to the ``X-Parent-Chain-ID``
trace (span ID zero, which the OpenTelemetry spec allows for links with attributes).

Hot path (a child span of a decided trace): two tuple reads of the parent's span context (see
:func:`_span_context_rebuilder`), one dict lookup and one write of the four attributes
(:meth:`ChainSpanProcessor._write`: straight into the span's attribute dict when
:func:`_attribute_room` verified at the first local root that this is safe, else
``span.set_attributes``). No method raises into the application; failures are logged once at
warning level.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import sys
from collections.abc import Callable, Mapping

from opentelemetry import baggage
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanContext

from chainotel import attributes as attr
from chainotel.catalog import Catalog, Category
from chainotel.catalog.models import CHAIN_ID_PATTERN
from chainotel.ids import format_chain_id
from chainotel.propagator import INCOMING_CHAIN_KEY, IncomingChain

__all__ = ["ChainSpanProcessor"]

_logger = logging.getLogger(__name__)

_SERVICE_NAME = "service.name"
_CHAIN_ATTRIBUTE_COUNT = 4  # chain.id, chain.category, chain.name, chain.instance_id
_chain_id_re = re.compile(CHAIN_ID_PATTERN)
_TRACE_ID, _IS_REMOTE = 0, 2  # positions in the (trace_id, span_id, is_remote, …) tuple read per span


def _span_context_rebuilder() -> Callable[[SpanContext], tuple] | None:
    """How the per-span path reads a parent's :class:`~opentelemetry.trace.SpanContext`.

    ``None``: ``SpanContext`` is the tuple ``(trace_id, span_id, is_remote, …)`` whose properties
    index it, so the per-span path indexes it directly (two tuple reads instead of two property
    calls: ~30 ns against ~95 ns). The positions are not public API, so they are checked here once,
    on two probes, when the module is imported; if they do not hold, a function that builds that
    tuple from the public properties is returned (slower, still right). Never raises.
    """
    try:
        remote = SpanContext(trace_id=0x5EED, span_id=0xB0B, is_remote=True)
        local = SpanContext(trace_id=0x5EED, span_id=0xB0B, is_remote=False)
        positional = (
            isinstance(remote, tuple)
            and remote[_TRACE_ID] == remote.trace_id == 0x5EED
            and remote[_IS_REMOTE] is remote.is_remote is True
            and local[_IS_REMOTE] is local.is_remote is False
        )
    except Exception:  # noqa: BLE001 - an unexpected SpanContext: use its properties
        positional = False
    return None if positional else _span_context_tuple


def _span_context_tuple(context: SpanContext) -> tuple[int, int, bool]:
    """``(trace_id, span_id, is_remote)`` from the public properties (see :func:`_span_context_rebuilder`)."""
    return context.trace_id, context.span_id, context.is_remote


_rebuild_span_context = _span_context_rebuilder()


class _Rules:
    """The catalog rules for one service: all of them (tried at local roots) and those with a
    ``span_name`` (the only ones tried at later spans of an undecided trace).

    Two bounded caches (cleared when full) keep repeated work off the per-span path: ``cache``,
    the static chain attributes (or ``None``) per :meth:`Catalog.span_key` of a local root, and
    ``unmatched_names``, the span names that match no ``span_name`` pattern (span names have low
    cardinality by the OpenTelemetry conventions, so most later spans of an undecided trace cost
    one set lookup).
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


class _Decision:
    """A trace's chain in this process: the attributes to set (``None`` while undecided), the
    service's rules (their span-name rules are tried while undecided), and how many local roots
    of the trace are open."""

    __slots__ = ("attributes", "open", "rules")

    def __init__(self, rules: _Rules):
        self.attributes: dict[str, str] | None = None
        self.rules = rules
        self.open = 1


_WRITE_CHECK_KEY = "chainotel.write_check"


def _attribute_room(span: Span) -> int:
    """How many attributes a span may already have for the chain attributes to be written
    straight into its attribute dict; ``-1``: always use ``span.set_attributes``.

    The chain values are plain ``str`` built here, so the SDK's per-value cleaning
    (``BoundedAttributes._set_items``) is pure cost on the per-span path: it was ~8 µs of the
    processor's first ~10 µs per span. The span was just started on this thread, so writing its
    dict directly is safe — unless a limit could apply (an attribute value length limit, or an
    attribute count limit the span is near) or the SDK's internals differ: then the public API is
    used, with the SDK's limit semantics. The limits are the tracer provider's, the same for
    every span, so this is computed once, at the first local root.

    The internals are checked on that span: a key written into the dict must be what the SDK reads
    back through ``span.attributes`` (what processors and exporters read), and gone once deleted.
    The check key is removed before the span is returned to the application.
    """
    bounded = getattr(span, "_attributes", None)
    values = getattr(bounded, "_dict", None)
    maxlen = getattr(bounded, "maxlen", -1)  # None: no count limit
    if not isinstance(values, dict) or getattr(bounded, "max_value_len", 0) is not None:
        return -1
    if maxlen is not None and (not isinstance(maxlen, int) or maxlen < _CHAIN_ATTRIBUTE_COUNT):
        return -1
    values[_WRITE_CHECK_KEY] = _WRITE_CHECK_KEY
    try:
        read_back = span.attributes.get(_WRITE_CHECK_KEY)
    finally:
        del values[_WRITE_CHECK_KEY]
    if read_back != _WRITE_CHECK_KEY or _WRITE_CHECK_KEY in span.attributes:
        return -1
    return sys.maxsize if maxlen is None else maxlen - _CHAIN_ATTRIBUTE_COUNT


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
        self._rules_by_resource: dict[int, _Rules] = {}
        self._static_attributes: dict[str, dict[str, str]] = {}
        self._room: int | None = None  # see _attribute_room; decided at the first local root
        self._last_rules: _Rules | None = None  # rules of the last resource seen (usually the only one)
        self._warned = False

    # -- SpanProcessor ---------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Tag ``span`` if its trace is decided; at a local root, decide. Never raises."""
        try:
            parent = span.parent
            if parent is not None:
                if _rebuild_span_context is not None:  # only if the layout check at import failed
                    parent = _rebuild_span_context(parent)
                if not parent[_IS_REMOTE]:
                    decision = self._decisions.get(parent[_TRACE_ID])
                    if decision is not None:
                        attributes = decision.attributes
                        if attributes is not None:
                            self._write(span, attributes)
                        elif decision.rules.span_rules and span.name not in decision.rules.unmatched_names:
                            self._try_span_rules(span, decision)
                    return
            self._start_local_root(span, parent_context if parent_context is not None else get_current())
        except Exception:  # noqa: BLE001 - never break the instrumented application
            self._warn_once()

    def on_end(self, span: ReadableSpan) -> None:
        """Drop the trace's entry when its last open local root ends. Never raises."""
        try:
            parent = span.parent
            if parent is not None and _rebuild_span_context is not None:
                parent = _rebuild_span_context(parent)
            if parent is None or parent[_IS_REMOTE]:
                trace_id = span.context.trace_id
                decision = self._decisions.get(trace_id)
                if decision is not None:
                    decision.open -= 1
                    if decision.open <= 0:
                        self._decisions.pop(trace_id, None)
        except Exception:  # noqa: BLE001
            self._warn_once()

    def set_catalog(self, catalog: Catalog | None) -> None:
        """Tag new traces by ``catalog`` from now on (a live catalog swaps it, see
        :mod:`chainotel.catalog.remote`); traces already decided keep their chain. Never raises."""
        try:  # rules built from the old catalog are rebuilt on their next use (_Rules.catalog)
            self.catalog = catalog
            self._static_attributes = {}
        except Exception:  # noqa: BLE001
            self._warn_once()

    def shutdown(self) -> None:
        """Forget all decisions."""
        self._decisions.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered; returns ``True``."""
        return True

    # -- internals ---------------------------------------------------------------------------------
    def _start_local_root(self, span: Span, context: Context) -> None:
        if self._room is None:
            self._room = _attribute_room(span)
        info = context.get(INCOMING_CHAIN_KEY)  # a Context is a dict
        if info is not None:
            self._record_incoming(span, info)
        if self.catalog is None:
            return
        trace_id = span.context.trace_id
        decision = self._decisions.get(trace_id)
        if decision is not None:  # another local root of a trace this process already knows
            decision.open += 1
            if decision.attributes is not None:
                self._write(span, decision.attributes)
                return
            rules = self._rules_for(span)
        else:
            rules = self._last_rules
            if rules is None or rules.resource is not span.resource or rules.catalog is not self.catalog:
                rules = self._last_rules = self._rules_for(span)
            if len(self._decisions) >= self.max_traces:
                self._decisions.pop(next(iter(self._decisions)), None)
            decision = _Decision(rules)
            self._decisions[trace_id] = decision
        upstream = baggage.get_baggage(attr.BAGGAGE_CHAIN_ID, context)
        if upstream is not None and isinstance(upstream, str) and _chain_id_re.match(upstream):
            static = self._static_attributes_for(upstream)
        else:
            # the dict itself when _attribute_room verified it: no per-key MappingProxy reads
            attributes = span._attributes._dict if self._room >= 0 else (span.attributes or _EMPTY)  # noqa: SLF001
            key = Catalog.span_key(span.name, attributes)
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
            decision.attributes[attr.CHAIN_SYNTHETIC] = True
            span.set_attribute(attr.CHAIN_SYNTHETIC, True)

    @staticmethod
    def _record_incoming(span: Span, info: IncomingChain) -> None:
        """Conflict / invalid ``X-Chain-ID`` attributes and the ``X-Parent-Chain-ID`` link."""
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

    def _try_span_rules(self, span: Span, decision: _Decision) -> None:
        """A later span of an undecided trace: decide if a ``span_name`` rule matches it."""
        if decision.rules.may_match_name(span.name):
            chain = Catalog.match_rules(decision.rules.span_rules, span.name, span.attributes or _EMPTY)
            if chain is not None:
                self._decide(span, decision, self._static_attributes_for(chain.id), span.context.trace_id)

    def _decide(self, span: Span, decision: _Decision, static: dict[str, str], trace_id: int) -> None:
        """Record the trace's chain attributes — the chain's ``static`` ones plus
        ``chain.instance_id`` — and write them on ``span``, the span that decided."""
        attributes = decision.attributes = dict(static)
        attributes[attr.CHAIN_INSTANCE_ID] = format_chain_id(trace_id)
        self._write(span, attributes)

    def _write(self, span: Span, attributes: dict[str, str]) -> None:
        """Write the chain attributes: into the span's attribute dict when there is room (see
        :func:`_attribute_room`), else through ``span.set_attributes`` (the SDK's limits apply)."""
        room = self._room
        if room >= 0:
            values = span._attributes._dict  # noqa: SLF001 - verified by _attribute_room
            if len(values) <= room:
                values |= attributes  # dict's in-place |: no method call on the per-span path
                return
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

    def _static_attributes_for(self, chain_id: str) -> dict[str, str]:
        """``chain.id``, ``chain.category`` and (if in the catalog) ``chain.name``; cached."""
        static = self._static_attributes.get(chain_id)
        if static is not None:
            return static
        chain = self.catalog.get(chain_id) if self.catalog is not None else None
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
