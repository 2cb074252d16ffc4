"""``chainotel-analyzer import``: send trace files to a running analyzer over OTLP/HTTP (JSON, gzip).

Files: OTLP/JSON ``ExportTraceServiceRequest`` (``.json`` or ``.json.gz``) or Jaeger JSON
(``{"data": [...]}`` or one trace object, converted by :mod:`.jaeger`). Each file is cut into requests
of at most ``chunk_spans`` spans (resource and scope kept with their spans) and posted to
``<endpoint>/v1/traces``, ``concurrency`` requests at a time; a 503 is retried after its ``Retry-After``.

What is reported, per file: spans **stored** by this import, spans **already stored** (the analyzer
answered that the request was stored before: the response header :data:`ALREADY_STORED_HEADER`), and
spans **rejected** — those whose IDs are not valid (named by the IDs as written in the file, never
sent) and those the analyzer refused (``partial_success``). Chunks are cut deterministically, so
importing the same file again is a retry of the same requests: ClickHouse stores nothing twice
(within its deduplication window) and the spans are reported as already stored.
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
from chainotel_analyzer.ingest.receive import ALREADY_STORED_HEADER

class ImportFailed(RuntimeError):
    """A file cannot be read or the analyzer refused a chunk for good (message says which and why)."""


@dataclass
class ImportResult:
    """Totals for one file: spans ``sent``; ``rejected`` (invalid IDs, never sent, plus those the
    analyzer refused); ``already_stored`` (the analyzer had them before); ``messages``: why spans were
    rejected, invalid IDs named as written in the file."""

    path: Path
    format: str
    sent: int = 0
    rejected: int = 0
    already_stored: int = 0
    refused_by_analyzer: int = 0
    messages: list[str] | None = None

    @property
    def stored(self) -> int:
        """Spans this import stored: sent, minus those refused by the analyzer and those stored before."""
        return self.sent - self.refused_by_analyzer - self.already_stored


def _hex_problem(value, digits: int, empty_ok: bool = False) -> str:
    """Why ``value`` is not an OTLP/JSON ID of exactly ``digits`` hex digits, not all zero ('' if it is)."""
    if empty_ok and value in (None, ""):
        return ""
    text = value if isinstance(value, str) else ""
    if len(text) != digits:
        return f"must be {digits} hex digits"
    try:
        number = int(text, 16)
    except ValueError:
        return "is not hex"
    return "" if number or empty_ok else "is all zero"


def drop_invalid_ids(request: dict) -> list[str]:
    """Remove from an OTLP/JSON request dict every span whose ``traceId``/``spanId``/``parentSpanId`` is
    not valid hex; return one reason per span removed, naming its IDs as written."""
    reasons = []
    for rs in request.get("resourceSpans") or ():
        for ss in rs.get("scopeSpans") or ():
            kept = []
            for span in ss.get("spans") or ():
                label = f"span {span.get('spanId')!s} of trace {span.get('traceId')!s}"
                problem = next((f"{label}: {key} {p}" for key, p in (
                    ("traceId", _hex_problem(span.get("traceId"), 32)),
                    ("spanId", _hex_problem(span.get("spanId"), 16)),
                    ("parentSpanId", _hex_problem(span.get("parentSpanId"), 16, empty_ok=True)),
                ) if p), "")  # fmt: skip
                if problem:
                    reasons.append(problem)
                else:
                    kept.append(span)
            ss["spans"] = kept
    return reasons


def load_request(path: Path, rejected: list[str] | None = None) -> tuple[str, dict]:
    """Read ``path`` (gzip detected by magic bytes) → (``"otlp"`` | ``"jaeger"``, OTLP/JSON request dict
    with current field names: OTLP < 0.15 ``instrumentationLibrarySpans`` become ``scopeSpans``).
    Spans with invalid IDs are left out, one reason each appended to ``rejected`` (if given).
    Raises :class:`ImportFailed` for a file that is neither format."""
    found: list[str] = [] if rejected is None else rejected
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ImportFailed(f"{path}: not JSON: {exc}") from None
    if is_jaeger(doc):
        try:
            return "jaeger", jaeger_to_otlp(doc, found)
        except ValueError as exc:
            raise ImportFailed(f"{path}: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("resourceSpans", doc.get("resource_spans")), list):
        try:
            request = upgrade_legacy_names(doc)
            found.extend(drop_invalid_ids(request))
            return "otlp", request
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


def post_chunk(client: httpx.Client, url: str, request: dict, attempts: int = 30) -> tuple[int, str, int]:
    """POST one chunk (JSON, gzip); retry 503/connection errors (Retry-After, ≤ ``attempts``).

    Returns (spans rejected, error message, spans already stored). Raises :class:`ImportFailed` on
    any other status.
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
        already = int(resp.headers.get(ALREADY_STORED_HEADER, "0") or 0)
        return int(partial.get("rejectedSpans") or 0), partial.get("errorMessage") or "", already
    raise ImportFailed(f"{url} kept answering 503")


def import_file(
    path: Path, endpoint: str, chunk_spans: int = 2000, on_progress: Callable[[int, int], None] | None = None,
    timeout: float = 60.0, concurrency: int = 4, token: str = "",
) -> ImportResult:
    """Send one file to ``endpoint`` (e.g. ``http://127.0.0.1:4318``), ``concurrency`` requests at a time.

    ``on_progress(done, total)`` counts spans acknowledged; ``token`` (an ``ingest`` token) is sent as
    ``Authorization: Bearer``. Raises :class:`ImportFailed`.
    """
    invalid: list[str] = []
    fmt, request = load_request(path, invalid)
    total = count_spans(request)
    result = ImportResult(path=path, format=fmt, rejected=len(invalid), messages=invalid)
    url = endpoint.rstrip("/") + "/v1/traces"
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=concurrency), headers=headers) as client:

        def send(chunk: dict, n: int) -> None:
            rejected, message, already = post_chunk(client, url, chunk)
            with lock:
                result.sent += n
                result.rejected += rejected
                result.refused_by_analyzer += rejected
                result.already_stored += already
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
