"""What the five demo services share: the app factory, settings from the environment, fault injection.

The demo services import this module (it sits beside them in ``examples/``); none of them imports
chainotel — tracing comes only from ``opentelemetry-instrument`` and ``OTEL_*`` variables.

Environment:

- ``DEMO_DATA_BRIDGE_URL``, ``DEMO_AI_PROVIDER_URL``, ``DEMO_TRADING_ENGINE_URL``,
  ``DEMO_DATABASE_SERVICE_URL`` — base URLs of the downstream services
  (defaults ``http://127.0.0.1:8001`` / ``:8005`` / ``:8007`` / ``:8008``).
- ``DEMO_SLOW`` — injected slowdown, ``service:duration[,service:duration...]`` with durations
  in ``ms`` or ``s``, e.g. ``ai-provider:200ms``. The named service sleeps that long in every
  business handler (not in ``/health``).
- ``DEMO_ERROR_RATE`` — probability (0..1, default 0.02) that a business handler fails with 500.
- ``DEMO_SEED`` — seed of the error draws (default 42), so a run is repeatable.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re

import httpx
from fastapi import FastAPI, HTTPException

_DURATION = re.compile(r"^\s*([a-z0-9-]+)\s*:\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s)\s*$")


def parse_slow(spec: str) -> dict[str, float]:
    """Parse ``DEMO_SLOW`` into ``{service: seconds}``.

    >>> parse_slow("ai-provider:200ms, trading-engine:0.5s")
    {'ai-provider': 0.2, 'trading-engine': 0.5}

    Raises ``ValueError`` naming the bad entry (a service must not start with a wrong spec).
    """
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        m = _DURATION.match(item)
        if not m:
            raise ValueError(f"DEMO_SLOW entry {item!r}: expected service:duration, e.g. ai-provider:200ms")
        value = float(m.group(2))
        out[m.group(1)] = value / 1000.0 if m.group(3) == "ms" else value
    return out


def downstream(name: str, default_port: int) -> str:
    """Base URL of a downstream service from ``DEMO_<NAME>_URL`` (no trailing slash)."""
    key = "DEMO_" + name.upper().replace("-", "_") + "_URL"
    return os.environ.get(key, f"http://127.0.0.1:{default_port}").rstrip("/")


class Faults:
    """Injected slowness and errors of one service.

    ``delay_s`` is the slowdown in seconds; ``error_rate`` the chance of a 500 per business call,
    drawn from a generator seeded by ``DEMO_SEED`` and the service name.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self.delay_s = parse_slow(os.environ.get("DEMO_SLOW", "")).get(service, 0.0)
        self.error_rate = float(os.environ.get("DEMO_ERROR_RATE", "0.02"))
        self._rng = random.Random(f"{os.environ.get('DEMO_SEED', '42')}:{service}")

    async def work(self, base_ms: float) -> None:
        """Simulate ``base_ms`` milliseconds of work plus the injected slowdown; maybe fail with 500."""
        await asyncio.sleep(base_ms / 1000.0 + self.delay_s)
        if self._rng.random() < self.error_rate:
            raise HTTPException(status_code=500, detail=f"{self.service}: injected failure (DEMO_ERROR_RATE)")


def checked(response) -> dict:
    """JSON body of a downstream ``httpx.Response``; a downstream failure becomes 502 here."""
    if response.status_code >= 400:
        raise HTTPException(status_code=502, detail=f"downstream {response.request.url.path} answered {response.status_code}")
    return response.json()


def service_app(service: str) -> tuple[FastAPI, httpx.AsyncClient, Faults]:
    """A demo service's FastAPI app with ``GET /health``, its shared ``httpx.AsyncClient`` for
    downstream calls (10 s timeout, closed at shutdown) and its :class:`Faults`."""
    http = httpx.AsyncClient(timeout=10.0)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await http.aclose()

    app = FastAPI(title=service, lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict:
        return {"service": service, "status": "ok"}

    return app, http, Faults(service)
