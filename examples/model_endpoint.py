"""A local OpenAI-compatible model endpoint for the demo's ai-provider (``POST /v1/chat/completions``).

It stands for the model provider outside the traced system: a standard-library HTTP server on a
127.0.0.1 port of its own, in a daemon thread, not instrumented, so the demo calls a model through
the real ``openai`` client without anything leaving the machine. The "model" answers BUY or HOLD
after ``latency_ms`` and reports token usage as OpenAI does.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 1 << 20
"""Largest request body read (bytes); a larger one is refused with 413."""


def _reply(model: str, prompt: str) -> dict:
    answer = "BUY" if "buy" in prompt.lower() else "HOLD"
    return {
        "id": f"chatcmpl-demo-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}],
        "usage": {"prompt_tokens": max(1, len(prompt.split())), "completion_tokens": 1,
                  "total_tokens": max(1, len(prompt.split())) + 1},
    }


def _handler(latency_s: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the openai client's connection pool expects
        # headers and body go out in two writes: without TCP_NODELAY the body waits for the
        # client's delayed ACK of the headers (~40 ms on Linux) on every kept-alive call
        disable_nagle_algorithm = True

        def _send(self, status: int, doc: dict) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 — http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                return
            if length > MAX_BODY:
                self.close_connection = True
                self._send(413, {"error": {"message": "request body too large", "type": "invalid_request_error"}})
                return
            try:
                request = json.loads(self.rfile.read(length) or b"{}")
                prompt = " ".join(str(m.get("content", "")) for m in request.get("messages", []))
                model = str(request["model"])
            except (ValueError, KeyError, AttributeError, TypeError):
                self._send(400, {"error": {"message": "expected a chat completion request", "type": "invalid_request_error"}})
                return
            time.sleep(latency_s)
            self._send(200, _reply(model, prompt))

        def log_message(self, *_args) -> None:  # no access log
            return

    return Handler


def start(latency_ms: float = 20.0) -> str:
    """Serve the endpoint on a free 127.0.0.1 port in a daemon thread; return its base URL for
    the openai client (``http://127.0.0.1:<port>/v1``). Raises ``OSError`` if it cannot bind."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(latency_ms / 1000.0))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="model-endpoint", daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1"
