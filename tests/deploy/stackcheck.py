"""Static checks of the stack's configuration files (no Docker engine, Collector or cluster here).

Each function takes parsed YAML (plain dicts/lists) and returns a list of problems as readable
strings — empty when the file is consistent. The tests run them on the real files and on broken
copies, so every check is shown to fail when it should.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]

# Component types this stack uses, per Collector section (contrib build). `otlp`/`otlphttp` are the
# long-standing exporter type names (aliases of otlp_grpc/otlp_http since v0.144).
KNOWN_TYPES = {
    "receivers": {"otlp"},
    "processors": {"memory_limiter", "batch"},
    "exporters": {"otlp", "otlphttp", "otlp_grpc", "otlp_http", "debug"},
    "extensions": {"health_check"},
}

# Ports the third-party images listen on with their default configuration (their docs).
IMAGE_PORTS = {
    "clickhouse/clickhouse-server": {8123, 9000},
    "jaegertracing/jaeger": {4317, 4318, 16686, 13133, 5778, 9411},
}

_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load(path: Path | str) -> dict:
    """Parse one YAML file (relative paths are taken from the repository root)."""
    return yaml.safe_load((ROOT / path).read_text())


def load_all(path: Path | str) -> list[dict]:
    """Parse a multi-document YAML file."""
    return [d for d in yaml.safe_load_all((ROOT / path).read_text()) if d is not None]


# --- Collector ------------------------------------------------------------------------------------

def confmap_merge(base: dict, override: dict) -> dict:
    """Merge two Collector configurations as ``--config a.yaml --config b.yaml`` does.

    The Collector's confmap resolver merges maps key by key, recursively; any other value, lists
    included, given by the later file replaces the earlier one (confmap README, "Merging"; lists are
    only appended under the alpha feature gate ``confmap.enableMergeAppendOption``). Returns a new dict.
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = confmap_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def expand_env(value, env: dict[str, str]):
    """Expand ``${env:NAME}`` / ``${env:NAME:-default}`` in every string, like the Collector's env provider."""
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    if isinstance(value, str):
        return _ENV_REF.sub(lambda m: env.get(m.group(1), m.group(2) or ""), value)
    return value


def collector_problems(cfg: dict) -> list[str]:
    """Problems of one Collector configuration: undefined or unknown components in pipelines and
    service extensions, empty receivers/exporters, processor order, OTLP exporters without endpoint,
    retry or queue."""
    problems: list[str] = []
    service = cfg.get("service") or {}
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        problems.append("service.pipelines is empty")
    for section, known in KNOWN_TYPES.items():
        for name in cfg.get(section) or {}:
            if name.split("/", 1)[0] not in known:
                problems.append(f"{section}.{name}: unknown component type {name.split('/', 1)[0]!r}")
    for ext in service.get("extensions") or []:
        if ext not in (cfg.get("extensions") or {}):
            problems.append(f"service.extensions names undefined extension {ext!r}")
    for pname, pipeline in pipelines.items():
        if pname.split("/", 1)[0] not in {"traces", "metrics", "logs"}:
            problems.append(f"pipeline {pname!r}: unknown signal")
        for section in ("receivers", "processors", "exporters"):
            names = (pipeline or {}).get(section) or []
            if section != "processors" and not names:
                problems.append(f"pipeline {pname}: no {section}")
            for name in names:
                if name not in (cfg.get(section) or {}):
                    problems.append(f"pipeline {pname}: {section[:-1]} {name!r} is not defined in {section}")
        procs = [p.split("/", 1)[0] for p in (pipeline or {}).get("processors") or []]
        if "memory_limiter" in procs and procs[0] != "memory_limiter":
            problems.append(f"pipeline {pname}: memory_limiter must be the first processor")
        if "batch" in procs and "memory_limiter" in procs and procs.index("batch") < procs.index("memory_limiter"):
            problems.append(f"pipeline {pname}: batch must come after memory_limiter")
    for name, exp in (cfg.get("exporters") or {}).items():
        if name.split("/", 1)[0] in {"otlp", "otlphttp", "otlp_grpc", "otlp_http"}:
            exp = exp or {}
            if not exp.get("endpoint"):
                problems.append(f"exporters.{name}: no endpoint")
            if not (exp.get("retry_on_failure") or {}).get("enabled"):
                problems.append(f"exporters.{name}: retry_on_failure not enabled")
            if not (exp.get("sending_queue") or {}).get("enabled"):
                problems.append(f"exporters.{name}: sending_queue not enabled")
    return problems


def exporter_targets(cfg: dict) -> dict[str, tuple[str, int]]:
    """``{exporter name: (host, port)}`` of the OTLP exporters (gRPC ``host:port`` or an HTTP URL)."""
    out = {}
    for name, exp in (cfg.get("exporters") or {}).items():
        endpoint = str((exp or {}).get("endpoint", ""))
        if "://" in endpoint:
            parts = urlsplit(endpoint)
            out[name] = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        elif ":" in endpoint:
            host, port = endpoint.rsplit(":", 1)
            out[name] = (host, int(port))
    return out


def receiver_ports(cfg: dict) -> set[int]:
    """Ports the Collector listens on: receiver protocol endpoints and extension endpoints."""
    ports = set()
    for rec in (cfg.get("receivers") or {}).values():
        for proto in ((rec or {}).get("protocols") or {}).values():
            if proto and proto.get("endpoint"):
                ports.add(int(str(proto["endpoint"]).rsplit(":", 1)[1]))
    for ext in (cfg.get("extensions") or {}).values():
        if ext and ext.get("endpoint"):
            ports.add(int(str(ext["endpoint"]).rsplit(":", 1)[1]))
    return ports


# --- analyzer configuration ---------------------------------------------------------------------------

def analyzer_variables() -> set[str]:
    """The ``CHAINOTEL_*`` variables the analyzer reads: ``CHAINOTEL_<FIELD>`` for every field of
    :class:`chainotel_analyzer.settings.AnalyzerSettings` (read from the class itself, so a new setting counts
    as soon as it exists) and ``CHAINOTEL_CATALOG``, the chain catalog its registry is seeded from."""
    from chainotel_analyzer.settings import AnalyzerSettings  # noqa: PLC0415
    from chainotel.configurator import CATALOG_ENV  # noqa: PLC0415

    prefix = AnalyzerSettings.model_config["env_prefix"]
    return {(prefix + name).upper() for name in AnalyzerSettings.model_fields} | {CATALOG_ENV}


def unread_analyzer_variables(names, where: str) -> list[str]:
    """A problem for each ``CHAINOTEL_*`` name in ``names`` that the analyzer does not read. The
    settings ignore unknown variables (``extra="ignore"``), so a misspelt or never-implemented key
    would otherwise configure nothing, silently."""
    known = analyzer_variables()
    return [
        f"{where}: {name} is not read by the analyzer (no AnalyzerSettings field {name[len('CHAINOTEL_'):].lower()!r})"
        for name in sorted(names)
        if name.upper().startswith("CHAINOTEL_") and name.upper() not in known
    ]


def _runs_analyzer(command) -> bool:
    return bool(command) and str(command[0]) == "chainotel-analyzer"


# --- docker compose ---------------------------------------------------------------------------------

def _flag(command: list[str], flag: str) -> str | None:
    return command[command.index(flag) + 1] if flag in command else None


def service_ports(compose: dict, name: str, collector_cfg: dict | None = None) -> set[int]:
    """Container ports a compose service listens on, derived from what it runs: the image's known
    defaults, ``--grpc-port/--http-port`` of the analyzer, ``UVICORN_PORT`` of a demo service, the
    Collector config's receivers."""
    svc = compose["services"][name]
    image = str(svc.get("image", "")).split(":", 1)[0]
    ports = set(IMAGE_PORTS.get(image, set()))
    command = [str(c) for c in svc.get("command") or []]
    for flag in ("--grpc-port", "--http-port", "--port"):
        if _flag(command, flag):
            ports.add(int(_flag(command, flag)))
    env = svc.get("environment") or {}
    if "UVICORN_PORT" in env:
        ports.add(int(env["UVICORN_PORT"]))
    if "otelcol" in image or "collector" in image:
        ports |= receiver_ports(collector_cfg or {})
    return ports


def compose_problems(compose: dict, collector_cfg: dict) -> list[str]:
    """Problems of docker-compose.yml against itself, the Collector config and the repository."""
    problems: list[str] = []
    services = compose.get("services") or {}
    for name, svc in services.items():
        image = str(svc.get("image", ""))
        if ":" not in image or image.endswith(":latest"):
            problems.append(f"{name}: image {image!r} is not pinned to a tag")
        for dep, cond in (svc.get("depends_on") or {}).items():
            if dep not in services:
                problems.append(f"{name}: depends_on unknown service {dep!r}")
            elif (cond or {}).get("condition") == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(f"{name}: waits for {dep} to be healthy but {dep} has no healthcheck")
        for key, value in (svc.get("environment") or {}).items():
            if not (key.endswith("_URL") or key.endswith("_ENDPOINT")) or "://" not in str(value):
                continue
            parts = urlsplit(re.sub(r"\$\{[^}]*\}", "interpolated", str(value)))  # ${VAR:?...} from .env
            host, port = parts.hostname, parts.port
            if host in ("localhost", "127.0.0.1"):
                published = {int(str(p).rsplit(":", 2)[-2]) for s in services.values() for p in s.get("ports") or []}
                if port not in published:
                    problems.append(f"{name}: {key}={value} names a host port no service publishes")
                continue
            if host not in services:
                problems.append(f"{name}: {key}={value} names no compose service")
            elif port not in service_ports(compose, host, collector_cfg):
                problems.append(f"{name}: {key}={value}: {host} does not listen on {port}")
        for mapping in svc.get("ports") or []:
            if str(mapping).count(":") != 2 or not str(mapping).startswith("127.0.0.1:"):
                problems.append(f"{name}: publishes {mapping!r} beyond loopback (use 127.0.0.1:HOST:CONTAINER)")
            container = int(str(mapping).rsplit(":", 1)[1].split("/")[0])
            if container not in service_ports(compose, name, collector_cfg):
                problems.append(f"{name}: publishes container port {container} nobody listens on")
        build = svc.get("build")
        if build:
            dockerfile = ROOT / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
            if not dockerfile.exists():
                problems.append(f"{name}: build.dockerfile {dockerfile} does not exist")
            elif build.get("target") and not re.search(rf"^FROM .* AS {re.escape(build['target'])}\s*$",
                                                       dockerfile.read_text(), re.M | re.I):
                problems.append(f"{name}: Dockerfile has no stage {build['target']!r}")
        for volume in svc.get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            if source.startswith("./") and not (ROOT / source).exists():
                problems.append(f"{name}: volume source {source} does not exist")
            elif not source.startswith(("./", "/")) and source not in (compose.get("volumes") or {}):
                problems.append(f"{name}: named volume {source!r} is not declared")
        command = [str(c) for c in svc.get("command") or []]
        if _runs_analyzer(command):
            problems += unread_analyzer_variables((svc.get("environment") or {}).keys(), name)
        if "--app-dir" in command:
            module = next(c for c in command if c.endswith(":app")).split(":")[0]
            if not (ROOT / "examples" / f"{module}.py").exists():
                problems.append(f"{name}: runs {module}:app but examples/{module}.py does not exist")
    collector = services.get("otel-collector")
    if collector:
        config_path = _flag([str(c) for c in collector.get("command") or []], "--config")
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in collector.get("volumes") or []}
        if config_path not in mounts:
            problems.append(f"otel-collector: --config {config_path} is not a mounted file")
        for exporter, (host, port) in exporter_targets(collector_cfg).items():
            if host not in services:
                problems.append(f"collector exporter {exporter}: host {host!r} is not a compose service")
            elif port not in service_ports(compose, host, collector_cfg):
                problems.append(f"collector exporter {exporter}: {host} does not listen on {port}")
    return problems


# --- Kubernetes (kustomize) ---------------------------------------------------------------------

def kustomize_objects(base: Path) -> tuple[list[dict], dict[str, set[str]], list[str]]:
    """Read a kustomization: (objects of its resources, ConfigMap name → keys incl. generated ones, problems)."""
    problems: list[str] = []
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    objects: list[dict] = []
    for resource in kustomization.get("resources") or []:
        path = base / resource
        if not path.exists():
            problems.append(f"kustomization resource {resource} does not exist")
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                if not {"apiVersion", "kind", "metadata"} <= doc.keys():
                    problems.append(f"{resource}: not a Kubernetes object")
                objects.append(doc)
    configmaps = {o["metadata"]["name"]: set((o.get("data") or {}).keys()) for o in objects if o.get("kind") == "ConfigMap"}
    for gen in kustomization.get("configMapGenerator") or []:
        keys = set()
        for entry in gen.get("files") or []:
            key, _, file = entry.partition("=") if "=" in entry else (Path(entry).name, "", entry)
            if not (base / file).exists():
                problems.append(f"configMapGenerator {gen['name']}: file {file} does not exist")
            else:
                yaml.safe_load((base / file).read_text())  # must parse
            keys.add(key)
        for literal in gen.get("literals") or []:
            keys.add(literal.split("=", 1)[0])
        configmaps[gen["name"]] = keys
    return objects, configmaps, problems


def k8s_problems(objects: list[dict], configmaps: dict[str, set[str]]) -> list[str]:
    """ConfigMap names and keys referenced by Deployments exist; Services select a Deployment's
    pods and target named container ports that exist; the analyzer reads every ``CHAINOTEL_*``
    variable its container gets (``env`` and ``envFrom`` ConfigMaps)."""
    problems: list[str] = []
    deployments = [o for o in objects if o.get("kind") == "Deployment"]
    for dep in deployments:
        name = dep["metadata"]["name"]
        spec = dep["spec"]["template"]["spec"]
        if dep["spec"]["selector"]["matchLabels"].items() - dep["spec"]["template"]["metadata"]["labels"].items():
            problems.append(f"Deployment {name}: selector does not match the pod labels")
        for container in spec.get("containers") or []:
            for env in container.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
                if ref and ref["key"] not in configmaps.get(ref["name"], set()):
                    problems.append(f"Deployment {name}: env {env['name']} needs key {ref['key']} of ConfigMap {ref['name']}")
            for source in container.get("envFrom") or []:
                ref = source.get("configMapRef")
                if ref and ref["name"] not in configmaps and not ref.get("optional"):
                    problems.append(f"Deployment {name}: envFrom ConfigMap {ref['name']} does not exist")
            if _runs_analyzer(container.get("command") or container.get("args")):
                env_names = {e["name"] for e in container.get("env") or []}
                for source in container.get("envFrom") or []:
                    ref = source.get("configMapRef")
                    if ref:
                        env_names |= {source.get("prefix", "") + key for key in configmaps.get(ref["name"], set())}
                problems += unread_analyzer_variables(env_names, f"Deployment {name}")
            mounts = {m["name"] for m in container.get("volumeMounts") or []}
            for volume in spec.get("volumes") or []:
                if volume["name"] not in mounts:
                    problems.append(f"Deployment {name}: volume {volume['name']} is not mounted")
        for volume in spec.get("volumes") or []:
            ref = volume.get("configMap")
            if not ref:
                continue
            if ref["name"] not in configmaps:
                problems.append(f"Deployment {name}: volume ConfigMap {ref['name']} does not exist")
            for item in ref.get("items") or []:
                if item["key"] not in configmaps.get(ref["name"], set()):
                    problems.append(f"Deployment {name}: volume needs key {item['key']} of ConfigMap {ref['name']}")
    for svc in (o for o in objects if o.get("kind") == "Service"):
        selector = svc["spec"].get("selector") or {}
        targets = [d for d in deployments if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        if not targets:
            problems.append(f"Service {svc['metadata']['name']}: selects no Deployment's pods")
            continue
        named = {p.get("name") for d in targets for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports") or []}
        for port in svc["spec"].get("ports") or []:
            if isinstance(port.get("targetPort"), str) and port["targetPort"] not in named:
                problems.append(f"Service {svc['metadata']['name']}: targetPort {port['targetPort']} is no container port")
    return problems


def container_env(objects: list[dict], deployment: str) -> dict[str, str]:
    """Plain ``env`` values of the first container of a Deployment."""
    dep = next(o for o in objects if o.get("kind") == "Deployment" and o["metadata"]["name"] == deployment)
    return {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0].get("env") or [] if "value" in e}
