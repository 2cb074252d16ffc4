"""Test fixture: the downstream service; echoes the headers it received."""

import os

from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/orders")
async def orders(request: Request):
    return {"headers": dict(request.headers), "pid": os.getpid()}
