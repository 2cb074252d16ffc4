"""The rollout and rollback switches, each on a running service (real processes under
``opentelemetry-instrument``, spans exported to the test's OTLP sink), and the start-up line
naming the instrumentations loaded and skipped."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from chainotel import attributes as attr
from chainotel.ids import parse_instance_id
from tests.distro.services import APPS, otel_env

SERVER = 2
CHAIN_KEYS = (attr.CHAIN_ID, attr.CHAIN_CATEGORY, attr.CHAIN_NAME, attr.CHAIN_INSTANCE_ID)


def pair(start, sink, prefix: str, **extra):
    backend = start("backend", otel_env(sink, f"{prefix}-backend", **extra))
    gateway = start("gateway", otel_env(sink, f"{prefix}-gateway", BACKEND_URL=backend.url, **extra))
    return gateway, backend


def test_otel_sdk_disabled_turns_tracing_off_and_the_service_runs_unchanged(sink, start):
    gateway, _ = pair(start, sink, "test-off", OTEL_SDK_DISABLED="true")
    chain = uuid.uuid4()
    response = httpx.get(f"{gateway.url}/api/v1/trading/orders", headers={"X-Chain-ID": str(chain)})
    assert response.status_code == 200
    assert response.json()["backend"]["headers"]["host"]  # the call downstream still happens
    assert "x-chain-id" not in response.headers  # no span, so no chain instance to report
    plain = httpx.get(f"{gateway.url}/plain")
    assert plain.status_code == 200
    time.sleep(1.0)  # 20 schedule delays of the exporters: nothing may arrive
    assert not [s for s in sink.spans if s["service"].startswith("test-off")]
    assert "Traceback" not in gateway.log()


def test_tagging_disabled_keeps_tracing_and_x_chain_id(sink, start):
    gateway, _ = pair(start, sink, "test-untagged", CHAINOTEL_TAGGING_ENABLED="false")
    chain = uuid.uuid4()
    response = httpx.get(f"{gateway.url}/api/v1/trading/orders", headers={"X-Chain-ID": str(chain)})
    assert response.status_code == 200
    assert response.headers["x-chain-id"] == str(chain)
    sent = response.json()["backend"]["headers"]
    assert sent["x-chain-id"] == str(chain) and "chain.id" not in sent.get("baggage", "")

    def both(spans):
        return {"test-untagged-gateway", "test-untagged-backend"} <= {s["service"] for s in spans if s["kind"] == SERVER}

    spans = sink.wait_trace(chain.int, both)
    assert both(spans), spans
    assert all(key not in s["attributes"] for s in spans for key in CHAIN_KEYS), spans


def test_a_chain_with_enabled_false_is_not_tagged_and_startup_names_instrumentations(sink, start, tmp_path):
    service = start(
        "gateway",
        otel_env(sink, "test-rollout", CHAINOTEL_CATALOG=str(APPS / "chains_rollout.yaml"),
                 OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="requests"),
        pythonpath=fake_instrumentations(tmp_path),
    )
    off = httpx.get(f"{service.url}/api/v1/trading/orders")  # B3: enabled: false
    on = httpx.get(f"{service.url}/plain")  # B4: still tagged
    off_spans = sink.wait_trace(parse_instance_id(off.headers["x-chain-id"]), lambda sp: len(sp) >= 3)
    on_spans = sink.wait_trace(parse_instance_id(on.headers["x-chain-id"]), lambda sp: len(sp) >= 3)
    assert off_spans and all(attr.CHAIN_ID not in s["attributes"] for s in off_spans), off_spans
    assert on_spans and all(s["attributes"].get(attr.CHAIN_ID) == "B4" for s in on_spans), on_spans

    lines = [line for line in service.log().splitlines() if line.startswith("chainotel: instrumentations loaded:")]
    assert len(lines) == 1, service.log()
    (line,) = lines
    loaded, skipped = line.split("; skipped: ")
    assert "fastapi" in loaded and "httpx" in loaded
    assert "fake_out_of_range (installed fastapi " in skipped
    assert "is outside the instrumented range fastapi<0.1)" in skipped
    assert "fake_absent (no-such-library>=1 is not installed)" in skipped
    assert "requests (disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS)" in skipped


def test_startup_log_can_be_switched_off(sink, start):
    service = start("backend", otel_env(sink, "test-quiet", CHAINOTEL_STARTUP_LOG="false"))
    assert httpx.get(f"{service.url}/orders").status_code == 200
    assert "chainotel: instrumentations" not in service.log()


def fake_instrumentations(tmp: Path) -> str:
    """A directory for PYTHONPATH with one installed distribution declaring two instrumentors:
    one for a library version that is not installed (fastapi < 0.1), one for an absent library."""
    info = tmp / "fake_instrumentations-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-instrumentations\nVersion: 1.0\n"
        "Provides-Extra: instruments\n"
        'Requires-Dist: fastapi<0.1; extra == "instruments"\n'
    )
    (info / "entry_points.txt").write_text("[opentelemetry_instrumentor]\nfake_out_of_range = fake_none:Instrumentor\n")
    absent = tmp / "fake_absent-1.0.dist-info"
    absent.mkdir()
    (absent / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: fake-absent\nVersion: 1.0\nProvides-Extra: instruments\n"
        'Requires-Dist: no-such-library>=1; extra == "instruments"\n'
    )
    (absent / "entry_points.txt").write_text("[opentelemetry_instrumentor]\nfake_absent = fake_none:Instrumentor\n")
    return str(tmp)
