"""The chain registry as a chain catalog, and the registry's review features.

``POST /api/v1/chains/validate`` checks a definition without storing it; ``GET
/api/v1/chains/{chain}/history`` lists its versions with what changed.

``GET /api/v1/catalog`` — what services started with
``CHAINOTEL_CATALOG_URL`` poll (:mod:`chainotel.catalog.remote`) so that a registry change reaches
their tagging without a restart.

The answer is ``{"chains": [...]}``, each chain as a catalog file writes it (``None`` fields left
out, edges as ``"caller -> callee"``), in matching order (:func:`registered_catalog`). Content
negotiation: ``Accept: application/yaml`` (or ``application/x-yaml``, ``text/yaml``) → the catalog
YAML that ``chainotel catalog validate`` accepts; anything else → JSON. A strong ``ETag`` (a
SHA-256 of the canonical JSON of the chains and the form served) comes with every answer;
``If-None-Match`` with the current tag answers ``304 Not Modified`` without a body (RFC 9110 §13.1.2).
"""

from __future__ import annotations

import hashlib
import json
import time

import yaml
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import ValidationError

from chainotel.catalog import Catalog, ChainDefinition
from chainotel_analyzer.api.deps import get_reader, get_registry
from chainotel_analyzer.api.errors import error_responses
from chainotel_analyzer.api.paths import ChainPath
from chainotel_analyzer.api.discovery_models import CatalogResponse, HistoryResponse, ValidateResponse
from chainotel_analyzer.store.interfaces import ChainRegistry, TraceReader

router = APIRouter(prefix="/api/v1", tags=["catalog"])

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def is_fallback(definition: dict) -> bool:
    """Whether every match rule of a stored definition is a catch-all: only ``service`` (or a ``route``
    of ``*`` / ``/*``) — a chain for "any other request" of a service, such as the built-in B1."""
    rules = [{k: v for k, v in r.items() if v is not None} for r in definition.get("match") or []]
    return bool(rules) and all(set(r) <= {"service", "route"} and r.get("route") in (None, "*", "/*") for r in rules)


def _id_key(chain: str) -> tuple[str, int]:
    return chain[:1], int(chain[1:]) if chain[1:].isdigit() else 0


def registered_catalog(registry: ChainRegistry) -> Catalog:
    """The registry's current definitions as a :class:`~chainotel.catalog.Catalog` in matching
    order — by ID (``B9`` before ``B10``), catch-all chains (:func:`is_fallback`) last, which is the
    built-in catalog's own order — so the first matching rule is the one a catalog file would pick.
    A stored definition that no longer validates is left out."""
    records = sorted(registry.list(), key=lambda r: (is_fallback(r["definition"]), _id_key(r["id"])))
    chains = []
    for record in records:
        try:
            chains.append(ChainDefinition.model_validate(record["definition"]))
        except ValidationError:
            continue
    return Catalog(chains, source="<registry>")


def catalog_document(catalog: Catalog) -> dict:
    """``{"chains": [...]}``: each chain as a catalog file writes it (no ``None`` fields, edges as
    ``"caller -> callee"``)."""
    chains = []
    for chain in catalog.chains:
        doc = chain.model_dump(mode="json", exclude_none=True)
        doc["edges"] = [str(e) for e in chain.edges]
        chains.append(doc)
    return {"chains": chains}


def etag_of(document: dict, form: str = "json") -> str:
    """A strong entity tag (quoted) of ``document`` served as ``form`` (``json``/``yaml``): the first 32
    hex digits of the SHA-256 of its canonical JSON, then the form — a strong validator differs
    between representations (RFC 9110 §8.8.1)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return f'"{hashlib.sha256(text.encode()).hexdigest()[:32]}-{form}"'


def _wants_yaml(accept: str) -> bool:
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return any(t in YAML_TYPES for t in types)


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in tags or f"W/{etag}" in tags


@router.get("/catalog", response_model=CatalogResponse,
            responses={200: {"content": {"application/yaml": {}}}, 304: {"description": "Not Modified"}})  # fmt: skip
def catalog(request: Request, registry: ChainRegistry = Depends(get_registry)):
    """The registry as a chain catalog, JSON or YAML by ``Accept``, with an ``ETag``; 304 when
    ``If-None-Match`` names the current one."""
    document = catalog_document(registered_catalog(registry))
    as_yaml = _wants_yaml(request.headers.get("accept", ""))
    etag = etag_of(document, "yaml" if as_yaml else "json")
    headers = {"ETag": etag, "Cache-Control": "no-cache", "Vary": "Accept"}
    if _etag_matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    if as_yaml:
        text = "# chain catalog served by chainotel-analyzer from its chain registry\n"
        text += yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)
        return Response(text, media_type="application/yaml", headers=headers)
    return Response(json.dumps(document), media_type="application/json", headers=headers)


# --- registry features: validate without storing, history ----------------------------------------

OBSERVED_DAYS = 7
"""``POST /api/v1/chains/validate`` warns about services without spans in this many days."""


def _field(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@router.post("/chains/validate", response_model=ValidateResponse)
def validate_chain(body: dict, registry: ChainRegistry = Depends(get_registry), reader: TraceReader = Depends(get_reader)):
    """Check a chain definition without storing it: ``errors`` (what ``POST /api/v1/chains`` would
    refuse, each naming its field), ``warnings`` (the ID exists already; expected services without
    spans in the last 7 days; expected services no edge reaches when edges are declared) and
    ``suggestions`` (split a chain of more than 10 services)."""
    try:
        definition = ChainDefinition.model_validate(body)
    except ValidationError as exc:
        errors = [{"field": _field(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        return {"valid": False, "errors": errors, "warnings": [], "suggestions": []}
    warnings = []
    existing = registry.get(definition.id)
    if existing is not None:
        warnings.append({"field": "id", "message": f"chain {definition.id} exists (version {existing['version']}): "
                         f"POST /api/v1/chains answers 409; use PUT /api/v1/chains/{definition.id} to change it"})  # fmt: skip
    until_ns = time.time_ns()
    since_ns = until_ns - OBSERVED_DAYS * 86400 * 10**9
    seen = {r["service"] for r in reader.service_buckets(since_ns, until_ns, OBSERVED_DAYS * 86400, include_synthetic=True)}
    for i, service in enumerate(definition.expected_services):
        if service not in seen:
            warnings.append({"field": f"expected_services[{i}]",
                             "message": f"{service} has sent no spans in the last {OBSERVED_DAYS} days"})  # fmt: skip
    if definition.edges and len(definition.expected_services) > 1:
        linked = {n for e in definition.edges for n in (e.caller, e.callee)}
        for i, service in enumerate(definition.expected_services):
            if service not in linked:
                warnings.append({"field": f"expected_services[{i}]", "message": f"{service} is in no edge"})
    suggestions = [{"field": s.split(":", 1)[0], "message": s.split(":", 1)[1].strip()} for s in definition.suggestions()]
    return {"valid": True, "errors": [], "warnings": warnings, "suggestions": suggestions}


def _changes(previous: dict | None, current: dict, deleted: bool) -> list[str]:
    if previous is None:
        return ["created"]
    if deleted:
        return ["deleted"]
    keys = sorted(set(previous) | set(current))
    return [k for k in keys if previous.get(k) != current.get(k)] or ["no change"]


@router.get("/chains/{chain}/history", response_model=HistoryResponse, responses=error_responses(404))
def chain_history(chain: ChainPath, registry: ChainRegistry = Depends(get_registry)):
    """Every stored version of ``chain``, oldest first, with when, what changed (the top-level fields
    that differ from the version before, ``created``, ``deleted``) and who (``changed_by``: the name of
    the caller's token entry for an API write, ``unauthenticated`` when authentication is off, ``catalog``
    for a seed, ``""`` for API writes stored before the analyzer recorded callers). 404
    when the chain never existed. The registry table may compact old versions away in background
    merges (see :class:`~chainotel_analyzer.store.interfaces.ChainRegistry`)."""
    versions = registry.history(chain)
    if not versions:
        raise HTTPException(404, f"unknown chain {chain!r}")
    out = []
    previous = None
    for v in versions:
        out.append({"version": v["version"], "updated_at": v["updated_at"], "source": v["source"],
                    "changed_by": v["changed_by"] or ("catalog" if v["source"] == "catalog" else ""),
                    "is_deleted": v["is_deleted"], "changes": _changes(previous, v["definition"], v["is_deleted"]),
                    "definition": v["definition"]})  # fmt: skip
        previous = v["definition"]
    return {"chain": chain, "versions": out}
