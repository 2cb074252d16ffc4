"""database-service (:8008) of the trading-platform demo: positions, orders, features, market data.

In-memory stand-in for the platform's database API; no downstream calls. Runs under
``opentelemetry-instrument uvicorn --app-dir examples database_service:app --port 8008``.
"""

from __future__ import annotations

import itertools

from pydantic import BaseModel

from demo_service import service_app

SERVICE = "database-service"
app, _http, faults = service_app(SERVICE)  # no downstream calls
_order_ids = itertools.count(1)
_ticks: dict[str, dict] = {}


class Order(BaseModel):
    account: str
    symbol: str
    side: str
    quantity: float
    price: float | None = None


@app.get("/db/positions/{account}")
async def positions(account: str) -> dict:
    await faults.work(4)
    return {"account": account, "positions": [{"symbol": "BTC-USD", "quantity": 1.5}, {"symbol": "ETH-USD", "quantity": 12.0}]}


@app.post("/db/orders")
async def store_order(order: Order) -> dict:
    await faults.work(6)
    return {"order_id": next(_order_ids), **order.model_dump()}


@app.get("/db/features/{symbol}")
async def features(symbol: str) -> dict:
    await faults.work(5)
    return {"symbol": symbol, "features": [0.12, 0.5, -0.3, 0.9]}


@app.post("/db/market-data")
async def store_ticks(batch: dict) -> dict:
    await faults.work(5)
    for tick in batch.get("ticks", []):
        _ticks[tick["symbol"]] = tick
    return {"stored": len(batch.get("ticks", []))}
