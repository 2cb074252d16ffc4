"""trading-engine (:8007) of the trading-platform demo: orders and trading signals.

``POST /trading/orders`` checks positions (database-service) and the quote (data-bridge) in
parallel, then stores the order in database-service. ``POST /trading/signals`` recomputes signals
from fresh ticks (called by data-bridge during market-data ingest).
"""

from __future__ import annotations

import asyncio


from demo_service import checked, downstream, service_app

SERVICE = "trading-engine"
DATA_BRIDGE = downstream("data-bridge", 8001)
DATABASE = downstream("database-service", 8008)
app, http, faults = service_app(SERVICE)


@app.post("/trading/orders")
async def place_order(order: dict) -> dict:
    account, symbol = order.get("account", "acc-1"), order.get("symbol", "BTC-USD")
    positions, quote = await asyncio.gather(
        http.get(f"{DATABASE}/db/positions/{account}"),
        http.get(f"{DATA_BRIDGE}/market-data/{symbol}"),
    )
    checked(positions)
    price = checked(quote)["ask"]
    await faults.work(10)  # risk checks
    stored = checked(await http.post(f"{DATABASE}/db/orders", json={**order, "account": account, "symbol": symbol, "price": price}))
    return {"order_id": stored["order_id"], "status": "accepted", "price": price}


@app.post("/trading/signals")
async def signals(batch: dict) -> dict:
    await faults.work(6)
    return {"signals": len(batch.get("ticks", []))}
