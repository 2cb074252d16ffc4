"""api-gateway (:8000) of the trading-platform demo: the entry point of every flow.

Routes (the built-in chain catalog selects the chain from the gateway's server span):

- ``POST /api/v1/ai/decisions``  → ai-provider (A2 AI decision pipeline)
- ``POST /api/v1/trading/orders`` → trading-engine (B3 trading API)
- ``WS   /ws/market-data``        → data-bridge per message (C1 WebSocket streaming)
- ``GET  /health/services``       → ``/health`` of the four services in parallel (E1 health checks)

The other two flows enter elsewhere, as on the reference platform: market-data feeds post to
data-bridge ``/api/v1/market-data/ingest`` (A1), model clients to ai-provider ``/api/v1/inference`` (D1).
"""

from __future__ import annotations

import asyncio

from fastapi import WebSocket, WebSocketDisconnect

from demo_service import checked, downstream, service_app

SERVICE = "api-gateway"
DATA_BRIDGE = downstream("data-bridge", 8001)
AI_PROVIDER = downstream("ai-provider", 8005)
TRADING = downstream("trading-engine", 8007)
DATABASE = downstream("database-service", 8008)
app, http, faults = service_app(SERVICE)


@app.get("/health/services")
async def health_all() -> dict:
    names = ["data-bridge", "ai-provider", "trading-engine", "database-service"]
    results = await asyncio.gather(*(http.get(f"{url}/health") for url in (DATA_BRIDGE, AI_PROVIDER, TRADING, DATABASE)))
    return {"status": "ok", "services": {n: checked(r)["status"] for n, r in zip(names, results)}}


@app.post("/api/v1/ai/decisions")
async def ai_decision(request: dict) -> dict:
    await faults.work(2)
    return checked(await http.post(f"{AI_PROVIDER}/ai/decision", json=request))


@app.post("/api/v1/trading/orders")
async def place_order(order: dict) -> dict:
    await faults.work(2)
    return checked(await http.post(f"{TRADING}/trading/orders", json=order))


@app.websocket("/ws/market-data")
async def market_data_stream(ws: WebSocket) -> None:
    """Each text message names a symbol; the gateway answers with a quote from data-bridge."""
    await ws.accept()
    try:
        while True:
            symbol = (await ws.receive_text()).strip() or "BTC-USD"
            response = await http.get(f"{DATA_BRIDGE}/market-data/{symbol}")
            await ws.send_json(response.json() if response.status_code < 400 else {"error": response.status_code})
    except WebSocketDisconnect:
        return
