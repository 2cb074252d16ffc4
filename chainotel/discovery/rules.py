"""Rules that discovery from traffic (the analyzer) and from code (:mod:`chainotel.discovery.code`)
share: the category guess, the suggested SLA rounding and free chain IDs. Pure, stdlib only."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator

__all__ = ["acyclic", "free_ids", "guess_category", "letter", "round_up_ms"]

_LETTERS = {"data_flow": "A", "service_communication": "B", "user_experience": "C", "ai_ml_processing": "D",
            "infrastructure": "E"}  # fmt: skip

_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("ai_ml_processing", re.compile(r"infer|predict|model|train|embed|llm|\bai\b|/ai/|recommend|classif|score"),
     "the entry names AI/ML work ({word})"),
    ("infrastructure", re.compile(r"health|metrics|ready|readiness|live|liveness|status|ping|heartbeat|probe"),
     "the entry is an operational endpoint ({word})"),
    ("data_flow", re.compile(r"ingest|import|export|etl|sync|pipeline|feed|upload|batch|stream|market-data|replicat"),
     "the entry moves data ({word})"),
    ("user_experience", re.compile(r"dashboard|page|ui\b|frontend|login|session|cart|checkout|search|browse|home"),
     "the entry serves a user-facing page or action ({word})"),
)  # fmt: skip


def letter(category: str) -> str:
    """The chain-ID letter of a category value (``"data_flow"`` → ``"A"``)."""
    return _LETTERS[category]


def guess_category(route: str, span_name: str = "", websocket: bool = False) -> tuple[str, str]:
    """``(category, reason)`` of a chain entering at ``route`` / ``span_name``, by the first rule that
    applies: a WebSocket entry → ``user_experience``; words in the route or span name →
    ``ai_ml_processing`` (inference, model, training…), ``infrastructure`` (health, metrics…),
    ``data_flow`` (ingest, stream…), ``user_experience`` (dashboard, cart…); else
    ``service_communication``.

    >>> guess_category("/v1/inference")
    ('ai_ml_processing', 'the entry names AI/ML work (infer)')
    """
    text = f"{route} {span_name}".lower()
    if websocket or "websocket" in text or re.search(r"(^|/| )ws(/|$| )", text):
        return "user_experience", "WebSocket entry: a client holds a live connection"
    for category, pattern, reason in _RULES:
        m = pattern.search(text)
        if m:
            return category, reason.format(word=m.group(0).strip("/ "))
    return "service_communication", "no specific marker: a request served across services"


def round_up_ms(value_ms: float) -> float:
    """``value_ms`` rounded up to two significant digits, at least 1 ms (a suggested SLA from a p99).

    >>> [round_up_ms(v) for v in (0.2, 3.21, 237.4, 1001, 12345)]
    [1.0, 3.3, 240.0, 1100.0, 13000.0]
    """
    if value_ms <= 1:
        return 1.0
    scale = 10 ** (math.floor(math.log10(value_ms)) - 1)
    return float(round(math.ceil(round(value_ms / scale, 9)) * scale, 6))


def free_ids(taken: Iterable[str]) -> dict[str, Iterator[str]]:
    """Per category letter, an iterator of chain IDs not in ``taken`` (``A1``, ``A2``… lowest first)."""
    used = set(taken)

    def gen(prefix: str) -> Iterator[str]:
        n = 0
        while True:
            n += 1
            if f"{prefix}{n}" not in used:
                used.add(f"{prefix}{n}")
                yield f"{prefix}{n}"

    return {prefix: gen(prefix) for prefix in "ABCDE"}


def acyclic(edges: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """``edges`` in order, skipping self-loops and any edge that would close a cycle with those kept
    (a chain's call graph must be acyclic).

    >>> acyclic([("a", "b"), ("b", "a"), ("b", "c"), ("c", "c")])
    [('a', 'b'), ('b', 'c')]
    """
    kept: list[tuple[str, str]] = []
    graph: dict[str, set[str]] = {}

    def reaches(a: str, b: str) -> bool:
        stack, seen = [a], set()
        while stack:
            node = stack.pop()
            if node == b:
                return True
            if node not in seen:
                seen.add(node)
                stack.extend(graph.get(node, ()))
        return False

    for caller, callee in edges:
        if caller != callee and not reaches(callee, caller):
            kept.append((caller, callee))
            graph.setdefault(caller, set()).add(callee)
    return kept
