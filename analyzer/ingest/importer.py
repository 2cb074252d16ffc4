"""``chainotel-analyzer import``: send trace files to a running analyzer over OTLP/HTTP (JSON, gzip).

Files: OTLP/JSON ``ExportTraceServiceRequest`` (``.json`` or ``.json.gz``) or Jaeger JSON
(``{"data": [...]}``, converted by :mod:`.jaeger`). Each file is cut into requests of at most
``chunk_spans`` spans (resource and scope kept with their spans) and posted to ``<endpoint>/v1/traces``,
``concurrency`` requests at a time; a 503 is retried after its ``Retry-After``. Chunks are cut deterministically, so importing the same
file again is recognised as a retry and stores nothing twice (within the analyzer's dedup window).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from chainotel_analyzer.ingest.jaeger import is_jaeger, jaeger_to_otlp
from chainotel_analyzer.ingest.otlp_json import InvalidRequest, upgrade_legacy_names


class ImportFailed(RuntimeError):
    """A file cannot be read or the analyzer refused a chunk for good (message says which and why)."""


@dataclass
class ImportResult:
    """Totals for one file: spans ``sent``, ``rejected`` by the analyzer (partial success), and why."""

    path: Path
    format: str
    sent: int = 0
    rejected: int = 0
    messages: list[str] | None = None

    @property
    def stored(self) -> int:
        """Spans the analyzer acknowledged as stored (sent minus rejected)."""
        return self.sent - self.rejected


def load_request(path: Path) -> tuple[str, dict]:
    """Read ``path`` (gzip detected by magic bytes) → (``"otlp"`` | ``"jaeger"``, OTLP/JSON request dict
    with current field names: OTLP < 0.15 ``instrumentationLibrarySpans`` become ``scopeSpans``)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ImportFailed(f"{path}: not JSON: {exc}") from None
    if is_jaeger(doc):
        try:
            return "jaeger", jaeger_to_otlp(doc)
        except ValueError as exc:
            raise ImportFailed(f"{path}: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("resourceSpans", doc.get("resource_spans")), list):
        try:
            return "otlp", upgrade_legacy_names(doc)
        except InvalidRequest as exc:
            raise ImportFailed(f"{path}: {exc}") from None
    raise ImportFailed(f"{path}: neither an OTLP/JSON ExportTraceServiceRequest nor Jaeger JSON ({{'data': [...]}})")


def count_spans(request: dict) -> int:
    """Number of spans in an OTLP/JSON request dict."""
    return sum(
        len(ss.get("spans") or ())
        for rs in request.get("resourceSpans") or request.get("resource_spans") or ()
        for ss in rs.get("scopeSpans") or rs.get("scope_spans") or ()
    )


def chunk_request(request: dict, chunk_spans: int) -> Iterator[tuple[dict, int]]:
    """Split an OTLP/JSON request into requests of ≤ ``chunk_spans`` spans; yields (request, span count)."""
    out: list[dict] = []
    n = 0
    for rs in request.get("resourceSpans") or request.get("resource_spans") or ():
        resource = rs.get("resource") or {}
        for ss in rs.get("scopeSpans") or rs.get("scope_spans") or ():
            spans = ss.get("spans") or []
            scope = {k: v for k, v in ss.items() if k != "spans"}
            i = 0
            while i < len(spans):
                take = spans[i : i + chunk_spans - n]
                out.append({"resource": resource, "scopeSpans": [{**scope, "spans": take}]})
                n += len(take)
                i += len(take)
                if n >= chunk_spans:
                    yield {"resourceSpans": out}, n
                    out, n = [], 0
    if n:
        yield {"resourceSpans": out}, n


def post_chunk(client: httpx.Client, url: str, request: dict, attempts: int = 30) -> tuple[int, str]:
    """POST one chunk (JSON, gzip); retry 503/connection errors (Retry-After, ≤ ``attempts``).

    Returns (rejected spans, error message). Raises :class:`ImportFailed` on any other status.
    """
    body = gzip.compress(json.dumps(request, separators=(",", ":")).encode(), compresslevel=1)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    for attempt in range(attempts):
        try:
            resp = client.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:
            if attempt == attempts - 1:
                raise ImportFailed(f"cannot reach {url}: {exc}") from None
            time.sleep(1.0)
            continue
        if resp.status_code == 503 and attempt < attempts - 1:
            time.sleep(float(resp.headers.get("retry-after", "1") or 1))
            continue
        if resp.status_code != 200:
            raise ImportFailed(f"{url} answered {resp.status_code}: {resp.text[:300]}")
        partial = (resp.json() or {}).get("partialSuccess") or {}
        return int(partial.get("rejectedSpans") or 0), partial.get("errorMessage") or ""
    raise ImportFailed(f"{url} kept answering 503")


def import_file(
    path: Path, endpoint: str, chunk_spans: int = 2000, on_progress: Callable[[int, int], None] | None = None,
    timeout: float = 60.0, concurrency: int = 4, token: str = "",
) -> ImportResult:
    """Send one file to ``endpoint`` (e.g. ``http://127.0.0.1:4318``), ``concurrency`` requests at a time.

    ``on_progress(done, total)`` counts spans acknowledged; ``token`` (an ``ingest`` token) is sent as
    ``Authorization: Bearer``. Raises :class:`ImportFailed`.
    """
    fmt, request = load_request(path)
    total = count_spans(request)
    result = ImportResult(path=path, format=fmt, messages=[])
    url = endpoint.rstrip("/") + "/v1/traces"
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=concurrency), headers=headers) as client:

        def send(chunk: dict, n: int) -> None:
            rejected, message = post_chunk(client, url, chunk)
            with lock:
                result.sent += n
                result.rejected += rejected
                if message:
                    result.messages.append(message)
                if on_progress:
                    on_progress(result.sent, total)

        with ThreadPoolExecutor(max(1, concurrency)) as pool:
            pending = set()
            for chunk, n in chunk_request(request, chunk_spans):
                if len(pending) >= 2 * concurrency:  # bounded read-ahead
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        fut.result()
                pending.add(pool.submit(send, chunk, n))
            for fut in pending:
                fut.result()
    return result
