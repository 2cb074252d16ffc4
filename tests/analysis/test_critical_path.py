"""Critical path and self time: hand-built traces for every clean-up rule and tie, and
hypothesis properties (partition, critical ≥ self, order independence, agreement with a direct
recursive transcription of Jaeger UI's algorithm)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from chainotel_analyzer.analysis.critical_path import analyze_trace
from chainotel_analyzer.model.span import CONSUMER, PRODUCER, SERVER, Span


def S(sid, parent, start, end, kind="UNSPECIFIED", service="svc"):
    return Span(sid, parent, service, f"op-{sid}", start, end, kind)


def sections(result, root=0):
    return [(s.span_id, s.start_ns, s.end_ns) for s in result.roots[root].sections]


# ---------------------------------------------------------------- hand-built traces


def test_sequential_children_and_self_time():
    r = analyze_trace([S("a", "", 0, 100), S("b", "a", 10, 40), S("c", "a", 50, 90)])
    assert sections(r) == [("a", 0, 10), ("b", 10, 40), ("a", 40, 50), ("c", 50, 90), ("a", 90, 100)]
    assert r.critical_time_ns == {"a": 30, "b": 30, "c": 40}
    assert r.self_time_ns == {"a": 30, "b": 30, "c": 40}


def test_parallel_children_only_the_last_finishing_one_blocks():
    r = analyze_trace([S("a", "", 0, 100), S("b", "a", 10, 80), S("c", "a", 20, 60)])
    assert sections(r) == [("a", 0, 10), ("b", 10, 80), ("a", 80, 100)]
    assert r.critical_time_ns["c"] == 0
    assert r.self_time_ns["a"] == 30  # union [10, 80]


def test_child_starting_at_or_after_parent_end_is_dropped_with_subtree():
    r = analyze_trace([S("a", "", 0, 100), S("b", "a", 100, 150), S("g", "b", 110, 120), S("c", "a", 10, 20)])
    assert sections(r) == [("a", 0, 10), ("c", 10, 20), ("a", 20, 100)]
    assert r.excluded == {"b", "g"}
    assert r.self_time_ns["a"] == 90  # b lies outside a: adds nothing


def test_child_ending_at_or_before_parent_start_is_dropped():
    r = analyze_trace([S("a", "", 50, 100), S("b", "a", 0, 50), S("c", "a", 10, 40)])
    assert sections(r) == [("a", 50, 100)]
    assert r.excluded == {"b", "c"}


def test_overhanging_children_are_clipped_to_the_parent():
    r = analyze_trace([S("a", "", 0, 100), S("b", "a", 60, 130), S("g", "b", 110, 125)])
    # b clipped to [60, 100]; its child g now starts at b's (clipped) end: dropped
    assert sections(r) == [("a", 0, 60), ("b", 60, 100)]
    assert r.clipped == {"b"} and r.excluded == {"g"}
    r = analyze_trace([S("a", "", 50, 100), S("b", "a", 20, 70)])
    assert sections(r) == [("b", 50, 70), ("a", 70, 100)]
    r = analyze_trace([S("a", "", 50, 100), S("b", "a", 20, 170)])
    assert sections(r) == [("b", 50, 100)]
    assert r.critical_time_ns == {"a": 0, "b": 50}
    assert r.self_time_ns == {"a": 0, "b": 150}


def test_consumer_child_of_producer_is_non_blocking():
    spans = [S("a", "", 0, 100), S("p", "a", 10, 20, PRODUCER), S("c", "p", 15, 95, CONSUMER)]
    r = analyze_trace(spans)
    assert sections(r) == [("a", 0, 10), ("p", 10, 20), ("a", 20, 100)]
    assert "c" in r.excluded
    # a consumer below a non-producer is blocking as usual
    r = analyze_trace([S("a", "", 0, 100, SERVER), S("c", "a", 15, 95, CONSUMER)])
    assert sections(r) == [("a", 0, 15), ("c", 15, 95), ("a", 95, 100)]


def test_tie_on_end_takes_the_earliest_start_then_the_smaller_id():
    r = analyze_trace([S("a", "", 0, 100), S("b", "a", 30, 80), S("c", "a", 10, 80)])
    assert sections(r) == [("a", 0, 10), ("c", 10, 80), ("a", 80, 100)]
    r = analyze_trace([S("a", "", 0, 100), S("y", "a", 10, 80), S("x", "a", 10, 80)])
    assert sections(r) == [("a", 0, 10), ("x", 10, 80), ("a", 80, 100)]


def test_first_pick_may_end_at_parent_end_later_picks_must_end_strictly_before_t():
    r = analyze_trace([S("a", "", 0, 100), S("b", "a", 50, 100), S("c", "a", 20, 50), S("d", "a", 10, 30)])
    # b ends at a's end: picked first; c ends exactly at t=50: not eligible; d (overlaps c) is
    assert sections(r) == [("a", 0, 10), ("d", 10, 30), ("a", 30, 50), ("b", 50, 100)]


def test_zero_length_sections_are_not_reported():
    r = analyze_trace([S("a", "", 0, 100), S("b", "a", 0, 100), S("z", "b", 40, 40)])
    # z is walked into but its section [40, 40] is empty; b's time is split around it (as in Jaeger UI)
    assert sections(r) == [("b", 0, 40), ("b", 40, 100)]
    r = analyze_trace([S("a", "", 7, 7)])
    assert sections(r) == []


def test_orphan_subtree_is_an_extra_root_after_the_main_root():
    spans = [S("o", "missing", 5, 50), S("oc", "o", 10, 20), S("a", "", 0, 100), S("b", "a", 10, 20)]
    r = analyze_trace(spans)
    assert [(x.root_span_id, x.orphan) for x in r.roots] == [("a", False), ("o", True)]
    assert sections(r, 1) == [("o", 5, 10), ("oc", 10, 20), ("o", 20, 50)]


def test_parent_cycles_and_duplicate_ids_do_not_break_the_analysis():
    r = analyze_trace([S("a", "", 0, 100), S("x", "y", 10, 50), S("y", "x", 20, 40)])
    assert [x.root_span_id for x in r.roots] == ["a", "x"]
    assert sections(r, 1) == [("x", 10, 20), ("y", 20, 40), ("x", 40, 50)]
    dup = [S("a", "", 0, 100), S("b", "a", 10, 20), S("b", "a", 30, 40)]
    assert analyze_trace(dup) == analyze_trace(dup[::-1])
    assert len(analyze_trace(dup).spans) == 2


def test_deep_trace_is_handled_without_recursion():
    n = 20_000
    spans = [S(f"{i:06d}", f"{i - 1:06d}" if i else "", i, 2 * n - i) for i in range(n)]
    r = analyze_trace(spans)
    assert sum(s.end_ns - s.start_ns for s in r.roots[0].sections) == 2 * n
    assert r.critical_time_ns == r.self_time_ns


def test_empty_trace():
    r = analyze_trace([])
    assert r.roots == [] and r.spans == {}


# ---------------------------------------------------------------- properties

KINDS = ("UNSPECIFIED", "SERVER", "CLIENT", PRODUCER, CONSUMER)


@st.composite
def traces(draw):
    n = draw(st.integers(1, 25))
    spans = []
    for i in range(n):
        start = draw(st.integers(0, 40))
        end = start + draw(st.integers(0, 40))
        choice = draw(st.integers(0, 9))
        if i == 0 or choice == 0:
            parent = ""
        elif choice == 1:
            parent = "zz"  # missing parent: orphan
        else:
            parent = f"s{draw(st.integers(0, i - 1)):02d}"
        spans.append(Span(f"s{i:02d}", parent, f"svc{i % 3}", "op", start, end, draw(st.sampled_from(KINDS))))
    return spans


def reference(spans):
    """Direct recursive transcription of the issue's/Jaeger UI's rules, for small traces."""
    by_id = {s.span_id: s for s in spans}
    kids = {}
    for s in spans:
        if s.parent_span_id in by_id:
            kids.setdefault(s.parent_span_id, []).append(s.span_id)
    roots = sorted(
        (s for s in spans if s.parent_span_id not in by_id),
        key=lambda s: (s.parent_span_id != "", s.start_ns, -s.end_ns, s.span_id),
    )
    out = []
    for root in roots:
        iv = {root.span_id: (root.start_ns, root.end_ns)}
        kept = {}

        def clean(sid):
            ps, pe = iv[sid]
            for c in kids.get(sid, []):
                cs, ce = by_id[c].start_ns, by_id[c].end_ns
                if cs >= pe or ce <= ps or (by_id[sid].kind == PRODUCER and by_id[c].kind == CONSUMER):
                    continue
                iv[c] = (max(cs, ps), min(ce, pe))
                kept.setdefault(sid, []).append(c)
                clean(c)

        clean(root.span_id)
        secs = []

        def walk(sid):
            t = iv[sid][1]
            first = True
            while True:
                cands = [c for c in kept.get(sid, []) if (iv[c][1] <= t if first else iv[c][1] < t)]
                if not cands:
                    secs.append((sid, iv[sid][0], t))
                    return
                c = min(cands, key=lambda c: (-iv[c][1], iv[c][0], by_id[c].start_ns, c))
                secs.append((sid, iv[c][1], t))
                walk(c)
                t = iv[c][0]
                first = False

        walk(root.span_id)
        out.append([x for x in reversed(secs) if x[1] != x[2]])
    return out


@settings(max_examples=400, deadline=None)
@given(traces())
def test_sections_partition_each_root_interval(spans):
    r = analyze_trace(spans)
    for root in r.roots:
        span = r.spans[root.root_span_id]
        t = span.start_ns
        for sec in root.sections:
            assert sec.start_ns == t and sec.end_ns > sec.start_ns
            t = sec.end_ns
        assert t == max(span.start_ns, span.end_ns)


@settings(max_examples=400, deadline=None)
@given(traces())
def test_critical_time_at_least_self_time_where_no_clipping(spans):
    r = analyze_trace(spans)
    for sid, crit in r.critical_time_ns.items():
        if crit > 0 and sid not in r.clipped:
            assert crit >= r.self_time_ns[sid]
    assert all(v >= 0 for v in r.self_time_ns.values())


@settings(max_examples=300, deadline=None)
@given(traces(), st.randoms(use_true_random=False))
def test_input_order_changes_nothing(spans, rnd):
    shuffled = list(spans)
    rnd.shuffle(shuffled)
    assert analyze_trace(shuffled) == analyze_trace(spans)


@settings(max_examples=400, deadline=None)
@given(traces())
def test_agrees_with_recursive_reference(spans):
    # the reference does not break cycles: only compare traces without duplicate IDs (none here)
    r = analyze_trace(spans)
    expected = reference(spans)
    assert [[tuple(s) for s in root.sections] for root in r.roots] == expected


def test_generated_large_trace_partition():
    rng = random.Random(1)
    spans = [S("r", "", 0, 10**9)]
    for i in range(3000):
        p = spans[rng.randrange(len(spans))]
        st_ = rng.randrange(p.start_ns, p.end_ns + 1)
        spans.append(S(f"n{i}", p.span_id, st_, st_ + rng.randrange(max(1, (p.end_ns - p.start_ns)))))
    r = analyze_trace(spans)
    assert sum(s.end_ns - s.start_ns for s in r.roots[0].sections) == 10**9
    assert sum(r.critical_time_ns.values()) == 10**9
