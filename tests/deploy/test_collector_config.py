"""The Collector configurations: pipelines name defined components; the drop-in merges as documented."""

from __future__ import annotations

import copy

import pytest

from .stackcheck import collector_problems, confmap_merge, expand_env, exporter_targets, load

FULL = "collector-config/otel-collector.yaml"
DROP_IN = "collector-config/chainotel-exporter.yaml"
K8S = "deploy/k8s/base/otel-collector.yaml"

# A typical user configuration the drop-in is merged into: OTLP in, traces to Tempo.
USER_CONFIG = {
    "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"}}}},
    "processors": {"batch": {}},
    "exporters": {"otlp/tempo": {"endpoint": "tempo:4317", "tls": {"insecure": True},
                                 "retry_on_failure": {"enabled": True}, "sending_queue": {"enabled": True}}},
    "service": {"pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["otlp/tempo"]}}},
}


@pytest.mark.parametrize("path", [FULL, K8S])
def test_full_pipeline_is_valid(path):
    cfg = load(path)
    assert collector_problems(cfg) == []
    traces = cfg["service"]["pipelines"]["traces"]
    assert traces["processors"] == ["memory_limiter", "batch"]
    assert set(traces["exporters"]) == {"otlp/jaeger", "otlphttp/chainotel"}


def test_k8s_copy_is_the_same_configuration():
    """The Deployment sets the variables; the file itself is the compose one (kustomize needs a copy)."""
    assert load(FULL) == load(K8S)


@pytest.mark.parametrize("breakage, expected", [
    (lambda c: c["service"]["pipelines"]["traces"]["exporters"].append("otlphttp/typo"), "'otlphttp/typo' is not defined"),
    (lambda c: c["processors"].pop("batch"), "processor 'batch' is not defined"),
    (lambda c: c["service"]["pipelines"]["traces"].update(receivers=[]), "no receivers"),
    (lambda c: c["service"]["pipelines"]["traces"].update(processors=["batch", "memory_limiter"]), "memory_limiter must be the first"),
    (lambda c: c["exporters"]["otlphttp/chainotel"].pop("sending_queue"), "sending_queue not enabled"),
    (lambda c: c["exporters"]["otlp/jaeger"]["retry_on_failure"].update(enabled=False), "retry_on_failure not enabled"),
    (lambda c: c["service"].update(extensions=["zpages"]), "undefined extension 'zpages'"),
    (lambda c: c["exporters"].update({"otlphtp/x": {}}), "unknown component type 'otlphtp'"),
])
def test_checker_catches_a_broken_pipeline(breakage, expected):
    cfg = copy.deepcopy(load(FULL))
    breakage(cfg)
    assert any(expected in p for p in collector_problems(cfg)), collector_problems(cfg)


def test_confmap_merge_rule():
    """Maps merge recursively, lists and scalars of the later file win (the Collector's default)."""
    merged = confmap_merge({"a": {"b": 1, "l": [1, 2]}, "s": "x"}, {"a": {"c": 2, "l": [3]}, "s": "y"})
    assert merged == {"a": {"b": 1, "c": 2, "l": [3]}, "s": "y"}


def test_drop_in_merged_with_a_user_config_keeps_their_pipeline_and_adds_ours():
    merged = expand_env(confmap_merge(USER_CONFIG, load(DROP_IN)), {"CHAINOTEL_ANALYZER_ENDPOINT": "http://chainotel:4318"})
    assert collector_problems(merged) == []
    pipelines = merged["service"]["pipelines"]
    assert pipelines["traces"] == USER_CONFIG["service"]["pipelines"]["traces"]  # untouched
    ours = [p for p in pipelines.values() if "otlphttp/chainotel" in p["exporters"]]
    assert len(ours) == 1 and ours[0]["receivers"] == ["otlp"]
    assert exporter_targets(merged)["otlphttp/chainotel"] == ("chainotel", 4318)


def test_drop_in_endpoint_comes_from_the_environment():
    assert load(DROP_IN)["exporters"]["otlphttp/chainotel"]["endpoint"] == "${env:CHAINOTEL_ANALYZER_ENDPOINT:-http://analyzer:4318}"


# Every address of the full pipeline: (where in the file, variable, docker-compose default).
ENDPOINTS = [
    (("extensions", "health_check"), "OTEL_COLLECTOR_HEALTH_ENDPOINT", "0.0.0.0:13133"),
    (("receivers", "otlp", "protocols", "grpc"), "OTEL_COLLECTOR_GRPC_ENDPOINT", "0.0.0.0:4317"),
    (("receivers", "otlp", "protocols", "http"), "OTEL_COLLECTOR_HTTP_ENDPOINT", "0.0.0.0:4318"),
    (("exporters", "otlp/jaeger"), "JAEGER_OTLP_ENDPOINT", "jaeger:4317"),
    (("exporters", "otlphttp/chainotel"), "CHAINOTEL_ANALYZER_ENDPOINT", "http://analyzer:4318"),
]


@pytest.mark.parametrize("path", [FULL, K8S])
@pytest.mark.parametrize("where, variable, default", ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
def test_every_address_is_a_variable_with_the_compose_default(path, where, variable, default):
    node = load(path)
    for key in where:
        node = node[key]
    assert node["endpoint"] == f"${{env:{variable}:-{default}}}"
    assert expand_env(node, {})["endpoint"] == default
    assert expand_env(node, {variable: "127.0.0.1:1"})["endpoint"] == "127.0.0.1:1"


def test_adding_to_the_users_traces_pipeline_would_drop_their_exporters():
    """Why the drop-in uses its own pipeline: a list in a later file replaces the user's list."""
    naive = {"service": {"pipelines": {"traces": {"exporters": ["otlphttp/chainotel"]}}}}
    merged = confmap_merge(USER_CONFIG, naive)
    assert merged["service"]["pipelines"]["traces"]["exporters"] == ["otlphttp/chainotel"]


def test_drop_in_needs_the_users_otlp_receiver():
    user = copy.deepcopy(USER_CONFIG)
    user["receivers"] = {"otlp/custom": user["receivers"].pop("otlp")}
    user["service"]["pipelines"]["traces"]["receivers"] = ["otlp/custom"]
    merged = confmap_merge(user, load(DROP_IN))
    assert any("receiver 'otlp' is not defined" in p for p in collector_problems(merged))
