"""A validated set of chain definitions and the rule matching that selects a chain for a span."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chainotel.catalog.models import ChainDefinition, MatchRule

__all__ = ["Catalog", "CatalogError", "CatalogProblem", "duplicate_id_problems"]


@dataclass(frozen=True)
class CatalogProblem:
    """One problem in a catalog: where (file, chain, field) and what.

    ``chain`` is the chain's ID when it has a usable one, else its position (``chains[3]``);
    ``field`` is a dotted path inside the chain (``match[0].method``), empty for file-level problems.
    """

    file: str
    chain: str
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.chain:
            where += f": chain {self.chain}"
        if self.field:
            where += f": field {self.field}"
        return f"{where}: {self.message}"


class CatalogError(ValueError):
    """An invalid catalog. ``problems`` lists every problem found; the message has one per line,
    each naming the file, the chain and the field (see :class:`CatalogProblem`)."""

    def __init__(self, problems: Sequence[CatalogProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def duplicate_id_problems(ids: Sequence[object], source: str) -> list[CatalogProblem]:
    """One problem per repeated chain ID in ``ids`` (catalog order), naming both positions."""
    first: dict[object, int] = {}
    problems = []
    for i, chain_id in enumerate(ids):
        if not isinstance(chain_id, str) or not chain_id:
            continue
        if chain_id in first:
            problems.append(
                CatalogProblem(
                    source, f"{chain_id} (chains[{i}])", "id",
                    f"duplicate chain ID {chain_id} (first used by chains[{first[chain_id]}]); chain IDs must be unique",
                )
            )
        else:
            first[chain_id] = i
    return problems


_METHOD_KEYS = ("http.request.method", "http.method")
_PATH_KEYS = ("url.path", "http.target")


class Catalog:
    """Chain definitions in catalog order, with lookup by ID and rule matching.

    Args:
        chains: the definitions; their order is the matching order.
        source: where they came from (a file path, ``"<built-in>"``), used in messages.

    Raises:
        CatalogError: two chains share an ID.

    Example::

        >>> cat = default_catalog()
        >>> cat.get("B3").name
        'Trading API request'
        >>> cat.match(service="api-gateway", span_name="POST /api/v1/trading/orders",
        ...           attributes={"http.route": "/api/v1/trading/orders", "http.request.method": "POST"}).id
        'B3'
    """

    def __init__(self, chains: Sequence[ChainDefinition], source: str = "<memory>"):
        self.source = source
        self.chains: list[ChainDefinition] = list(chains)
        problems = duplicate_id_problems([c.id for c in self.chains], source)
        if problems:
            raise CatalogError(problems)
        self._by_id: dict[str, ChainDefinition] = {c.id: c for c in self.chains}
        self._rules_by_service: dict[str | None, tuple[tuple[MatchRule, ChainDefinition], ...]] = {}

    def __len__(self) -> int:
        return len(self.chains)

    def get(self, chain_id: str) -> ChainDefinition | None:
        """The chain with this ID, or ``None``."""
        return self._by_id.get(chain_id)

    def suggestions(self) -> list[CatalogProblem]:
        """Advice that does not make the catalog invalid (e.g. chains with more than 10 services)."""
        return [
            CatalogProblem(self.source, c.id, s.split(":", 1)[0], s.split(":", 1)[1].strip())
            for c in self.chains
            for s in c.suggestions()
        ]

    def rules_for_service(self, service: str | None) -> tuple[tuple[MatchRule, ChainDefinition], ...]:
        """The ``(rule, chain)`` pairs, in matching order, whose ``service`` admits ``service``; the
        rules of chains with ``enabled: false`` are left out.

        Cached per service name, so a span processor pays the service filter once per process.
        """
        rules = self._rules_by_service.get(service)
        if rules is None:
            rules = tuple(
                (r, c) for c in self.chains if c.enabled for r in c.match if r.matches_service(service)
            )
            self._rules_by_service[service] = rules
        return rules

    def match(
        self, *, service: str | None, span_name: str, attributes: Mapping[str, Any] | None = None
    ) -> ChainDefinition | None:
        """The chain of the first rule (catalog order, then rule order) that matches the span.

        Args:
            service: the span's ``service.name``.
            span_name: the span name.
            attributes: the span's attributes; ``http.route``, ``url.path``/``http.target`` and
                ``http.request.method``/``http.method`` are read (see :class:`MatchRule`).

        Returns:
            The matching chain definition, or ``None`` when no rule matches.
        """
        return self.match_rules(self.rules_for_service(service), span_name, attributes or {})

    @staticmethod
    def match_rules(
        rules: tuple[tuple[MatchRule, ChainDefinition], ...], span_name: str, attributes: Mapping[str, Any]
    ) -> ChainDefinition | None:
        """:meth:`match` over rules already filtered by :meth:`rules_for_service`."""
        if not rules:
            return None
        return Catalog.match_key(rules, Catalog.span_key(span_name, attributes))

    @staticmethod
    def span_key(span_name: str, attributes: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
        """``(span_name, route, method)``: all a rule looks at besides the service (see
        :class:`MatchRule` for the attribute fallbacks). Low-cardinality for server spans, so
        callers may cache match results by it."""
        route = attributes.get("http.route")
        if route is None:
            for key in _PATH_KEYS:
                path = attributes.get(key)
                if path is not None:
                    route = str(path).split("?", 1)[0]
                    break
        method = None
        for key in _METHOD_KEYS:
            method = attributes.get(key)
            if method is not None:
                method = str(method).upper()
                break
        return span_name, route, method

    @staticmethod
    def match_key(
        rules: tuple[tuple[MatchRule, ChainDefinition], ...], key: tuple[str, str | None, str | None]
    ) -> ChainDefinition | None:
        """The chain of the first rule in ``rules`` matching ``key`` (from :meth:`span_key`)."""
        span_name, route, method = key
        for rule, chain in rules:
            if rule.matches(span_name, route, method):
                return chain
        return None
