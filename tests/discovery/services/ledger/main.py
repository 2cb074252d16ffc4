from fastapi import FastAPI

app = FastAPI()


@app.post("/entries")
async def entries(entry: dict) -> dict:
    return {"stored": True}
