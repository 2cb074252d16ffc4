"""docker-compose.yml agrees with itself, the Collector config, the Dockerfile and examples/."""

from __future__ import annotations

import copy

import pytest

from .stackcheck import analyzer_variables, compose_problems, expand_env, exporter_targets, load, service_ports

COMPOSE = "docker-compose.yml"
COLLECTOR = "collector-config/otel-collector.yaml"
DEMO = ["api-gateway", "data-bridge", "ai-provider", "trading-engine", "database-service"]


@pytest.fixture
def compose():
    return copy.deepcopy(load(COMPOSE))


@pytest.fixture
def collector():
    """The Collector config as compose runs it: no override variables set, so every default applies."""
    return expand_env(load(COLLECTOR), {})


def test_compose_is_consistent(compose, collector):
    assert compose_problems(compose, collector) == []


def test_stack_has_every_part(compose):
    assert {"clickhouse", "jaeger", "otel-collector", "analyzer", "traffic", *DEMO} <= compose["services"].keys()
    assert compose["services"]["jaeger"]["image"].startswith("jaegertracing/jaeger:2.")
    assert "16686:16686" in compose["services"]["jaeger"]["ports"]
    assert compose["services"]["analyzer"]["environment"]["CHAINOTEL_CLICKHOUSE_URL"].startswith("http://")
    assert ":8123" in compose["services"]["analyzer"]["environment"]["CHAINOTEL_CLICKHOUSE_URL"]


def test_analyzer_reads_every_chainotel_variable_compose_sets(compose):
    """Each CHAINOTEL_* key of the analyzer service is a field of chainotel_analyzer.settings.AnalyzerSettings
    (read from the class, not a copied list); the compose check reports the others."""
    env = compose["services"]["analyzer"]["environment"]
    assert {k for k in env if k.startswith("CHAINOTEL_")} <= analyzer_variables()
    assert {"CHAINOTEL_CLICKHOUSE_URL", "CHAINOTEL_JAEGER_UI_URL"} <= env.keys()


def test_collector_exports_to_jaeger_and_the_analyzer(compose, collector):
    targets = exporter_targets(collector)
    assert targets["otlp/jaeger"] == ("jaeger", 4317)
    assert targets["otlphttp/chainotel"][0] == "analyzer"
    assert targets["otlphttp/chainotel"][1] in service_ports(compose, "analyzer")


def test_demo_services_run_zero_code_under_opentelemetry_instrument(compose):
    ports = {"api-gateway": 8000, "data-bridge": 8001, "ai-provider": 8005, "trading-engine": 8007, "database-service": 8008}
    for name in DEMO:
        svc = compose["services"][name]
        assert svc["command"][0] == "opentelemetry-instrument", name
        env = svc["environment"]
        assert env["OTEL_SERVICE_NAME"] == name
        assert env["OTEL_PYTHON_DISTRO"] == env["OTEL_PYTHON_CONFIGURATOR"] == "chainotel"
        assert int(env["UVICORN_PORT"]) == ports[name]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"


@pytest.mark.parametrize("breakage, expected", [
    (lambda c, k: c["services"]["analyzer"]["environment"].update(CHAINOTEL_CLICKHOUSE_URL="http://clickhouse:9999/x"), "does not listen on 9999"),
    (lambda c, k: c["services"]["api-gateway"]["environment"].update(DEMO_AI_PROVIDER_URL="http://ai-provder:8005"), "names no compose service"),
    (lambda c, k: c["services"]["data-bridge"]["environment"].update(UVICORN_PORT="8101"), "data-bridge does not listen on 8001"),
    (lambda c, k: k["exporters"]["otlp/jaeger"].update(endpoint="jaeger:14250"), "jaeger does not listen on 14250"),
    (lambda c, k: k["exporters"]["otlphttp/chainotel"].update(endpoint="http://analyser:4318"), "'analyser' is not a compose service"),
    (lambda c, k: c["services"]["jaeger"].update(image="jaegertracing/jaeger:latest"), "not pinned"),
    (lambda c, k: c["services"]["clickhouse"].pop("healthcheck"), "clickhouse has no healthcheck"),
    (lambda c, k: c["services"]["otel-collector"].update(ports=["4319:4319"]), "container port 4319 nobody listens on"),
    (lambda c, k: c["services"]["otel-collector"].update(volumes=["./collector-config/otel.yaml:/etc/otelcol-contrib/config.yaml:ro"]), "does not exist"),
    (lambda c, k: c["services"]["ai-provider"].update(command=["opentelemetry-instrument", "uvicorn", "--app-dir", "/app/examples", "ai_provder:app"]), "examples/ai_provder.py does not exist"),
    (lambda c, k: c["services"]["analyzer"]["build"].update(target="analyser"), "no stage 'analyser'"),
    (lambda c, k: c.pop("volumes"), "named volume 'clickhouse-data' is not declared"),
    (lambda c, k: c["services"]["analyzer"]["environment"].update(CHAINOTEL_RETENTION_DAY="7"),
     "analyzer: CHAINOTEL_RETENTION_DAY is not read by the analyzer"),
])
def test_checker_catches_a_broken_compose_file(compose, collector, breakage, expected):
    breakage(compose, collector)
    problems = compose_problems(compose, collector)
    assert any(expected in p for p in problems), problems
