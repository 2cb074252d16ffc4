"""Pydantic models of a chain definition: category, match rules, call graph, SLA.

``ChainDefinition.model_validate(dict)`` validates one chain on its own (the analyzer's
``POST/PUT /api/v1/chains`` relies on it and answers 422 with pydantic's error list). Rules that
need the whole catalog (unique IDs) live in :mod:`chainotel.catalog.catalog`.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, PrivateAttr, ValidationInfo, field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

__all__ = [
    "CHAIN_ID_PATTERN", "DEFAULT_ALERT_RULES", "MAX_SERVICES_BEFORE_SPLIT", "AlertRules", "Category", "ChainDefinition",
    "Edge", "MatchRule", "Probe", "parse_duration_s",
]

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

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

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

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

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


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration_s(value: Any) -> Any:
    """A duration as Prometheus writes it (``500ms``, ``30s``, ``5m``, ``2h``, ``1d``) or a number of
    **seconds**, in seconds (``float``). Other values are returned unchanged for pydantic to reject."""
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m is None:
            raise PydanticCustomError(
                "duration", "a duration is a number with a unit ms, s, m, h or d (e.g. 30s, 5m), got {value}",
                {"value": repr(value)},
            )
        return float(m.group(1)) * _UNIT_S[m.group(2)]
    return value


def _format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s" if seconds >= 1 or seconds == 0 else f"{seconds * 1000:g}ms"


DurationS = Annotated[float, BeforeValidator(parse_duration_s), PlainSerializer(_format_duration, return_type=str)]
"""Seconds; written in YAML/JSON as a Prometheus-style duration (``30s``, ``5m``)."""


class AlertRules(BaseModel):
    """When a chain alerts (the ``alerts:`` key of a chain); keys left out take the defaults below,
    ``null`` switches a condition off. Durations are written ``30s``, ``5m``, ``1h`` (or seconds).

    - ``window`` (default ``5m``): the figures are computed over the traces that started in the last window;
    - ``for`` (default ``2m``): a condition must hold this long (pending) before the alert fires —
      Prometheus' ``for``;
    - ``keep_firing_for`` (default ``1m``): a firing alert resolves only after its condition has been
      false this long (no flapping) — Prometheus' ``keep_firing_for``;
    - ``min_traces`` (default 1): rate conditions need at least this many traces in the window;
    - ``sla_compliance_below`` (default 0.95): share of traces within ``max_duration_ms``;
    - ``error_rate_above`` (default 0.05): share of traces with an error span;
    - ``p95_above_ms`` (default off): p95 of trace durations in **ms**;
    - ``no_traffic_for`` (default off): no trace of the chain started for this long;
    - ``topology_drift`` (default ``false``): ``true`` alerts when the window's spans of the chain come from
      a service not in ``expected_services`` or miss one of them (needs ``expected_services``);
    - ``severity`` (default ``warning``): the ``severity`` label sent to Alertmanager.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True, strict=True)

    window_s: DurationS = Field(300.0, alias="window", gt=0)
    for_s: DurationS = Field(120.0, alias="for", ge=0)
    keep_firing_for_s: DurationS = Field(60.0, alias="keep_firing_for", ge=0)
    min_traces: int = Field(1, ge=1, strict=True)  # strict: 2.5 or true is no count
    sla_compliance_below: float | None = Field(0.95, gt=0, le=1)
    error_rate_above: float | None = Field(0.05, ge=0, lt=1)
    p95_above_ms: float | None = Field(None, gt=0)
    no_traffic_for_s: DurationS | None = Field(None, alias="no_traffic_for", gt=0)
    topology_drift: bool = False
    severity: Literal["critical", "warning", "info"] = "warning"


DEFAULT_ALERT_RULES = AlertRules()
"""The rules of a chain without ``alerts:``: SLA compliance below 95 % or more than 5 % failing
traces over 5 minutes, for 2 minutes."""


class Probe(BaseModel):
    """A synthetic request sent on an interval to a chain's entry (the ``probe:`` key of a chain).

    - ``url``: ``http(s)://`` (an HTTP request) or ``ws(s)://`` (connect, send, expect a message);
    - ``method`` (default ``GET``), ``headers``, ``json`` (the request body; for WebSocket the message sent,
      as JSON unless it is a string);
    - ``expect_status`` (default ``[200]``): HTTP statuses that count as an answer;
    - ``expect_message``: for WebSocket, text the first message received must contain (default: any message);
    - ``interval`` (default ``30s``), ``timeout`` (default ``5s``, at most the interval).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True, strict=True)

    url: str = Field(pattern=r"^(https?|wss?)://[^\s/]+\S*$")
    method: str = Field("GET", pattern=r"^[A-Za-z]+$")
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(None, alias="json")
    expect_status: list[Annotated[int, Field(ge=100, le=599, strict=True)]] = Field(default_factory=lambda: [200], min_length=1)
    expect_message: str | None = None
    interval_s: DurationS = Field(30.0, alias="interval", gt=0)
    timeout_s: DurationS = Field(5.0, alias="timeout", gt=0)

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> Probe:
        if self.timeout_s > self.interval_s:
            raise PydanticCustomError(
                "probe_timeout", "timeout ({timeout}) must not exceed interval ({interval})",
                {"timeout": _format_duration(self.timeout_s), "interval": _format_duration(self.interval_s)},
            )
        return self

    @property
    def is_websocket(self) -> bool:
        """True for a ``ws://``/``wss://`` probe."""
        return self.url.startswith(("ws://", "wss://"))


def _is_none(value: Any) -> bool:
    return value is None


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
    - ``alerts``: optional :class:`AlertRules` (absent: :data:`DEFAULT_ALERT_RULES`, see :attr:`alert_rules`).
    - ``probe``: optional synthetic :class:`Probe` of the chain's entry.
    - ``enabled``: ``false`` keeps the definition but tags no span with it — its rules are not
      matched and the chain arriving in baggage is not applied (the per-chain rollout switch).

    Raises:
        pydantic.ValidationError: from ``model_validate``; each error's ``loc`` names the field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str = Field(pattern=CHAIN_ID_PATTERN)
    name: str = Field(min_length=1)
    category: Category = Field(strict=False)  # its value, as YAML and JSON write it
    description: str = ""
    match: list[MatchRule] = Field(default_factory=list)
    expected_services: list[str] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    max_duration_ms: float = Field(gt=0)
    alerts: AlertRules | None = Field(None, exclude_if=_is_none)
    probe: Probe | None = Field(None, exclude_if=_is_none)
    enabled: bool = Field(True, strict=True)  # strict: 0 or "no" is not a switch

    @property
    def alert_rules(self) -> AlertRules:
        """The chain's ``alerts``, or :data:`DEFAULT_ALERT_RULES` when it has none."""
        return self.alerts if self.alerts is not None else DEFAULT_ALERT_RULES

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

    @model_validator(mode="after")
    def _drift_needs_services(self) -> ChainDefinition:
        if self.alerts is not None and self.alerts.topology_drift and not self.expected_services:
            raise PydanticCustomError(
                "drift_without_services",
                "alerts.topology_drift compares the traffic with expected_services, which is empty; "
                "list the chain's services or switch topology_drift off",
            )
        return self

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
