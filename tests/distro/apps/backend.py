"""Test fixture: the downstream service; echoes the headers it received (``GET /orders``, and the
WebSocket handshake's in every reply of ``/ws/quotes``)."""

import os

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.get("/orders")
async def orders(request: Request):
    return {"headers": dict(request.headers), "pid": os.getpid()}


@app.websocket("/ws/quotes")
async def quotes(ws: WebSocket):
    await ws.accept()
    handshake = dict(ws.headers)
    try:
        while True:
            symbol = await ws.receive_text()
            await ws.send_json({"symbol": symbol, "bid": 101.5, "handshake": handshake})
    except WebSocketDisconnect:
        return
