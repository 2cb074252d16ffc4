"""data-bridge (:8001) of the trading-platform demo: market-data normalisation and quotes.

``POST /api/v1/market-data/ingest`` (the feed handlers' entry point: chain A1) normalises a batch
of ticks, then stores it in database-service and notifies trading-engine in parallel
(``asyncio.gather``). ``GET /market-data/{symbol}`` serves a
quote. Downstream URLs come from ``DEMO_*_URL`` (see ``demo_service``).
"""

from __future__ import annotations

import asyncio
import random


from demo_service import checked, downstream, service_app

SERVICE = "data-bridge"
DATABASE = downstream("database-service", 8008)
TRADING = downstream("trading-engine", 8007)
app, http, faults = service_app(SERVICE)


@app.get("/market-data/{symbol}")
async def quote(symbol: str) -> dict:
    await faults.work(3)
    return {"symbol": symbol, "bid": round(100 + random.random(), 4), "ask": round(100.5 + random.random(), 4)}


@app.post("/api/v1/market-data/ingest")
async def ingest(batch: dict) -> dict:
    await faults.work(8)  # normalisation
    ticks = [{"symbol": t.get("symbol", "BTC-USD").upper(), "price": float(t.get("price", 0))} for t in batch.get("ticks", [])]
    stored, signals = await asyncio.gather(
        http.post(f"{DATABASE}/db/market-data", json={"ticks": ticks}),
        http.post(f"{TRADING}/trading/signals", json={"ticks": ticks}),
    )
    return {"stored": checked(stored)["stored"], "signals": checked(signals)["signals"]}
