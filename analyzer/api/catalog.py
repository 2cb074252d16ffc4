"""The chain registry as a chain catalog: ``GET /api/v1/catalog`` — what services started with
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

import yaml
from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError

from chainotel.catalog import Catalog, ChainDefinition
from chainotel_analyzer.api.deps import get_registry
from chainotel_analyzer.api.discovery_models import CatalogResponse
from chainotel_analyzer.store.interfaces import ChainRegistry

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
