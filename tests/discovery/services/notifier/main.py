"""notifier: not in docker-compose.yml, so named after its folder; a WebSocket entry that calls a
URL nothing resolves."""

import os

import httpx
from fastapi import FastAPI, WebSocket

app = FastAPI()
FEED = os.environ.get("FEED_URL")


@app.websocket("/ws/feed")
async def feed(ws: WebSocket) -> None:
    await ws.accept()
    async with httpx.AsyncClient() as client:
        await client.get(f"{FEED}/latest")
