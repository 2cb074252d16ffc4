"""Test fixture: a service using a whole stack — SQLAlchemy (SQLite, PostgreSQL), Redis,
``requests``, the ``aiohttp`` client, the ``websockets`` client and the OpenAI client — with plain
library code; it imports nothing from chainotel.

Each route is one request of the test catalog's B3 (``/api/v1/trading/*``) or D2
(``/api/v1/ai/*``) chain. Handlers are sync (``def``), so FastAPI runs them in its thread pool:
the calls' spans start on another thread than the server span (the aiohttp one is async, as the
library is). Configured by env:
``STACK_SQLITE_PATH``, ``STACK_POSTGRES_URL``, ``STACK_REDIS_URL``, ``BACKEND_URL``,
``OPENAI_BASE_URL`` (read by the OpenAI client itself).
"""

import os

from fastapi import FastAPI

app = FastAPI()
_engines = {}


def _engine(url: str):
    from sqlalchemy import create_engine

    if url not in _engines:
        _engines[url] = create_engine(url)
    return _engines[url]


def _orders(url: str) -> list:
    from sqlalchemy import text

    with _engine(url).begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS orders (symbol VARCHAR(16))"))
        connection.execute(text("INSERT INTO orders (symbol) VALUES ('ACME')"))
        return [row.symbol for row in connection.execute(text("SELECT symbol FROM orders LIMIT 3"))]


@app.get("/plain")
def plain():
    return {"pid": os.getpid()}


@app.get("/api/v1/trading/sqlite")
def sqlite():
    return {"orders": _orders(f"sqlite:///{os.environ['STACK_SQLITE_PATH']}")}


@app.get("/api/v1/trading/postgres")
def postgres():
    return {"orders": _orders(os.environ["STACK_POSTGRES_URL"])}


@app.get("/api/v1/trading/redis")
def cache():
    import redis

    client = redis.Redis.from_url(os.environ["STACK_REDIS_URL"])
    client.set("quote:ACME", "101.5")
    return {"quote": client.get("quote:ACME").decode()}


@app.get("/api/v1/trading/requests")
def downstream():
    import requests

    return {"backend": requests.get(f"{os.environ['BACKEND_URL']}/orders", timeout=10).json()}


@app.get("/api/v1/trading/aiohttp")
async def downstream_aiohttp():
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{os.environ['BACKEND_URL']}/orders", timeout=aiohttp.ClientTimeout(total=10)) as reply:
            return {"backend": await reply.json()}


def _ws_url(path: str) -> str:
    return os.environ["BACKEND_URL"].replace("http://", "ws://", 1) + path


@app.get("/api/v1/trading/websocket")
async def stream():
    import json

    from websockets.asyncio.client import connect

    replies = []
    async with connect(_ws_url("/ws/quotes?token=secret"), open_timeout=10, close_timeout=5) as ws:
        for symbol in ("ACME", "INIT"):
            await ws.send(symbol)
            replies.append(json.loads(await ws.recv()))
    return {"replies": replies}


@app.get("/api/v1/trading/websocket-refused")
async def stream_refused():
    from websockets.asyncio.client import connect

    try:
        async with connect(_ws_url("/ws/no-such-stream"), open_timeout=10):
            return {"error": ""}
    except Exception as exc:  # the library's own exception reaches the application unchanged
        return {"error": type(exc).__name__, "status": getattr(getattr(exc, "response", None), "status_code", None)}


@app.get("/api/v1/ai/decision")
def decision():
    from openai import OpenAI

    client = OpenAI(api_key="test-key", max_retries=0, timeout=10)
    reply = client.chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "BUY or SELL ACME?"}]
    )
    return {"answer": reply.choices[0].message.content}
