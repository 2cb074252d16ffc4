"""ai-provider (:8005) of the trading-platform demo: AI trading decisions and model inference.

``POST /ai/decision`` fetches a quote (data-bridge) and the positions (database-service) in
parallel, then runs the model (the injectable slowdown ``DEMO_SLOW=ai-provider:200ms`` lands here).
``POST /api/v1/inference`` (called directly by model clients: chain D1) loads features from
database-service and runs inference.
"""

from __future__ import annotations

import asyncio


from demo_service import checked, downstream, service_app

SERVICE = "ai-provider"
DATA_BRIDGE = downstream("data-bridge", 8001)
DATABASE = downstream("database-service", 8008)
app, http, faults = service_app(SERVICE)


@app.post("/ai/decision")
async def decision(request: dict) -> dict:
    symbol = request.get("symbol", "BTC-USD")
    account = request.get("account", "acc-1")
    quote, positions = await asyncio.gather(
        http.get(f"{DATA_BRIDGE}/market-data/{symbol}"),
        http.get(f"{DATABASE}/db/positions/{account}"),
    )
    quote, positions = checked(quote), checked(positions)
    await faults.work(25)  # the model
    action = "buy" if quote["bid"] < 100.5 else "hold"
    return {"symbol": symbol, "action": action, "confidence": 0.73, "positions": len(positions["positions"])}


@app.post("/api/v1/inference")
async def inference(request: dict) -> dict:
    model, symbol = request.get("model", "price-lstm"), request.get("symbol", "BTC-USD")
    feats = checked(await http.get(f"{DATABASE}/db/features/{symbol}"))
    await faults.work(15)  # inference
    return {"model": model, "symbol": symbol, "prediction": sum(feats["features"]) / len(feats["features"])}
