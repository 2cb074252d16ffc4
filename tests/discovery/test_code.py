"""Discovery from code (``ast``, nothing imported or run): the demo's ``examples/`` give the six demo
flows with the services and calls their code makes — the same as discovery from their traffic —; the
services written for this test (``services/``: APIRouter prefixes, base_url clients, environment
URLs resolved through docker-compose.yml, ports, OTEL_SERVICE_NAME, folder names, a WebSocket entry)
give exactly the expected chains with ``file:line`` evidence; the CLI prints a valid catalog."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from chainotel.catalog import default_catalog
from chainotel.cli.demo import free_port
from chainotel.discovery.code import DEFAULT_SLA_MS, scan_source
from tests.discovery.demo_flows import DEMO_FLOWS

ROOT = Path(__file__).resolve().parents[2]
SERVICES = Path(__file__).parent / "services"
CHAINOTEL = str(Path(sys.executable).with_name("chainotel"))


def _by_entry(doc: dict) -> dict:
    return {(p["definition"]["match"][0]["service"], p["definition"]["match"][0]["route"]): p for p in doc["proposals"]}


def test_examples_give_the_demo_flows_as_their_traffic_does():
    doc = scan_source(ROOT / "examples")
    assert doc["libraries"] == ["demo_service.py", "model_endpoint.py"] and doc["compose"] == str(ROOT / "docker-compose.yml")
    catalog = default_catalog()
    found = {}
    for p in doc["proposals"]:
        rule = p["definition"]["match"][0]
        attributes = {"http.route": rule["route"], **({"http.request.method": rule["method"]} if "method" in rule else {})}
        chain = catalog.match(service=rule["service"], span_name=rule["route"], attributes=attributes)
        found[chain.id if chain else None] = p
    assert set(found) == set(DEMO_FLOWS)  # every entry point is a demo flow, and every flow is found
    for chain, (services, calls) in DEMO_FLOWS.items():
        d = found[chain]["definition"]
        assert set(d["expected_services"]) == services, chain
        assert set(d["edges"]) == calls, chain
        assert found[chain]["evidence"]["service_name_from"] == "OTEL_SERVICE_NAME in compose"
        assert found[chain]["evidence"]["unresolved_calls"] == []
    assert found["C1"]["definition"]["category"] == "user_experience" and "method" not in found["C1"]["definition"]["match"][0]
    # the helper's service-name argument (downstream("data-bridge", 8001)) is named as such in the evidence
    assert any("service name 'trading-engine'" in c["how"] for c in found["B3"]["evidence"]["calls"])


def test_services_written_for_the_test_are_recovered_exactly():
    doc = scan_source(SERVICES)
    got = _by_entry(doc)
    assert set(got) == {("order-service", "/api/v1/orders"), ("order-service", "/api/v1/orders/{order_id}"),
                        ("notifier", "/ws/feed")}  # /reserve, /charge and /entries are called by others
    orders = got[("order-service", "/api/v1/orders")]
    d = orders["definition"]
    assert d["match"] == [{"service": "order-service", "route": "/api/v1/orders", "method": "POST"}]  # both prefixes
    assert d["expected_services"] == ["order-service", "payment-service", "inventory", "ledger"]
    assert set(d["edges"]) == {"order-service -> inventory", "order-service -> payment-service", "payment-service -> ledger"}
    assert d["max_duration_ms"] == DEFAULT_SLA_MS and d["category"] == "service_communication"
    how = {c["callee"]: c["how"] for c in orders["evidence"]["calls"]}
    assert how["inventory"] == "$INVENTORY_URL = http://inventory:8000 (compose environment of order-service)"
    assert how["payment-service"] == "$PAYMENTS_URL default http://payments:9000 in the code"
    assert how["ledger"] == "URL http://127.0.0.1:9100"  # a loopback URL resolved by its compose port
    assert orders["evidence"]["locations"][0] == "orders/app.py:16"
    assert sorted(orders["evidence"]["locations"][1:]) == ["orders/app.py:18", "orders/app.py:19", "payments/main.py:11"]
    assert orders["confidence"] == 0.9  # every call resolved, apps known, names from compose
    ws = got[("notifier", "/ws/feed")]
    assert ws["definition"]["category"] == "user_experience" and ws["evidence"]["service_name_from"] == "folder name"
    assert ws["evidence"]["unresolved_calls"] == ["notifier/main.py:17"] and ws["confidence"] < orders["confidence"]
    assert sorted(p["definition"]["id"] for p in doc["proposals"]) == ["B1", "B2", "C1"]


def test_unreadable_files_are_skipped_and_taken_ids_avoided(tmp_path):
    copy = tmp_path / "src"
    shutil.copytree(SERVICES, copy)
    (copy / "orders" / "broken.py").write_text("def oops(:\n")
    (copy / "orders" / "latin1.py").write_bytes(b"x = '\xe9'\n")
    doc = scan_source(copy, taken_ids=["B1", "B2", "C1"])
    assert {p["definition"]["id"] for p in doc["proposals"]} == {"B3", "B4", "C2"}
    assert set(_by_entry(doc)) == set(_by_entry(scan_source(SERVICES)))


def test_cli_prints_a_catalog_that_validates(tmp_path):
    out = subprocess.run([CHAINOTEL, "discover", "--source", str(SERVICES), "--analyzer", f"http://127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "# from orders/app.py:16" in out.stdout and "not reachable" in out.stdout
    (tmp_path / "code.yaml").write_text(out.stdout)
    check = subprocess.run([CHAINOTEL, "catalog", "validate", str(tmp_path / "code.yaml")], capture_output=True, text=True,
                           timeout=60)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert len(yaml.safe_load(out.stdout)["chains"]) == 3
    missing = subprocess.run([CHAINOTEL, "discover", "--source", str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "nope" in missing.stderr
