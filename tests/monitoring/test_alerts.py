"""Alert evaluation in a real analyzer process on chDB: rules from the catalog file fire and resolve
with OTLP traffic, state survives a restart, resolve by hand through the API and `chainotel alerts`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.monitoring.traffic import send, wait_for
from tests.processes import Analyzer

CHAINOTEL = str(Path(sys.executable).with_name("chainotel"))
CATALOG = """chains:
  - id: B3
    name: Trading API request
    category: service_communication
    max_duration_ms: 500
    alerts: {window: 60s, for: 1s, keep_firing_for: 0.5s, sla_compliance_below: 0.9, error_rate_above: null}
  - id: B4
    name: Orders
    category: service_communication
    max_duration_ms: 1000
    alerts: {window: 60s, for: 0s, error_rate_above: 0.2, sla_compliance_below: null, severity: critical}
"""


def alerts(base: str, **params) -> list[dict]:
    r = httpx.get(base + "/api/v1/alerts", params=params, timeout=10)
    r.raise_for_status()
    return r.json()["alerts"]


def cli(*args: str) -> str:
    env = {**os.environ, "COLUMNS": "300"}
    done = subprocess.run([CHAINOTEL, *args], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_rules_fire_resolve_survive_a_restart_and_resolve_by_hand(tmp_path):
    catalog = tmp_path / "chains.yaml"
    catalog.write_text(CATALOG)
    env = {"CHAINOTEL_CATALOG": str(catalog), "CHAINOTEL_ALERT_EVAL_INTERVAL_S": "0.3"}
    analyzer = Analyzer(tmp_path / "db", env, grpc=False).start()
    try:
        base = analyzer.http
        send(base, "B3", 5, 800)  # every trace past the 500 ms SLA
        send(base, "B4", 5, 20, error=True, services=("gateway", "payments"))
        sla = wait_for(lambda: [a for a in alerts(base, state="firing", chain="B3")], 30, "B3 firing")[0]
        assert sla["alertname"] == "ChainSLAComplianceLow" and sla["value"] == 0.0 and sla["threshold"] == 0.9
        assert sla["fired_at"] > sla["active_at"]  # pending first, for `for`
        assert len(sla["trace_id"]) == 32 and sla["resolved_at"] is None and "500 ms" in sla["summary"]
        err = wait_for(lambda: alerts(base, state="firing", chain="B4"), 30, "B4 firing")[0]
        assert (err["alertname"], err["service"], err["severity"]) == ("ChainErrorRateHigh", "payments", "critical")
        assert err["fired_at"] == err["active_at"]  # for: 0s fires at once

        # by hand, through the CLI: resolved while the errors go on, no new alert
        out = cli("alerts", "resolve", err["alert_id"], "--note", "payments maintenance", "--analyzer", base)
        assert "resolved" in out and "payments maintenance" in out
        r = httpx.post(f"{base}/api/v1/alerts/{err['alert_id']}/resolve", json={"note": "again"})
        assert r.status_code == 409
        assert httpx.post(f"{base}/api/v1/alerts/{'0' * 32}/resolve", json={"note": "x"}).status_code == 404
        assert httpx.post(f"{base}/api/v1/alerts/nope/resolve", json={"note": "x"}).status_code == 422
        assert httpx.post(f"{base}/api/v1/alerts/{'0' * 32}/resolve", json={"note": ""}).status_code == 422
        send(base, "B4", 5, 20, error=True, services=("gateway", "payments"))

        analyzer.stop()
        analyzer = Analyzer(tmp_path / "db", env, grpc=False).start()
        base = analyzer.http
        # state survived: the same firing alert, the manual resolution holds (no new B4 alert)
        wait_for(lambda: httpx.get(base + "/metrics").text.count("chainotel_alert_evaluations_total 3"), 30, "3 evaluations")
        firing = alerts(base, state="firing")
        assert [a["alert_id"] for a in firing] == [sla["alert_id"]]
        b4 = alerts(base, chain="B4")
        assert [(a["alert_id"], a["state"], a["resolved_by"], a["note"]) for a in b4] == [
            (err["alert_id"], "resolved", "manual", "payments maintenance")]

        # healthy traffic: 60 fast traces put 92 % of the window within the SLA -> resolved
        send(base, "B3", 60, 50)
        done = wait_for(lambda: [a for a in alerts(base, state="resolved", chain="B3")], 30, "B3 resolved")[0]
        assert done["alert_id"] == sla["alert_id"] and done["resolved_by"] == "condition" and done["resolved_at"]
        listed = json.loads(cli("alerts", "--state", "resolved", "--json", "--analyzer", base))["alerts"]
        assert {a["alert_id"] for a in listed} == {sla["alert_id"], err["alert_id"]}
        assert "ChainSLAComplianceLow" in cli("alerts", "--analyzer", base)
        assert httpx.get(base + "/api/v1/alerts", params={"state": "bogus"}).status_code == 422
    finally:
        analyzer.stop()
