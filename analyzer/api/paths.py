"""Path parameters shared by the routers, with the pattern the OpenAPI document gives and FastAPI
enforces (a value that does not match answers 422 naming the parameter)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from chainotel.catalog.models import CHAIN_ID_PATTERN

__all__ = ["CHAIN_ID_PATTERN", "INSTANCE_ID_PATTERN", "ChainPath", "InstancePath"]

_HEX = "[0-9a-fA-F]"
INSTANCE_ID_PATTERN = f"^({_HEX}{{32}}|{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})$"
"""A chain instance ID: the trace ID as a UUID (8-4-4-4-12) or as 32 hex digits
(:func:`chainotel.ids.parse_instance_id`)."""

ChainPath = Annotated[str, Path(pattern=CHAIN_ID_PATTERN, description="A chain definition ID (`A1`–`E7`).")]
InstancePath = Annotated[
    str, Path(pattern=INSTANCE_ID_PATTERN, description="A chain instance ID: the trace ID as a UUID or 32 hex digits.")
]
