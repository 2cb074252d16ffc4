"""Alerts reach a real Alertmanager (Debian's prometheus-alertmanager) through its API v2 and are routed
to a webhook receiver; the generic webhook gets Alertmanager's webhook JSON, after a retry."""

from __future__ import annotations

from tests.monitoring.receivers import WebhookReceiver, alertmanager, needs_alertmanager
from tests.monitoring.traffic import send, wait_for
from tests.processes import running

pytestmark = needs_alertmanager

CATALOG = """chains:
  - id: B3
    name: Trading API request
    category: service_communication
    max_duration_ms: 500
    alerts: {window: 60s, for: 1s, keep_firing_for: 0.5s, sla_compliance_below: 0.9, error_rate_above: null}
"""


def test_slow_traffic_fires_at_alertmanager_and_healthy_traffic_resolves_it(tmp_path):
    catalog = tmp_path / "chains.yaml"
    catalog.write_text(CATALOG)
    with WebhookReceiver(fail_first=1) as hook, alertmanager(tmp_path, hook.url + "/am") as am:
        env = {"CHAINOTEL_CATALOG": str(catalog), "CHAINOTEL_ALERT_EVAL_INTERVAL_S": "0.3",
               "CHAINOTEL_ALERT_RESEND_INTERVAL_S": "1", "CHAINOTEL_ALERTMANAGER_URLS": am,
               "CHAINOTEL_ALERT_WEBHOOK_URLS": hook.url + "/direct",
               "CHAINOTEL_JAEGER_UI_URL": "http://jaeger.example:16686"}  # fmt: skip
        with running(tmp_path / "db", env, grpc=False) as analyzer:
            send(analyzer.http, "B3", 5, 800)

            # Alertmanager routed the firing alert to its webhook receiver
            def routed(status):
                return [a for body in hook.bodies("/am") for a in body["alerts"]
                        if a["status"] == status and a["labels"]["alertname"] == "ChainSLAComplianceLow"]  # fmt: skip

            fired = wait_for(lambda: routed("firing"), 30, "firing alert routed by Alertmanager")[0]
            assert fired["labels"] == {"alertname": "ChainSLAComplianceLow", "chain": "B3",
                                       "category": "service_communication", "severity": "warning"}  # fmt: skip
            ann = fired["annotations"]
            assert "500 ms SLA" in ann["summary"] and "5 of 5 traces" in ann["description"]
            assert ann["console_url"].startswith(analyzer.http + "/ui/alerts?chain=B3")
            assert ann["jaeger_url"] == f"http://jaeger.example:16686/trace/{ann['trace_id']}"

            # the generic webhook: Alertmanager's webhook JSON, delivered after one 503 (retried)
            direct = wait_for(lambda: hook.bodies("/direct"), 30, "generic webhook delivery")[0]
            assert hook.refused == 1
            assert direct["version"] == "4" and direct["status"] == "firing"
            assert direct["alerts"][0]["labels"]["chain"] == "B3" and direct["alerts"][0]["fingerprint"]

            # healthy traffic resolves it; endsAt reaches Alertmanager, which sends the resolution
            send(analyzer.http, "B3", 60, 50)
            resolved = wait_for(lambda: routed("resolved"), 30, "resolved alert routed by Alertmanager")[0]
            assert resolved["endsAt"] > resolved["startsAt"] and not resolved["endsAt"].startswith("0001")
            assert wait_for(lambda: [b for b in hook.bodies("/direct") if b["status"] == "resolved"], 10, "webhook resolved")
