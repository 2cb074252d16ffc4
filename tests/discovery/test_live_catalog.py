"""The live catalog with real services under ``opentelemetry-instrument``: ``GET /api/v1/catalog``
(JSON/YAML, ETag, 304); a ``PUT /api/v1/chains/…`` changes the ``chain.id`` of newly exported spans
within two poll intervals; an invalid, failing, hanging or unreachable catalog endpoint leaves the
service serving and tagging by its last good catalog (or by ``CHAINOTEL_CATALOG`` at start)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from chainotel.cli.demo import free_port
from tests.distro.otlp_sink import OtlpSink
from tests.distro.services import Service, otel_env
from tests.processes import serve

CHAINOTEL = str(Path(sys.executable).with_name("chainotel"))
SERVICE = "live-backend"


def chain(chain_id: str, route: str, category: str = "service_communication") -> dict:
    return {"id": chain_id, "name": f"orders {chain_id}", "category": category, "max_duration_ms": 500,
            "match": [{"service": SERVICE, "route": route}], "expected_services": [SERVICE]}  # fmt: skip


@pytest.fixture(scope="module")
def sink():
    s = OtlpSink()
    yield s
    s.close()


@pytest.fixture()
def start(tmp_path, sink):
    started: list[Service] = []

    def _start(**env: str) -> Service:
        full = otel_env(sink, SERVICE, **env)
        if "CHAINOTEL_CATALOG" not in env:
            del full["CHAINOTEL_CATALOG"]
        service = Service("backend", full, tmp_path)
        started.append(service)
        return service

    yield _start
    for service in started:
        service.stop()


def tagged(service: Service, sink: OtlpSink) -> tuple[str | None, float]:
    """One ``GET /orders`` in a fresh trace: ``(chain.id of its server span or None, seconds it took)``."""
    trace_id = int.from_bytes(os.urandom(16), "big")
    t = time.monotonic()
    r = httpx.get(f"{service.url}/orders", headers={"traceparent": f"00-{trace_id:032x}-{os.urandom(8).hex()}-01"}, timeout=5)
    took = time.monotonic() - t
    assert r.status_code == 200
    spans = sink.wait_trace(trace_id, lambda spans: any(s["kind"] == 2 for s in spans), timeout=10)
    server = next(s for s in spans if s["kind"] == 2)
    return server["attributes"].get("chain.id"), took


def wait_for(service, sink, chain_id, timeout_s=15.0) -> float:
    """Seconds until a new trace is tagged ``chain_id``; fails after ``timeout_s``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if tagged(service, sink)[0] == chain_id:
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"never tagged {chain_id} within {timeout_s} s:\n{service.log()[-2000:]}")


def test_catalog_endpoint_negotiates_json_and_yaml_with_etags(tmp_path):
    with serve(tmp_path / "db") as api:
        r = api.get("/api/v1/catalog")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        doc = r.json()
        assert [c["id"] for c in doc["chains"]][-1] == "B1"  # the catch-all last, as in the built-in catalog
        assert len(doc["chains"]) == len(api.get("/api/v1/chains").json()["chains"]) == 30
        etag = r.headers["etag"]
        assert api.get("/api/v1/catalog", headers={"If-None-Match": etag}).status_code == 304
        y = api.get("/api/v1/catalog", headers={"Accept": "application/yaml"})
        assert y.headers["content-type"].startswith("application/yaml") and y.headers["etag"] != etag
        assert yaml.safe_load(y.text) == doc
        (tmp_path / "registry.yaml").write_text(y.text)
        check = subprocess.run([CHAINOTEL, "catalog", "validate", str(tmp_path / "registry.yaml")], capture_output=True,
                               text=True, timeout=60)  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
        assert api.post("/api/v1/chains", json=chain("B9", "/orders")).status_code == 201
        changed = api.get("/api/v1/catalog", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        assert "B9" in [c["id"] for c in changed.json()["chains"]]


def test_a_put_changes_newly_exported_spans_within_two_poll_intervals(tmp_path, sink, start):
    interval_s = 1.0
    with serve(tmp_path / "db") as api:
        assert api.post("/api/v1/chains", json=chain("B9", "/orders")).status_code == 201
        assert api.post("/api/v1/chains", json=chain("E9", "/order*", "infrastructure")).status_code == 201
        service = start(CHAINOTEL_CATALOG_URL=str(api.base_url).rstrip("/") + "/api/v1/catalog",
                        CHAINOTEL_CATALOG_POLL_INTERVAL_S=str(interval_s))  # fmt: skip
        wait_for(service, sink, "B9")  # fetched at start (B9 comes before E9 in matching order)
        assert api.put("/api/v1/chains/B9", json=chain("B9", "/nothing")).status_code == 200
        took_s = wait_for(service, sink, "E9", timeout_s=4 * interval_s)
        print(f"PUT -> new chain.id after {took_s:.2f} s (poll interval {interval_s} s)")
        assert took_s <= 2 * interval_s
        assert [tagged(service, sink)[0] for _ in range(5)] == ["E9"] * 5


class FakeCatalogServer:
    """Serves ``body`` with ``etag`` (304 on a matching If-None-Match), or ``status``, or hangs for
    ``hang_s``; records the If-None-Match headers it got."""

    def __init__(self):
        self.body, self.etag, self.status, self.hang_s = "chains: []\n", '"0"', 200, 0.0
        self.if_none_match: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                fake.if_none_match.append(self.headers.get("If-None-Match", ""))
                if fake.hang_s:
                    time.sleep(fake.hang_s)
                if fake.status != 200:
                    self.send_response(fake.status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                if self.headers.get("If-None-Match") == fake.etag:
                    self.send_response(304)
                    self.send_header("ETag", fake.etag)
                    self.end_headers()
                    return
                payload = fake.body.encode()
                self.send_response(200)
                self.send_header("ETag", fake.etag)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/catalog"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve(self, chains: list[dict] | str, etag: str) -> None:
        self.body = chains if isinstance(chains, str) else yaml.safe_dump({"chains": chains})
        self.etag, self.status, self.hang_s = etag, 200, 0.0

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_a_bad_catalog_endpoint_keeps_the_last_good_catalog(sink, start):
    fake = FakeCatalogServer()
    interval_s = 0.5
    try:
        fake.serve([chain("C9", "/orders", "user_experience")], '"v1"')
        service = start(CHAINOTEL_CATALOG_URL=fake.url, CHAINOTEL_CATALOG_POLL_INTERVAL_S=str(interval_s))
        wait_for(service, sink, "C9")
        time.sleep(3 * interval_s)
        assert '"v1"' in fake.if_none_match  # conditional requests, answered 304
        for breakage in ("invalid YAML", "invalid chain", "HTTP 500", "hanging"):
            if breakage == "invalid YAML":
                fake.serve("chains: [unclosed\n", '"v2"')
            elif breakage == "invalid chain":
                fake.serve([{**chain("C9", "/orders"), "category": "data_flow"}], '"v3"')  # C9 is not data_flow
            elif breakage == "HTTP 500":
                fake.status = 500
            else:
                fake.status, fake.hang_s = 200, 5.0  # longer than the fetch timeout (the interval)
            polls = len(fake.if_none_match)
            deadline = time.monotonic() + 10
            while len(fake.if_none_match) < polls + 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(fake.if_none_match) >= polls + 2, breakage
            chain_id, took = tagged(service, sink)
            assert chain_id == "C9", breakage  # still served, still tagged by the last good catalog
            assert took < 1.0, breakage  # requests never wait for the poller
        fake.serve([chain("C10", "/orders", "user_experience")], '"v4"')  # the endpoint recovers
        wait_for(service, sink, "C10")
        assert "live catalog" in service.log() and "keeping the last good" in service.log()
    finally:
        fake.close()


def test_an_unreachable_endpoint_leaves_the_fallback_catalog(tmp_path, sink, start):
    fallback = tmp_path / "fallback.yaml"
    fallback.write_text(yaml.safe_dump({"chains": [chain("A9", "/orders", "data_flow")]}))
    unreachable = f"http://127.0.0.1:{free_port()}/api/v1/catalog"
    service = start(CHAINOTEL_CATALOG_URL=unreachable, CHAINOTEL_CATALOG_POLL_INTERVAL_S="0.5",
                    CHAINOTEL_CATALOG=str(fallback))  # fmt: skip
    assert tagged(service, sink)[0] == "A9"
    time.sleep(1.5)
    assert tagged(service, sink)[0] == "A9"
    # without a fallback file the service serves untagged until the endpoint answers
    bare = start(CHAINOTEL_CATALOG_URL=unreachable, CHAINOTEL_CATALOG_POLL_INTERVAL_S="0.5")
    assert tagged(bare, sink)[0] is None
