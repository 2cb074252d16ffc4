"""Test fixture: a local OpenAI-compatible model server (``POST /v1/chat/completions``), not
instrumented — it stands for the model provider outside the traced system."""

import time

from fastapi import FastAPI, Request

app = FastAPI()


@app.get("/plain")
async def plain():
    return {}


@app.post("/v1/chat/completions")
async def completions(request: Request):
    body = await request.json()
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "HOLD"}}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
        "received_headers": dict(request.headers),
    }
