"""Chain catalog: definitions (pydantic), YAML loading with located errors, rule matching.

Public interface::

    from chainotel.catalog import (
        Category, MatchRule, Edge, ChainDefinition,      # models (chainotel.catalog.models)
        Catalog, CatalogError, CatalogProblem,           # chainotel.catalog.catalog
        load_catalog, parse_catalog, default_catalog,    # chainotel.catalog.loader
    )
"""

from chainotel.catalog.catalog import Catalog, CatalogError, CatalogProblem
from chainotel.catalog.loader import DEFAULT_CATALOG_SOURCE, default_catalog, load_catalog, parse_catalog
from chainotel.catalog.models import CHAIN_ID_PATTERN, Category, ChainDefinition, Edge, MatchRule

__all__ = [
    "CHAIN_ID_PATTERN",
    "DEFAULT_CATALOG_SOURCE",
    "Catalog",
    "CatalogError",
    "CatalogProblem",
    "Category",
    "ChainDefinition",
    "Edge",
    "MatchRule",
    "default_catalog",
    "load_catalog",
    "parse_catalog",
]
