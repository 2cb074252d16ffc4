"""Test fixture: the entry service. Plain FastAPI + httpx; it imports nothing from chainotel.

``/debug/otel`` reports what auto-instrumentation configured, so tests can check the distro's
defaults from inside the instrumented process.
"""

import os
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request

BACKEND = os.environ.get("BACKEND_URL", "http://127.0.0.1:9")


@asynccontextmanager
async def lifespan(app):
    async with httpx.AsyncClient(timeout=30) as client:  # one client: TLS setup per request is slow
        app.state.client = client
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/api/v1/trading/orders")
@app.post("/api/v1/trading/orders")
async def orders(request: Request):
    backend = await request.app.state.client.get(f"{BACKEND}/orders")
    return {"backend": backend.json(), "pid": os.getpid()}


@app.get("/plain")
async def plain():
    return {"pid": os.getpid()}


@app.get("/boom")
async def boom():
    raise RuntimeError("boom")


@app.get("/debug/otel")
async def debug_otel():
    from opentelemetry import propagate, trace

    provider = trace.get_tracer_provider()
    return {
        "propagators": [type(p).__name__ for p in getattr(propagate.get_global_textmap(), "_propagators", [])],
        "id_generator": type(getattr(provider, "id_generator", None)).__name__,
        "env": {k: v for k, v in os.environ.items() if k.startswith(("OTEL_", "CHAINOTEL_"))},
    }
