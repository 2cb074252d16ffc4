"""ai-provider (:8005) of the trading-platform demo: AI trading decisions and model inference.

``POST /ai/decision`` fetches a quote (data-bridge) and the positions (database-service) in
parallel, then asks the model (the injectable slowdown ``DEMO_SLOW=ai-provider:200ms`` lands here).
``POST /api/v1/inference`` (called directly by model clients: chain D1) loads features from
database-service and runs inference.

The model is called through the ``openai`` client (``chat.completions``), which
``opentelemetry-instrumentation-openai-v2`` (``chainotel[demo]``) traces as a client span with
``gen_ai.*`` attributes — named ``openai`` (its ``gen_ai.provider.name``) in the bottleneck
ranking. The endpoint is ``DEMO_MODEL_URL`` when set (any OpenAI-compatible server, e.g.
``http://127.0.0.1:8080/v1``; key ``DEMO_MODEL_API_KEY``), else a local one this process serves
(:mod:`model_endpoint`, ``DEMO_MODEL_LATENCY_MS`` per call, default 20): nothing leaves the
machine. ``DEMO_MODEL`` names the model (default ``demo-trader``).
"""

from __future__ import annotations

import asyncio
import os

from openai import AsyncOpenAI

import model_endpoint
from demo_service import checked, downstream, service_app

SERVICE = "ai-provider"
DATA_BRIDGE = downstream("data-bridge", 8001)
DATABASE = downstream("database-service", 8008)
MODEL = os.environ.get("DEMO_MODEL", "demo-trader")
app, http, faults = service_app(SERVICE)
model = AsyncOpenAI(
    base_url=os.environ.get("DEMO_MODEL_URL") or model_endpoint.start(float(os.environ.get("DEMO_MODEL_LATENCY_MS", "20"))),
    api_key=os.environ.get("DEMO_MODEL_API_KEY", "demo"),
    max_retries=0,
    timeout=10.0,
)


async def ask(prompt: str) -> str:
    """The model's answer to one user message."""
    reply = await model.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompt}], max_tokens=4)
    return (reply.choices[0].message.content or "").strip()


@app.post("/ai/decision")
async def decision(request: dict) -> dict:
    symbol = request.get("symbol", "BTC-USD")
    account = request.get("account", "acc-1")
    quote, positions = await asyncio.gather(
        http.get(f"{DATA_BRIDGE}/market-data/{symbol}"),
        http.get(f"{DATABASE}/db/positions/{account}"),
    )
    quote, positions = checked(quote), checked(positions)
    await faults.work(5)  # prompt preparation
    answer = await ask(f"{symbol} bid {quote['bid']} ask {quote['ask']}, {len(positions['positions'])} positions: buy or hold?")
    action = "buy" if answer.upper().startswith("BUY") else "hold"
    return {"symbol": symbol, "action": action, "confidence": 0.73, "positions": len(positions["positions"])}


@app.post("/api/v1/inference")
async def inference(request: dict) -> dict:
    model_name, symbol = request.get("model", "price-lstm"), request.get("symbol", "BTC-USD")
    feats = checked(await http.get(f"{DATABASE}/db/features/{symbol}"))
    await faults.work(5)  # feature scaling
    answer = await ask(f"{model_name} features {feats['features']} for {symbol}: buy or hold?")
    return {"model": model_name, "symbol": symbol, "answer": answer,
            "prediction": sum(feats["features"]) / len(feats["features"])}
