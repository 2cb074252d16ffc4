"""orders: an APIRouter with a prefix, included with another; calls inventory through a client with
base_url from the environment, and payments through httpx.post with an os.getenv default."""

import os

import httpx
from fastapi import APIRouter, FastAPI

INVENTORY = httpx.AsyncClient(base_url=os.environ["INVENTORY_URL"])
PAYMENTS_URL = os.getenv("PAYMENTS_URL", "http://payments:9000")

app = FastAPI()
router = APIRouter(prefix="/v1")


@router.post("/orders")
async def place(order: dict) -> dict:
    await INVENTORY.post("/reserve", json=order)
    httpx.post(PAYMENTS_URL + "/charge", json=order)
    return {"ok": True}


@router.get("/orders/{order_id}")
async def show(order_id: str) -> dict:
    return {"id": order_id}


app.include_router(router, prefix="/api")
