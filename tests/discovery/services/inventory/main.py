from fastapi import FastAPI

app = FastAPI()


@app.post("/reserve")
async def reserve(order: dict) -> dict:
    return {"reserved": True}
