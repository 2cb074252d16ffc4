"""Synthetic probes against real services under opentelemetry-instrument, judged by their traces:
stopping the entry service makes the probe down and fires ChainProbeDown, restarting it resolves it;
a probe whose trace lacks an expected service is down with that reason; every span of a probe's trace
carries chain.synthetic=true in every service."""

from __future__ import annotations

import httpx

from chainotel.cli.demo import free_port
from tests.distro import services
from tests.distro.services import Service
from tests.monitoring.traffic import otel_env, wait_for
from tests.processes import running


def catalog(gateway_port: int) -> str:
    url = f"http://127.0.0.1:{gateway_port}"
    return f"""chains:
  - id: B3
    name: Trading API request
    category: service_communication
    match: [{{service: probe-gateway, route: "/api/v1/trading/*"}}]
    expected_services: [probe-gateway, probe-backend]
    max_duration_ms: 3000
    alerts: {{for: 1s, keep_firing_for: 0s, sla_compliance_below: null, error_rate_above: null}}
    probe: {{url: "{url}/api/v1/trading/orders", method: POST, json: {{symbol: EURUSD}}, interval: 1s, timeout: 1s}}
  - id: B5
    name: Gateway ping
    category: service_communication
    match: [{{service: probe-gateway, route: "/plain"}}]
    expected_services: [probe-gateway, probe-backend]
    max_duration_ms: 3000
    probe: {{url: "{url}/plain", interval: 1s, timeout: 1s}}
"""


def health(base: str, chain: str) -> dict:
    return httpx.get(f"{base}/api/v1/chains/{chain}/health", timeout=10).json()


def test_probe_down_fires_up_resolves_and_missing_service_is_named(tmp_path, monkeypatch):
    gateway_port = free_port()
    chains = tmp_path / "chains.yaml"
    chains.write_text(catalog(gateway_port))
    env = {"CHAINOTEL_CATALOG": str(chains), "CHAINOTEL_ALERT_EVAL_INTERVAL_S": "0.3",
           "CHAINOTEL_PROBE_TRACE_WAIT_S": "5"}  # fmt: skip
    with running(tmp_path / "db", env, grpc=False) as analyzer:
        base = analyzer.http
        backend = Service("backend", otel_env(base, str(chains), "probe-backend"), tmp_path)
        monkeypatch.setattr(services, "free_port", lambda: gateway_port)
        gateway = Service("gateway", otel_env(base, str(chains), "probe-gateway", BACKEND_URL=backend.url), tmp_path)
        try:
            up = wait_for(lambda: (h := health(base, "B3"))["probe"]["status"] == "up" and h, 40, "B3 probe up")
            run = up["probe"]["recent"][0]
            assert run["http_status"] == 200 and run["reason"] is None and up["probe"]["checked_at"]
            # every span of the probe's trace, in both services, is marked synthetic
            events = httpx.get(f"{base}/api/v1/chains/events/{run['trace_id']}", timeout=10).json()
            rows = events.get("events", events) if isinstance(events, dict) else events
            assert {r["service_name"] for r in rows} == {"probe-gateway", "probe-backend"}
            assert all(r["span_attributes"].get("chain.synthetic") == "true" for r in rows), rows
            assert {r["chain"] for r in rows} == {"B3"}

            # B5's trace never reaches the backend: down, naming it
            b5 = wait_for(lambda: (h := health(base, "B5"))["probe"]["reason"] == "trace lacks expected service(s) probe-backend"
                          and h, 30, "B5 down for the missing backend")  # fmt: skip
            assert b5["probe"]["status"] == "down" and b5["probe"]["recent"][0]["http_status"] == 200

            gateway.stop()
            down = wait_for(lambda: (h := health(base, "B3"))["probe"]["status"] == "down" and h, 30, "B3 probe down")
            assert "request failed" in down["probe"]["reason"] and "Connect" in down["probe"]["reason"]
            fired = wait_for(lambda: [a for a in httpx.get(base + "/api/v1/alerts", params={"state": "firing", "chain": "B3"}).json()["alerts"]
                                      if a["alertname"] == "ChainProbeDown"], 30, "ChainProbeDown firing")[0]  # fmt: skip
            assert "request failed" in fired["description"]
            metrics = httpx.get(base + "/metrics").text
            assert 'chainotel_probe_success{chain="B3"} 0.0' in metrics

            gateway = Service("gateway", otel_env(base, str(chains), "probe-gateway", BACKEND_URL=backend.url), tmp_path)
            done = wait_for(lambda: [a for a in httpx.get(base + "/api/v1/alerts", params={"state": "resolved", "chain": "B3"}).json()["alerts"]
                                     if a["alert_id"] == fired["alert_id"]], 40, "ChainProbeDown resolved")[0]  # fmt: skip
            assert done["resolved_by"] == "condition"
            assert health(base, "B3")["probe"]["status"] == "up"
        finally:
            gateway.stop()
            backend.stop()


def test_websocket_probe_connects_sends_and_expects_a_message():
    import threading

    from websockets.sync.server import serve

    from chainotel.catalog.models import Probe
    from chainotel_analyzer.monitoring.probes import probe_headers, send_websocket

    seen = {}

    def handler(ws):
        seen["baggage"] = ws.request.headers.get("baggage")
        ws.send("echo " + ws.recv())

    with serve(handler, "127.0.0.1", 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/quotes"
        probe = Probe(url=url, json={"subscribe": "EURUSD"}, expect_message="EURUSD", timeout="2s")
        reason, status, ms = send_websocket(probe, probe_headers(probe, "C2", "ab" * 16))
        assert (reason, status) == ("", 101) and ms > 0
        assert seen["baggage"] == "chain.synthetic=true,chain.id=C2"
        wrong = Probe(url=url, json="hello", expect_message="EURUSD", timeout="2s")
        reason, status, _ = send_websocket(wrong, probe_headers(wrong, "C2", "cd" * 16))
        assert status == 101 and "unexpected message 'echo hello'" in reason
        server.shutdown()
    reason, status, _ = send_websocket(probe, probe_headers(probe, "C2", "ef" * 16))
    assert status == 0 and reason.startswith("WebSocket failed")
