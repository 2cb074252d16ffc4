"""A real Prometheus (Debian's package) scrapes the analyzer's /metrics and evaluates the example
rules shipped in deploy/prometheus/ (their `for` shortened to 0s); promtool/amtool accept the examples."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.monitoring.receivers import needs_prometheus, prometheus
from tests.monitoring.traffic import send, wait_for
from tests.processes import running

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
CATALOG = """chains:
  - id: B3
    name: Trading API request
    category: service_communication
    max_duration_ms: 500
"""


@pytest.mark.parametrize(("tool", "args"), [
    ("promtool", ["check", "rules", str(DEPLOY / "chainotel-rules.yml")]),
    ("amtool", ["check-config", str(DEPLOY / "alertmanager.yml")]),
])  # fmt: skip
def test_example_configs_are_valid(tool, args):
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed (Debian's prometheus / prometheus-alertmanager packages)")
    done = subprocess.run([path, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_prometheus
def test_prometheus_scrapes_metrics_and_fires_the_example_rule(tmp_path):
    catalog = tmp_path / "chains.yaml"
    catalog.write_text(CATALOG)
    rules = yaml.safe_load((DEPLOY / "chainotel-rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = "0s"
    (tmp_path / "chainotel-rules.yml").write_text(yaml.safe_dump(rules))
    env = {"CHAINOTEL_CATALOG": str(catalog), "CHAINOTEL_ALERT_EVAL_INTERVAL_S": "0.5"}
    with running(tmp_path / "db", env, grpc=False) as analyzer:
        send(analyzer.http, "B3", 4, 800)
        send(analyzer.http, "B3", 6, 50)
        page = httpx.get(analyzer.http + "/metrics").text
        families = {f.name: f for f in text_string_to_metric_families(page)}
        sla = {s.labels["chain"]: s.value for s in families["chainotel_chain_sla_compliance_ratio"].samples}
        assert sla == {"B3": 0.6}
        p95 = next(s for s in families["chainotel_chain_duration_p95_seconds"].samples if s.labels["chain"] == "B3")
        assert 0.7 < p95.value <= 0.8 and p95.labels["category"] == "service_communication"
        assert families["chainotel_ingest_spans"].samples[0].value == 20
        assert any(s.name == "chainotel_insert_duration_seconds_count" for s in families["chainotel_insert_duration_seconds"].samples)
        target = analyzer.http.removeprefix("http://")
        config = f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [chainotel-rules.yml]
scrape_configs:
  - job_name: chainotel-analyzer
    static_configs: [{{targets: ["{target}"]}}]
"""
        with prometheus(tmp_path, config) as prom:
            def firing():
                alerts = httpx.get(prom + "/api/v1/alerts", timeout=5).json()["data"]["alerts"]
                return [a for a in alerts if a["labels"]["alertname"] == "ChainSLAComplianceLowPrometheus"
                        and a["state"] == "firing"]  # fmt: skip

            alert = wait_for(firing, 30, "Prometheus fires the example SLA rule", step_s=0.5)[0]
            assert alert["labels"]["chain"] == "B3" and float(alert["value"]) == 0.6
            q = httpx.get(prom + "/api/v1/query", params={"query": 'chainotel_chain_error_ratio{chain="B3"}'}).json()
            assert q["data"]["result"][0]["value"][1] == "0"
