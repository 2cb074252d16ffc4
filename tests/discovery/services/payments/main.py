import httpx
from fastapi import FastAPI

LEDGER = "http://127.0.0.1:9100"  # resolved by its port in docker-compose.yml
app = FastAPI()


@app.post("/charge")
async def charge(order: dict) -> dict:
    async with httpx.AsyncClient(base_url=LEDGER) as ledger:
        await ledger.post("/entries", json=order)
    return {"charged": True}
