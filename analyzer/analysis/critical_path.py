"""Critical path and self time of one trace — Jaeger UI's semantics.

Method: ``docs/analysis-method.md``, section "Critical path and self time" (the one description of the rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter, sub
from typing import NamedTuple

from chainotel_analyzer.model.span import CONSUMER, PRODUCER, Span

_SPAN_ID = itemgetter(0)


class Section(NamedTuple):
    """A piece of the critical path: span ``span_id`` is what the trace waits on during
    ``[start_ns, end_ns)`` (Unix **nanoseconds**, ``end_ns > start_ns``)."""

    span_id: str
    start_ns: int
    end_ns: int


class RootCriticalPath(NamedTuple):
    """The critical path below one root span.

    ``sections`` are in time order and partition ``[root.start_ns, root.end_ns]`` (zero-length
    pieces omitted). ``orphan`` is true for a subtree whose parent span is missing from the trace.
    """

    root_span_id: str
    sections: list[Section]
    orphan: bool


class TraceCriticalPath(NamedTuple):
    """Result of :func:`analyze_trace`.

    - ``roots``: one :class:`RootCriticalPath` per root, main root first (a span without
      parent before orphans, then earliest start, then longest, then smaller span ID).
    - ``spans``: ``{span_id: Span}`` after de-duplication (a repeated span ID keeps one span,
      chosen independently of input order).
    - ``self_time_ns``, ``critical_time_ns``: ``{span_id: ns}`` for every span (0 when none).
    - ``excluded``: span IDs left out of the critical path by the clean-up (outside their
      parent, below such a span, or non-blocking consumers).
    - ``clipped``: span IDs whose interval was clipped to their parent's.
    """

    roots: list[RootCriticalPath]
    spans: dict[str, Span]
    self_time_ns: dict[str, int]
    critical_time_ns: dict[str, int]
    excluded: frozenset[str]
    clipped: frozenset[str]


@dataclass(slots=True)
class _Tree:
    """One trace's working state, by span index (span-ID order): ``parent[i]`` (-1 for a root),
    ``children`` (index → children by start), the effective interval in ns that the clean-up clips
    (``eff_start``/``eff_end``), and what it decides: ``kept`` (index → kept children in walk
    order), ``excluded`` and ``clipped`` indices."""

    spans: list[Span]
    ids: list[str]
    parent: list[int]
    children: dict[int, list[int]]
    eff_start: list[int]
    eff_end: list[int]
    kept: dict[int, list[int]] = field(default_factory=dict)
    excluded: list[int] = field(default_factory=list)
    clipped: list[int] = field(default_factory=list)


def analyze_trace(spans: Sequence[Span]) -> TraceCriticalPath:
    """Critical path, critical time and self time of one trace (see the module docstring).

    ``spans``: the spans of one trace, in any order (the result does not depend on it).
    Returns a :class:`TraceCriticalPath`; an empty input gives empty results. Never raises on
    odd data (missing parents, cycles, duplicate IDs, spans ending before they start).

    Example::

        >>> from chainotel_analyzer.model.span import Span
        >>> r = analyze_trace([Span("a", "", "web", "GET /", 0, 100),
        ...                    Span("b", "a", "db", "query", 10, 60)])
        >>> [(s.span_id, s.start_ns, s.end_ns) for s in r.roots[0].sections]
        [('a', 0, 10), ('b', 10, 60), ('a', 60, 100)]
        >>> r.self_time_ns
        {'a': 50, 'b': 50}
    """
    uniq, ids, parent, children = _index(spans)
    starts = [span[4] for span in uniq]
    ends = [span[5] if span[5] > span[4] else span[4] for span in uniq]
    for kids in children.values():  # stably by start: ties stay in span-ID order
        if len(kids) > 1:
            kids.sort(key=starts.__getitem__)
    self_time = _self_times(ids, starts, ends, children)
    tree = _Tree(uniq, ids, parent, children, list(starts), list(ends))
    root_list = _roots(tree)
    critical = dict.fromkeys(ids, 0)
    roots_out = [RootCriticalPath(ids[root], _walk_back(root, ids, tree.eff_start, tree.eff_end, tree.kept, critical),
                                  uniq[root][1] != "") for root in root_list]  # fmt: skip
    return TraceCriticalPath(
        roots=roots_out,
        spans=dict(zip(ids, uniq)),
        self_time_ns=self_time,
        critical_time_ns=critical,
        excluded=frozenset(ids[i] for i in tree.excluded),
        clipped=frozenset(ids[i] for i in tree.clipped),
    )


def _index(spans: Sequence[Span]) -> tuple[list[Span], list[str], list[int], dict[int, list[int]]]:
    """The spans in span-ID order (which makes every tie independent of input order; a repeated ID
    keeps one span) as ``(spans, ids, parent, children)``: ``parent[i]`` is the index of span ``i``'s
    parent, ``-1`` for a root (no parent present, or itself); ``children`` maps an index to its
    children's indices in span-ID order."""
    uniq: list[Span] = sorted(spans, key=_SPAN_ID)
    ids = [span[0] for span in uniq]
    index = dict(zip(ids, range(len(ids))))
    if len(index) != len(ids):
        uniq = _deduplicate(uniq)
        ids = [span[0] for span in uniq]
        index = dict(zip(ids, range(len(ids))))
    children: dict[int, list[int]] = {}
    parent = list(map(index.get, [span[1] for span in uniq]))
    for i, p in enumerate(parent):
        if p is None or p == i:
            parent[i] = -1
            continue
        kids = children.get(p)
        if kids is None:
            children[p] = [i]
        else:
            kids.append(i)
    return uniq, ids, parent, children


def _self_times(ids: list[str], starts: list[int], ends: list[int], children: dict[int, list[int]]) -> dict[str, int]:
    """``{span ID: self time ns}``: duration minus the union of the children's intervals clipped to
    the span (``children`` sorted by start)."""
    self_time = dict(zip(ids, map(sub, ends, starts)))
    for i, kids in children.items():
        s, e = starts[i], ends[i]
        covered = 0
        cur_s = cur_e = s
        for c in kids:  # sorted by start
            cs = starts[c]
            ce = ends[c]
            if cs < s:
                cs = s
            if ce > e:
                ce = e
            if ce <= cs:
                continue
            if cs > cur_e:
                covered += cur_e - cur_s
                cur_s, cur_e = cs, ce
            elif ce > cur_e:
                cur_e = ce
        covered += cur_e - cur_s
        self_time[ids[i]] = e - s - covered
    return self_time


def _roots(tree: _Tree) -> list[int]:
    """The roots in report order (the main root first: a true root, earliest, longest), after
    :func:`_clean_up` below each of them. Spans caught in a parent cycle (or below one) are cut loose
    one at a time, earliest first, each becoming a root (``parent``/``children`` change in place)."""
    uniq, ids, parent, children, eff_start, eff_end = (
        tree.spans, tree.ids, tree.parent, tree.children, tree.eff_start, tree.eff_end)
    n = len(uniq)
    root_list = [i for i, p in enumerate(parent) if p < 0]
    count = _clean_up(root_list, tree)
    while count < n:
        reached = set(root_list)
        reached.update(tree.excluded)
        for kids in tree.kept.values():
            reached.update(kids)
        cut = min((i for i in range(n) if i not in reached), key=lambda i: (eff_start[i], ids[i]))
        children[parent[cut]].remove(cut)
        parent[cut] = -1
        root_list.append(cut)
        count += _clean_up([cut], tree)
    # roots are never clipped: their effective interval is the recorded one
    root_list.sort(key=lambda i: (uniq[i][1] != "", eff_start[i], -eff_end[i], ids[i]))
    return root_list


def _walk_back(
    root: int, ids: list[str], eff_start: list[int], eff_end: list[int], kept: dict[int, list[int]],
    critical: dict[str, int],
) -> list[Section]:
    """The critical path of one root by the walk-back rule (module docstring, rule 2), iterative;
    adds each section's length to ``critical`` (ns per span ID)."""
    rev: list[Section] = []
    stack = [(root, eff_end[root], 0, True)]
    pop = stack.pop
    push = stack.append
    while stack:
        node, t, ptr, first = pop()
        kids = kept.get(node)
        pick = -1
        if kids:
            if first:
                pick = kids[0]
            else:
                k = len(kids)
                while ptr < k:
                    c = kids[ptr]
                    if eff_end[c] < t:
                        pick = c
                        break
                    ptr += 1
        if pick >= 0:
            ce = eff_end[pick]
            if ce != t:
                rev.append(Section(ids[node], ce, t))
                critical[ids[node]] += t - ce
            push((node, eff_start[pick], ptr + 1, False))
            push((pick, ce, 0, True))
        else:
            s = eff_start[node]
            if s != t:
                rev.append(Section(ids[node], s, t))
                critical[ids[node]] += t - s
    rev.reverse()
    return rev


def _clean_up(roots: list[int], tree: _Tree) -> int:
    """Apply the clean-up rules below ``roots`` (indices into ``tree.spans``), top-down.

    Fills ``tree.kept`` (node → kept children in walk order: end descending, then start, then the
    recorded order), clips ``eff_start``/``eff_end`` in place (ns) and appends to
    ``excluded``/``clipped``. Returns how many spans were reached.
    Rules from Jaeger UI's ``sanitizeOverFlowingChildren`` and ``filterBlockingSpans``.
    """
    spans, children, eff_start, eff_end = tree.spans, tree.children, tree.eff_start, tree.eff_end
    kept, excluded, clipped = tree.kept, tree.excluded, tree.clipped
    count = 0
    stack = list(roots)
    drop: list[int] = []
    while stack:
        node = stack.pop()
        count += 1
        kids = children.get(node)
        if not kids:
            continue
        ps = eff_start[node]
        pe = eff_end[node]
        producer = spans[node][6] == PRODUCER
        mine = []
        moved_start = False
        for c in kids:  # in recorded start order
            cs = eff_start[c]
            ce = eff_end[c]
            if cs >= pe or ce <= ps or (producer and spans[c][6] == CONSUMER):
                drop.append(c)
                continue
            if cs < ps or ce > pe:
                if cs < ps:
                    eff_start[c] = ps
                    moved_start = True
                if ce > pe:
                    eff_end[c] = pe
                clipped.append(c)
            mine.append(c)
            stack.append(c)
        if mine:
            if len(mine) > 1:  # stable sorts: clipped start, then end descending
                if moved_start:
                    mine.sort(key=eff_start.__getitem__)
                mine.sort(key=eff_end.__getitem__, reverse=True)
            kept[node] = mine
    while drop:  # dropped spans and their whole subtrees
        node = drop.pop()
        count += 1
        excluded.append(node)
        kids = children.get(node)
        if kids:
            drop.extend(kids)
    return count


def _deduplicate(ordered: list[Span]) -> list[Span]:
    """Spans sorted by ID with repeated IDs collapsed to the greatest span tuple (a choice that
    does not depend on input order)."""
    out: list[Span] = []
    prev_id = None
    for span in ordered:
        if span[0] == prev_id:
            if span > out[-1]:
                out[-1] = span
            continue
        prev_id = span[0]
        out.append(span)
    return out
