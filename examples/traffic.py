"""Traffic generator of the trading-platform demo: drives the six flows at their entry services.

Four flows enter through api-gateway; market-data ingestion (A1) enters at data-bridge and model
inference (D1) at ai-provider, as on the reference platform (and as the built-in catalog's rules
expect).

Every request carries a fresh ``X-Chain-ID`` (a UUID4) chosen here, so the caller knows the chain
instance ID under which the analyzer must store the trace. Used by ``docker compose`` (the
``traffic`` service), by ``chainotel demo``, by the end-to-end tests and by ``bench/load.py``.

    python examples/traffic.py --requests 200 --concurrency 8          # services on their default ports
    python examples/traffic.py --gateway http://api-gateway:8000 --data-bridge http://data-bridge:8001 \
        --ai-provider http://ai-provider:8005 --rate 5 --forever

Needs ``httpx`` and ``websockets`` only (no chainotel, no OpenTelemetry).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

FLOWS: dict[str, str] = {
    "market-data-ingest": "A1",
    "ai-decision": "A2",
    "trading-order": "B3",
    "market-data-stream": "C1",
    "model-inference": "D1",
    "health-check": "E1",
}
"""Flow name → chain definition ID the built-in catalog must assign to it."""

MIX: list[str] = ["ai-decision", "trading-order", "market-data-ingest", "model-inference", "ai-decision",
                  "trading-order", "market-data-stream", "market-data-ingest", "ai-decision", "health-check",
                  "trading-order", "model-inference"]
"""One cycle of the request mix (weights A2 3, B3 3, A1 2, D1 2, C1 1, E1 1)."""


@dataclass(frozen=True)
class Result:
    """Outcome of one flow: the chain instance it started (``instance_id``: the X-Chain-ID sent, a
    lowercase UUID), HTTP status (101 for a completed WebSocket session, 0 for a transport error),
    wall time in ms, and the X-Chain-ID the gateway
    answered with (empty when it sent none)."""

    flow: str
    chain: str
    instance_id: str
    status: int
    duration_ms: float
    response_instance_id: str = ""

    @property
    def ok(self) -> bool:
        return 100 <= self.status < 400


@dataclass(frozen=True)
class Entry:
    """Base URLs of the three entry services (no trailing slash)."""

    gateway: str = "http://127.0.0.1:8000"
    data_bridge: str = "http://127.0.0.1:8001"
    ai_provider: str = "http://127.0.0.1:8005"


async def _http_flow(client: httpx.AsyncClient, entry: Entry, flow: str, headers: dict[str, str]) -> httpx.Response:
    if flow == "market-data-ingest":
        return await client.post(f"{entry.data_bridge}/api/v1/market-data/ingest", headers=headers,
                                 json={"ticks": [{"symbol": "btc-usd", "price": 101.5}, {"symbol": "eth-usd", "price": 3.2}]})
    if flow == "ai-decision":
        return await client.post(f"{entry.gateway}/api/v1/ai/decisions", headers=headers, json={"symbol": "BTC-USD", "account": "acc-7"})
    if flow == "trading-order":
        return await client.post(f"{entry.gateway}/api/v1/trading/orders", headers=headers,
                                 json={"account": "acc-7", "symbol": "BTC-USD", "side": "buy", "quantity": 0.1})
    if flow == "model-inference":
        return await client.post(f"{entry.ai_provider}/api/v1/inference", headers=headers,
                                 json={"model": "price-lstm", "symbol": "ETH-USD"})
    if flow == "health-check":
        return await client.get(f"{entry.gateway}/health/services", headers=headers)
    raise ValueError(f"unknown flow {flow!r}; known: {', '.join(FLOWS)}")


async def _ws_flow(gateway: str, headers: dict[str, str], messages: int = 3) -> int:
    from websockets.asyncio.client import connect

    url = gateway.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/ws/market-data"
    async with connect(url, additional_headers=headers, open_timeout=10, close_timeout=5) as ws:
        for symbol in itertools.islice(itertools.cycle(["BTC-USD", "ETH-USD"]), messages):
            await ws.send(symbol)
            await asyncio.wait_for(ws.recv(), timeout=10)
    return 101


async def run_flow(client: httpx.AsyncClient, entry: Entry, flow: str) -> Result:
    """Run one flow with a fresh X-Chain-ID; never raises for HTTP or transport failures."""
    instance_id = str(uuid.uuid4())
    headers = {"X-Chain-ID": instance_id}
    start = time.perf_counter()
    status, answered = 0, ""
    try:
        if flow == "market-data-stream":
            status = await _ws_flow(entry.gateway, headers)
        else:
            response = await _http_flow(client, entry, flow, headers)
            status, answered = response.status_code, response.headers.get("x-chain-id", "")
    except Exception:  # noqa: BLE001 — any transport or protocol failure is reported as status 0
        status = 0
    return Result(flow, FLOWS[flow], instance_id, status, (time.perf_counter() - start) * 1000.0, answered.lower())


async def drive(entry: Entry, requests: int, concurrency: int = 8, *, rate: float | None = None,
                deadline_s: float = 300.0, flows: list[str] | None = None,
                on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Send ``requests`` flows (cycling through ``flows``, default :data:`MIX`) with at most
    ``concurrency`` in flight, optionally paced to ``rate`` requests/s, stopping early at
    ``deadline_s`` seconds. Returns the results in completion order."""
    mix = itertools.cycle(flows or MIX)
    results: list[Result] = []
    limit = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    stop_at = started + deadline_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
        async def one(flow: str) -> None:
            async with limit:
                if time.monotonic() > stop_at:
                    return
                result = await run_flow(client, entry, flow)
                results.append(result)
                if on_result:
                    on_result(result)

        tasks = []
        for i in range(requests):
            if time.monotonic() > stop_at:
                break
            if rate:
                await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(next(mix))))
            if len(tasks) >= 4 * concurrency:  # keep the number of pending tasks bounded
                _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                tasks = list(pending)
        if tasks:
            await asyncio.gather(*tasks)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", default=Entry.gateway)
    parser.add_argument("--data-bridge", default=Entry.data_bridge)
    parser.add_argument("--ai-provider", default=Entry.ai_provider)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=None, help="requests per second (default: as fast as allowed)")
    parser.add_argument("--forever", action="store_true", help="repeat batches until interrupted")
    args = parser.parse_args(argv)

    def show(r: Result) -> None:
        print(f"{r.chain} {r.flow:20s} {r.status:3d} {r.duration_ms:8.1f} ms  X-Chain-ID {r.instance_id}", flush=True)

    while True:
        try:
            entry = Entry(args.gateway.rstrip("/"), args.data_bridge.rstrip("/"), args.ai_provider.rstrip("/"))
            asyncio.run(drive(entry, args.requests, args.concurrency, rate=args.rate, deadline_s=3600, on_result=show))
        except KeyboardInterrupt:
            return 0
        if not args.forever:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
