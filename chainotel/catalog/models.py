"""Pydantic models of a chain definition: category, match rules, call graph, SLA.

``ChainDefinition.model_validate(dict)`` validates one chain on its own (the analyzer's
``POST/PUT /api/v1/chains`` relies on it and answers 422 with pydantic's error list). Rules that
need the whole catalog (unique IDs) live in :mod:`chainotel.catalog.catalog`.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

__all__ = ["CHAIN_ID_PATTERN", "MAX_SERVICES_BEFORE_SPLIT", "Category", "ChainDefinition", "Edge", "MatchRule"]

CHAIN_ID_PATTERN = r"^[A-E][1-9][0-9]*$"
"""A chain ID: the category letter, then a number without leading zero (``A1``, ``B12``)."""

MAX_SERVICES_BEFORE_SPLIT = 10
"""A chain with more expected services than this gets a suggestion to split it."""


class Category(str, enum.Enum):
    """The five chain categories; the value is the name used in YAML and in ``chain.category``.

    Each category owns one ID letter: A ``data_flow``, B ``service_communication``,
    C ``user_experience``, D ``ai_ml_processing``, E ``infrastructure``.
    """

    data_flow = "data_flow"
    service_communication = "service_communication"
    user_experience = "user_experience"
    ai_ml_processing = "ai_ml_processing"
    infrastructure = "infrastructure"

    @property
    def letter(self) -> str:
        """The chain-ID letter of this category (``"A"`` … ``"E"``)."""
        return _LETTERS[self]

    @classmethod
    def from_letter(cls, letter: str) -> Category:
        """The category whose chain IDs start with ``letter``; ``KeyError`` for another letter."""
        return _BY_LETTER[letter]


_LETTERS = dict(zip(Category, "ABCDE"))
_BY_LETTER = {v: k for k, v in _LETTERS.items()}


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


class MatchRule(BaseModel):
    """One way to recognise the entry span of a chain; every key given must match (AND).

    Values are shell-style globs (``*``, ``?``, ``[...]``; ``*`` also matches ``/``), compared
    case-sensitively, except ``method`` which is compared upper-cased.

    - ``service``: the span's ``service.name`` resource attribute.
    - ``route``: the span's ``http.route``; when the span has none (e.g. a 404), ``url.path``
      (or the older ``http.target`` without its query string).
    - ``method``: ``http.request.method`` (or the older ``http.method``).
    - ``span_name``: the span name, e.g. ``"trading.decision*"`` for a manual span.

    Example: ``{service: api-gateway, route: "/api/v1/trading/*", method: POST}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str | None = Field(default=None, min_length=1)
    route: str | None = Field(default=None, min_length=1)
    method: str | None = Field(default=None, min_length=1)
    span_name: str | None = Field(default=None, min_length=1)

    _checks: tuple[tuple[str, re.Pattern[str]], ...] = PrivateAttr(default=())

    @field_validator("method")
    @classmethod
    def _upper_method(cls, value: str | None) -> str | None:
        return value.upper() if value is not None else None

    @model_validator(mode="after")
    def _at_least_one_key(self) -> MatchRule:
        if self.service is None and self.route is None and self.method is None and self.span_name is None:
            raise PydanticCustomError(
                "empty_match_rule", "a match rule needs at least one of service, route, method, span_name"
            )
        return self

    def model_post_init(self, __context: Any) -> None:
        self._checks = tuple(
            (key, _glob(value))
            for key, value in (("route", self.route), ("method", self.method), ("span_name", self.span_name))
            if value is not None
        )

    def matches_service(self, service: str | None) -> bool:
        """Whether the rule's ``service`` glob admits ``service`` (a rule without one admits all)."""
        return self.service is None or (service is not None and fnmatch.fnmatchcase(service, self.service))

    def matches(self, span_name: str, route: str | None, method: str | None) -> bool:
        """Whether the non-service keys match; the service was checked with :meth:`matches_service`.

        Args:
            span_name: the span name.
            route: ``http.route`` (or the path fallback), ``None`` when the span has none.
            method: the HTTP method, ``None`` when the span has none.
        """
        for key, pattern in self._checks:
            value = span_name if key == "span_name" else route if key == "route" else method
            if value is None or pattern.match(value) is None:
                return False
        return True


class Edge(BaseModel):
    """A call in the chain's expected service graph: ``caller`` calls ``callee``.

    In YAML an edge is written ``"caller -> callee"``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    caller: str = Field(min_length=1)
    callee: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _from_arrow(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split("->")]
            if len(parts) != 2 or not all(parts):
                raise PydanticCustomError(
                    "edge_format", "an edge is written 'caller -> callee', got {value}", {"value": repr(value)}
                )
            return {"caller": parts[0], "callee": parts[1]}
        return value

    def __str__(self) -> str:
        return f"{self.caller} -> {self.callee}"


class ChainDefinition(BaseModel):
    """A chain: a named business flow, recognised at its entry span, with an SLA.

    Fields (YAML keys):

    - ``id``: ``^[A-E][1-9][0-9]*$``; the letter must be the category's letter (A data_flow,
      B service_communication, C user_experience, D ai_ml_processing, E infrastructure).
    - ``name``, ``description``: human-readable text.
    - ``category``: one of :class:`Category`'s values.
    - ``match``: list of :class:`MatchRule`; the first rule (in catalog order) that matches the
      entry span selects the chain. An empty list means the chain is never selected by matching
      (it can still arrive in baggage).
    - ``expected_services``: the services (``service.name``) the chain normally touches — the
      nodes of its service graph.
    - ``edges``: optional calls between those services (``"caller -> callee"``); every node must be
      in ``expected_services`` and the graph must be acyclic.
    - ``max_duration_ms``: the SLA, end-to-end duration of the chain's trace in **milliseconds**.
    - ``enabled``: ``false`` keeps the definition but tags no span with it — its rules are not
      matched and the chain arriving in baggage is not applied (the per-chain rollout switch).

    Raises:
        pydantic.ValidationError: from ``model_validate``; each error's ``loc`` names the field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=CHAIN_ID_PATTERN)
    name: str = Field(min_length=1)
    category: Category
    description: str = ""
    match: list[MatchRule] = Field(default_factory=list)
    expected_services: list[str] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    max_duration_ms: float = Field(gt=0)
    enabled: bool = True

    @field_validator("category")
    @classmethod
    def _letter_is_category(cls, value: Category, info: ValidationInfo) -> Category:
        chain_id = info.data.get("id")
        if chain_id and chain_id[0] != value.letter:
            raise PydanticCustomError(
                "category_letter",
                "chain {chain_id} has letter {letter} but category {category} (letter {expected}); "
                "use category {wanted} or an ID starting with {expected}",
                {
                    "chain_id": chain_id,
                    "letter": chain_id[0],
                    "category": value.value,
                    "expected": value.letter,
                    "wanted": Category.from_letter(chain_id[0]).value,
                },
            )
        return value

    @field_validator("expected_services")
    @classmethod
    def _unique_services(cls, value: list[str]) -> list[str]:
        seen = set()
        for service in value:
            if not service:
                raise PydanticCustomError("empty_service", "a service name must not be empty")
            if service in seen:
                raise PydanticCustomError("duplicate_service", "service {service} is listed twice", {"service": repr(service)})
            seen.add(service)
        return value

    @field_validator("edges")
    @classmethod
    def _edges_form_dag(cls, value: list[Edge], info: ValidationInfo) -> list[Edge]:
        services = info.data.get("expected_services")
        if services is None:  # expected_services itself was invalid; reported there
            return value
        known = set(services)
        for i, edge in enumerate(value):
            for node in (edge.caller, edge.callee):
                if node not in known:
                    raise PydanticCustomError(
                        "unknown_node",
                        "edges[{index}] ({edge}) names {node}, which is not in expected_services",
                        {"index": i, "edge": str(edge), "node": repr(node)},
                    )
        cycle = _find_cycle(value)
        if cycle:
            raise PydanticCustomError(
                "cycle", "the call graph has a cycle: {cycle}", {"cycle": " -> ".join(cycle)}
            )
        return value

    def suggestions(self) -> list[str]:
        """Advice that does not make the chain invalid (e.g. more than 10 services: split it)."""
        if len(self.expected_services) > MAX_SERVICES_BEFORE_SPLIT:
            return [
                f"expected_services: {len(self.expected_services)} services (more than "
                f"{MAX_SERVICES_BEFORE_SPLIT}); consider splitting the chain into smaller chains"
            ]
        return []


def _find_cycle(edges: list[Edge]) -> list[str] | None:
    """A cycle of the directed graph as a node list ``[a, b, …, a]``, or ``None`` (iterative DFS)."""
    graph: dict[str, list[str]] = {}
    for edge in edges:
        graph.setdefault(edge.caller, []).append(edge.callee)
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done
    for root in graph:
        if state.get(root):
            continue
        path = [root]
        iters = [iter(graph.get(root, ()))]
        state[root] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(graph.get(nxt, ())))
    return None
