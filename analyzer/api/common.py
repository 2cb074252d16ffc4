"""Helpers the API's routers and the console's pages share: the chain a path names, checked against
the registry, and the window document every windowed response carries."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from fastapi import HTTPException

from chainotel.catalog.models import CHAIN_ID_PATTERN

from chainotel_analyzer.api.errors import invalid
from chainotel_analyzer.store.interfaces import ChainRegistry


def known_chain(registry: ChainRegistry, chain: str) -> dict:
    """The current definition (a dict) of ``chain``. Raises ``HTTPException`` 422 (:func:`~chainotel_analyzer.api.errors.invalid`, naming the path parameter) when ``chain`` is not
    a chain ID (pattern :data:`~chainotel.catalog.models.CHAIN_ID_PATTERN`), 404 when the registry has
    no current definition of it."""
    if not re.fullmatch(CHAIN_ID_PATTERN, chain):
        raise invalid(("path", "chain"), f"chain: {chain!r} is not a chain ID (A1..E7 pattern {CHAIN_ID_PATTERN})", chain)
    found = registry.get(chain)
    if found is None:
        raise HTTPException(404, f"unknown chain {chain!r}")
    return found["definition"]


def iso(ns: int) -> str:
    """Unix **ns** as RFC 3339 UTC (``2022-08-22T04:27:03.5Z``, microsecond precision)."""
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def window_doc(since_ns: int, until_ns: int) -> dict:
    """The ``window`` of a response (:class:`chainotel_analyzer.api.models.Window`): ``since`` and
    ``until`` as RFC 3339 and as Unix **ns** (``since_unix_nano``, ``until_unix_nano``)."""
    return {"since": iso(since_ns), "until": iso(until_ns), "since_unix_nano": since_ns, "until_unix_nano": until_ns}
