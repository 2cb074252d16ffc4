"""deploy/k8s: the kustomization's resources exist and parse; references between objects resolve."""

from __future__ import annotations

import copy
from urllib.parse import urlsplit

import pytest

from .stackcheck import ROOT, analyzer_variables, container_env, k8s_problems, kustomize_objects

BASE = ROOT / "deploy" / "k8s" / "base"


@pytest.fixture(scope="module")
def parsed():
    return kustomize_objects(BASE)


def test_kustomization_resources_exist_and_parse(parsed):
    objects, configmaps, problems = parsed
    assert problems == []
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {("Deployment", "chainotel-analyzer"), ("Service", "chainotel-analyzer"), ("ConfigMap", "chainotel-analyzer"),
            ("Deployment", "otel-collector"), ("Service", "otel-collector")} <= kinds
    assert "otel-collector.yaml" in configmaps["otel-collector-config"]


def test_references_resolve(parsed):
    objects, configmaps, _ = parsed
    assert k8s_problems(objects, configmaps) == []


def test_collector_sends_to_the_analyzer_service(parsed):
    objects, _, _ = parsed
    endpoint = urlsplit(container_env(objects, "otel-collector")["CHAINOTEL_ANALYZER_ENDPOINT"])
    service = next(o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == endpoint.hostname)
    assert endpoint.port in {p["port"] for p in service["spec"]["ports"]}


def _deployment(objects, name):
    return next(o for o in objects if o.get("kind") == "Deployment" and o["metadata"]["name"] == name)


def _analyzer(objects):
    return _deployment(objects, "chainotel-analyzer")["spec"]["template"]["spec"]["containers"][0]


def test_analyzer_reads_every_chainotel_variable_of_its_container(parsed):
    """ConfigMap keys and env names reach the analyzer; each must be an AnalyzerSettings field
    (k8s_problems checks it, test_references_resolve runs it on the real files)."""
    objects, configmaps, _ = parsed
    names = configmaps["chainotel-analyzer"] | {e["name"] for e in _analyzer(objects).get("env", [])}
    assert {n for n in names if n.startswith("CHAINOTEL_")} <= analyzer_variables()
    assert "CHAINOTEL_JAEGER_UI_URL" in names


def test_two_analyzer_pods_rolled_without_a_gap_and_not_restarted_for_a_clickhouse_outage(parsed):
    """Retry deduplication and registry writes are ClickHouse's (several analyzers share a server):
    two replicas, rolling updates that start the new pod before stopping an old one. /health is 503
    while ClickHouse is down: readiness only, liveness is a TCP check."""
    objects, _, _ = parsed
    deployment = _deployment(objects, "chainotel-analyzer")
    assert deployment["spec"]["replicas"] == 2
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate" and strategy["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    container = _analyzer(objects)
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    for probe in ("livenessProbe", "startupProbe"):
        assert "httpGet" not in container[probe] and container[probe]["tcpSocket"]["port"] == "http", probe


@pytest.mark.parametrize("breakage, expected", [
    (lambda o, c: _deployment(o, "otel-collector")["spec"]["template"]["spec"]["volumes"][0]["configMap"].update(name="otel-config"), "ConfigMap otel-config does not exist"),
    (lambda o, c: c["otel-collector-config"].discard("otel-collector.yaml"), "needs key otel-collector.yaml"),
    (lambda o, c: c.pop("chainotel-analyzer"), "envFrom ConfigMap chainotel-analyzer does not exist"),
    (lambda o, c: _deployment(o, "chainotel-analyzer")["spec"]["template"]["metadata"]["labels"].update({"app.kubernetes.io/name": "x"}), "selects no Deployment"),
    (lambda o, c: _deployment(o, "chainotel-analyzer")["spec"]["template"]["spec"]["containers"][0]["ports"][1].update(name="web"), "targetPort http is no container port"),
    (lambda o, c: _deployment(o, "chainotel-analyzer")["spec"]["template"]["spec"]["containers"][0].setdefault("env", []).append(
        {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "chainotel-analyzer", "key": "NOPE"}}}), "needs key NOPE"),
    (lambda o, c: c["chainotel-analyzer"].add("CHAINOTEL_JAEGER_URL"), "CHAINOTEL_JAEGER_URL is not read by the analyzer"),
    (lambda o, c: _analyzer(o)["env"].append({"name": "CHAINOTEL_CLUSTER", "value": "x"}), "CHAINOTEL_CLUSTER is not read by the analyzer"),
])
def test_checker_catches_broken_references(parsed, breakage, expected):
    objects, configmaps, _ = copy.deepcopy(parsed)
    breakage(objects, configmaps)
    problems = k8s_problems(objects, configmaps)
    assert any(expected in p for p in problems), problems


def test_missing_resource_file_is_reported(tmp_path):
    for f in BASE.iterdir():
        (tmp_path / f.name).write_text(f.read_text())
    (tmp_path / "analyzer-service.yaml").unlink()
    _, _, problems = kustomize_objects(tmp_path)
    assert problems == ["kustomization resource analyzer-service.yaml does not exist"]
