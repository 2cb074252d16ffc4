"""Reading a chain catalog from YAML, with errors that name the file, the chain and the field."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from chainotel.catalog.catalog import Catalog, CatalogError, CatalogProblem, duplicate_id_problems
from chainotel.catalog.models import ChainDefinition

__all__ = ["DEFAULT_CATALOG_SOURCE", "default_catalog", "load_catalog", "parse_catalog"]

DEFAULT_CATALOG_SOURCE = "<built-in>"


def load_catalog(path: str | Path) -> Catalog:
    """Load and validate a catalog file (YAML with a top-level ``chains:`` list).

    Raises:
        CatalogError: the file cannot be read, is not valid YAML, or any chain is invalid; one
            :class:`~chainotel.catalog.CatalogProblem` per problem, each naming file, chain, field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError([CatalogProblem(str(path), "", "", f"cannot read the catalog: {exc}")]) from exc
    return parse_catalog(text, str(path))


def parse_catalog(text: str, source: str) -> Catalog:
    """Validate catalog YAML ``text``; ``source`` names it in messages. Raises :class:`CatalogError`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError([CatalogProblem(source, "", "", f"not valid YAML: {exc}")]) from exc
    if not isinstance(data, dict) or not isinstance(data.get("chains"), list):
        raise CatalogError([CatalogProblem(source, "", "chains", "the file must be a mapping with a 'chains:' list")])
    problems = [CatalogProblem(source, "", key, "unknown top-level key (only 'chains' is read)") for key in data if key != "chains"]
    chains: list[ChainDefinition] = []
    for index, raw in enumerate(data["chains"]):
        label = _chain_label(raw, index)
        try:
            chains.append(ChainDefinition.model_validate(raw))
        except ValidationError as exc:
            problems.extend(
                CatalogProblem(source, label, _field_path(err["loc"]), err["msg"]) for err in exc.errors()
            )
    problems.extend(
        duplicate_id_problems([raw.get("id") if isinstance(raw, dict) else None for raw in data["chains"]], source)
    )
    if problems:
        raise CatalogError(problems)
    return Catalog(chains, source=source)


@functools.cache
def default_catalog() -> Catalog:
    """The built-in catalog: 30 chains (A1–A6, B1–B8, C1–C5, D1–D4, E1–E7) of the reference
    trading platform, shipped as ``chainotel/catalog/default.yaml``. Cached."""
    text = resources.files("chainotel.catalog").joinpath("default.yaml").read_text(encoding="utf-8")
    return parse_catalog(text, DEFAULT_CATALOG_SOURCE)


def _chain_label(raw: Any, index: int) -> str:
    chain_id = raw.get("id") if isinstance(raw, dict) else None
    return f"{chain_id} (chains[{index}])" if isinstance(chain_id, str) and chain_id else f"chains[{index}]"


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(chain)"
