"""Synthetic probe traces are left out of the figures of real traffic: real services under
opentelemetry-instrument (the probe tests' catalog: B3 probes the user's route) get requests from a
user and from the analyzer's probe; the chain's health, the health overview, bottlenecks, /metrics
and the per-service figures count the user's traces only, and all of them with include_synthetic=true."""

from __future__ import annotations

import time

import httpx

from chainotel.cli.demo import free_port
from tests.distro import services
from tests.distro.services import Service
from tests.monitoring.test_probes import catalog
from tests.monitoring.traffic import otel_env, wait_for
from tests.processes import running

REAL = 6


def test_probe_traces_are_left_out_of_real_traffic_figures_unless_asked_for(tmp_path, monkeypatch):
    gateway_port = free_port()
    chains = tmp_path / "chains.yaml"
    chains.write_text(catalog(gateway_port))
    env = {"CHAINOTEL_CATALOG": str(chains), "CHAINOTEL_PROBE_TRACE_WAIT_S": "5"}
    with running(tmp_path / "db", env, grpc=False) as analyzer, httpx.Client(base_url=analyzer.http, timeout=30) as api:

        since = int(time.time()) - 1
        backend = Service("backend", otel_env(analyzer.http, str(chains), "probe-backend"), tmp_path)
        monkeypatch.setattr(services, "free_port", lambda: gateway_port)
        gateway = Service("gateway", otel_env(analyzer.http, str(chains), "probe-gateway", BACKEND_URL=backend.url), tmp_path)
        try:
            def health(**params):
                return api.get("/api/v1/chains/B3/health", params=params).json()

            # a few probe runs whose traces arrived (up = its trace came with both services)
            wait_for(lambda: sum(r["status"] == "up" for r in health()["probe"]["recent"]) >= 2, 60, "two probe runs up")
            for _ in range(REAL):  # the user's requests: no baggage, no X-Chain-ID
                assert httpx.post(gateway.url + "/api/v1/trading/orders", json={"symbol": "EURUSD"}, timeout=10).status_code == 200
            wait_for(lambda: health()["traces"] == REAL, 30, f"the {REAL} real traces stored")
            until = int(time.time()) + 1
            mixed = health(include_synthetic="true")
            assert mixed["traces"] > REAL  # the probe's traces are there, counted only when asked for
            real = health()
            assert real["traces"] == REAL and real["sla_compliance"] == 1.0
            calls = {s["service"]: s["calls"] for s in real["services"]}
            mixed_calls = {s["service"]: s["calls"] for s in mixed["services"]}
            assert set(calls) == {"probe-gateway", "probe-backend"}
            assert all(mixed_calls[s] > calls[s] for s in calls), (calls, mixed_calls)
            assert real["drift"]["drifted"] is False and real["drift"]["analysed_traces"] == REAL

            window = {"since": since, "until": until}
            overview = api.get("/api/v1/analytics/chains/health/overview", params=window).json()
            assert next(c for c in overview["chains"] if c["chain"] == "B3")["traces"] == REAL
            overview = api.get("/api/v1/analytics/chains/health/overview", params={**window, "include_synthetic": True}).json()
            assert next(c for c in overview["chains"] if c["chain"] == "B3")["traces"] > REAL
            assert api.get("/api/v1/chains/B3/bottlenecks", params=window).json()["traces"] == REAL
            assert api.get("/api/v1/chains/B3/bottlenecks", params={**window, "include_synthetic": True}).json()["traces"] > REAL
            perf = api.get("/api/v1/analytics/performance/real-time", params=window).json()
            assert next(c for c in perf["chains"] if c["chain"] == "B3")["traces"] == REAL
            # /metrics: REAL traces over its 5-minute window, whatever the probe sent meanwhile
            metrics = api.get("/metrics").text
            assert f'chainotel_chain_throughput_per_minute{{category="service_communication",chain="B3"}} {REAL / 5}' in metrics
        finally:
            gateway.stop()
            backend.stop()
