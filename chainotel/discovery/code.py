"""Discovery from code: chains proposed from Python services' source, read with the standard ``ast``
module (nothing is imported or run).

What is read (``scan_source(DIR)``):

- **routes**: functions decorated ``@X.get/post/put/delete/patch/websocket(path)`` (or
  ``@X.api_route(path, methods=[…])``) where ``X`` is a ``FastAPI()`` app or an ``APIRouter()`` (its
  ``prefix=``, and the ``prefix=`` of ``app.include_router(router, prefix=…)`` in the same module),
  or any receiver decorating such routes (lower confidence);
- **calls** inside a route's function: ``client.get/post/…(url)`` and ``httpx.get/post/…(url)``;
  ``client`` may carry ``base_url=`` (``httpx.Client``/``AsyncClient``, also in ``async with``);
  ``url`` may be a string, an f-string, or built from a module constant that is a URL, an
  environment variable (``os.environ["X_URL"]``, ``os.environ.get``/``os.getenv("X_URL", default)``),
  or a helper called with a known service name (``downstream("data-bridge", 8001)``);
- **service names and addresses**: a ``docker-compose.yml``/``compose.yaml`` in DIR or up to two
  folders above it — each compose service's ``OTEL_SERVICE_NAME`` (else its name), the module its
  ``command`` runs (``module:app``) or its ``build.context``, its ``environment:`` values and
  ``ports:``. A URL's host is resolved to the compose service of that name, a loopback URL by its
  port; an environment variable by the calling service's compose ``environment:`` (else any
  service's, else the default in the code). A module with no compose service is named after its
  folder (one service per folder) or, at DIR's top level, its file name (``api_gateway.py`` →
  ``api-gateway``).

A module that other scanned modules import and that no compose service runs is shared code (a
library), not a service: its routes are not proposed. Routes that no other scanned service calls
are **entry points**; each becomes a proposed chain whose
services and edges follow the calls transitively (a call is matched to the callee's route by its
path template, ``{x}`` matching one segment). There is no traffic to measure, so
``max_duration_ms`` is a default (:data:`DEFAULT_SLA_MS`) to be set from traffic
(``chainotel discover --since``). The confidence starts at 0.9 and drops for each guess made (see
:func:`_confidence`); the evidence names every ``file:line`` used.
"""

from __future__ import annotations

import ast
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from chainotel.discovery import rules

__all__ = ["DEFAULT_SLA_MS", "scan_source"]

DEFAULT_SLA_MS = 1000.0
"""``max_duration_ms`` of a chain proposed from code (no traffic was measured)."""

MAX_FILES = 2000
MAX_FILE_BYTES = 1024 * 1024
COMPOSE_NAMES = ("docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml")
HTTP_METHODS = ("get", "post", "put", "delete", "patch", "head", "options")
ROUTE_DECORATORS = (*HTTP_METHODS, "websocket", "api_route")
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", "build", "dist"}


@dataclass
class Call:
    """An HTTP call in a route's function: ``method``, resolved ``service`` (``None`` if not),
    ``path`` template (``None`` if unknown), where (``location``) and how it was resolved."""

    method: str
    service: str | None
    path: str | None
    location: str
    how: str


@dataclass
class Route:
    service: str
    method: str  # GET … or WEBSOCKET
    path: str
    location: str
    known_app: bool
    calls: list[Call] = field(default_factory=list)


@dataclass
class ComposeService:
    name: str
    otel_name: str
    environment: dict[str, str]
    ports: set[int]
    modules: set[str]
    context: Path | None


# --- docker compose -----------------------------------------------------------------------------


def _find_compose(root: Path) -> Path | None:
    for folder in (root, *list(root.parents)[:2]):
        for name in COMPOSE_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def _environment(raw) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): "" if v is None else str(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return dict(str(item).split("=", 1) for item in raw if "=" in str(item))
    return {}


def _ports(raw, env: dict[str, str]) -> set[int]:
    out = set()
    for item in raw or []:
        text = str(item.get("target", "")) if isinstance(item, dict) else str(item)
        last = text.split("/")[0].rsplit(":", 1)[-1]
        if last.isdigit():
            out.add(int(last))
    for key in ("PORT", "UVICORN_PORT", "HTTP_PORT"):
        if env.get(key, "").isdigit():
            out.add(int(env[key]))
    return out


def read_compose(path: Path | None) -> list[ComposeService]:
    """The services of a compose file (``[]`` without one, or when it cannot be read)."""
    if path is None:
        return []
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return []
    out = []
    for name, svc in (doc.get("services") or {}).items():
        if not isinstance(svc, dict):
            continue
        env = _environment(svc.get("environment"))
        command = svc.get("command") or ""
        command = " ".join(map(str, command)) if isinstance(command, list) else str(command)
        modules = set(re.findall(r"([A-Za-z_][\w.]*):[A-Za-z_]\w*", command))
        build = svc.get("build")
        context = build.get("context") if isinstance(build, dict) else build if isinstance(build, str) else None
        out.append(ComposeService(str(name), env.get("OTEL_SERVICE_NAME") or str(name), env, _ports(svc.get("ports"), env),
                                  {m.rsplit(".", 1)[-1] for m in modules},
                                  (path.parent / context).resolve() if context else None))  # fmt: skip
    return out


# --- values of expressions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """What an expression is known to be: ``kind`` ``url`` (``text``), ``env`` (variable ``text``,
    ``default``), ``service`` (a service name ``text``, from a helper's argument) or ``path``."""

    kind: str
    text: str
    default: str = ""
    line: int = 0


def _is_env_lookup(node: ast.AST) -> Value | None:
    # os.environ["X"], os.environ.get("X", d), os.getenv("X", d)
    if isinstance(node, ast.Subscript) and _dotted(node.value) in ("os.environ", "environ"):
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return Value("env", key.value, "", node.lineno)
    if isinstance(node, ast.Call) and _dotted(node.func) in ("os.environ.get", "os.getenv", "environ.get", "getenv"):
        args = node.args
        if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
            default = _literal_text(args[1]) if len(args) > 1 else ""
            return Value("env", args[0].value, default or "", node.lineno)
    return None


def _literal_text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _unwrap(node: ast.AST) -> ast.AST:
    """``x.rstrip("/")``, ``str(x)`` → ``x``."""
    while isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("rstrip", "strip", "lower"):
            node = node.func.value
        elif isinstance(node.func, ast.Name) and node.func.id == "str" and node.args:
            node = node.args[0]
        else:
            break
    return node


def _value(node: ast.AST, constants: dict[str, Value], services: set[str]) -> Value | None:
    node = _unwrap(node)
    env = _is_env_lookup(node)
    if env is not None:
        return env
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    text = _literal_text(node)
    if text is not None:
        return Value("url" if "://" in text else "path", text, line=node.lineno)
    if isinstance(node, ast.Call) and node.args:
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value in services:
            return Value("service", first.value, line=node.lineno)
    return None


def _url_parts(node: ast.AST, constants: dict[str, Value], services: set[str]) -> tuple[Value | None, str | None]:
    """An URL argument → ``(base value, path template)``: an f-string ``f"{BASE}/a/{x}"`` gives
    ``(BASE's value, "/a/{}")``; a literal URL its own value and path."""
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.FormattedValue):
        base = _value(node.values[0].value, constants, services)
        rest = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values[1:])
        return base, rest or "/"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        base = _value(node.left, constants, services)
        return base, _literal_text(node.right)
    value = _value(node, constants, services)
    if value is not None and value.kind == "url":
        parsed = urllib.parse.urlsplit(value.text.replace("{}", "x"))
        return value, value.text[value.text.find(parsed.path, len(parsed.scheme) + 3):] if parsed.path else "/"
    if value is not None and value.kind == "path":
        return None, value.text
    return value, None


# --- one module -------------------------------------------------------------------------------------


@dataclass
class Module:
    path: Path
    rel: str
    tree: ast.Module
    constants: dict[str, Value] = field(default_factory=dict)
    clients: dict[str, Value | None] = field(default_factory=dict)  # name → base_url (None: no base)
    apps: dict[str, str] = field(default_factory=dict)  # FastAPI/APIRouter name → prefix


def _is_client_ctor(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _dotted(node.func).split(".")[-1] in ("Client", "AsyncClient")


def _kwarg(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _read_module(path: Path, root: Path, services: set[str]) -> Module | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    module = Module(path, str(path.relative_to(root)), tree)
    for node in tree.body:
        if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None:
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        call = node.value
        if isinstance(call, ast.Call) and _dotted(call.func).split(".")[-1] in ("FastAPI", "APIRouter"):
            prefix = _literal_text(_kwarg(call, "prefix")) if _kwarg(call, "prefix") is not None else ""
            module.apps.update({n: prefix or "" for n in names})
        elif _is_client_ctor(call):
            base = _kwarg(call, "base_url")
            module.clients.update({n: _value(base, module.constants, services) if base is not None else None for n in names})
        else:
            value = _value(call, module.constants, services)
            if value is not None:
                module.constants.update({n: value for n in names})
    for node in ast.walk(tree):  # app.include_router(router, prefix="/x")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "include_router":
            if node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in module.apps:
                extra = _kwarg(node, "prefix")
                module.apps[node.args[0].id] = (_literal_text(extra) or "" if extra is not None else "") + module.apps[node.args[0].id]
    return module


def _routes(module: Module, service: str) -> Iterable[tuple[Route, ast.AST]]:
    for node in ast.walk(module.tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for deco in node.decorator_list:
            if not (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)
                    and deco.func.attr in ROUTE_DECORATORS and deco.args):  # fmt: skip
                continue
            path = _literal_text(deco.args[0])
            if path is None or not path.startswith("/"):
                continue
            receiver = _dotted(deco.func.value)
            prefix = module.apps.get(receiver, "")
            methods = [deco.func.attr.upper()]
            if deco.func.attr == "api_route":
                listed = _kwarg(deco, "methods")
                methods = [m.upper() for m in (ast.literal_eval(listed) if listed is not None else ["GET"])]
            for method in methods:
                yield (Route(service, method, prefix + path, f"{module.rel}:{deco.lineno}", receiver in module.apps), node)


def _calls(func: ast.AST, module: Module, services: set[str]) -> list[tuple[str, Value | None, str | None, int, str]]:
    """``(method, base value, path, line, receiver)`` of each HTTP call in a function."""
    local_clients = dict(module.clients)
    for node in ast.walk(func):  # async with httpx.AsyncClient(base_url=…) as c
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if _is_client_ctor(item.context_expr) and isinstance(item.optional_vars, ast.Name):
                    base = _kwarg(item.context_expr, "base_url")
                    local_clients[item.optional_vars.id] = _value(base, module.constants, services) if base is not None else None
    loops: dict[str, list[Value]] = {}  # for url in (A, B): url is each of them
    for node in ast.walk(func):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) and isinstance(node.target, ast.Name) \
                and isinstance(node.iter, (ast.Tuple, ast.List)):  # fmt: skip
            values = [_value(e, module.constants, services) for e in node.iter.elts]
            loops[node.target.id] = [v for v in values if v is not None]
    out = []
    for node in ast.walk(func):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
            continue
        method = node.func.attr
        receiver = _dotted(node.func.value)
        if method == "request" and len(node.args) >= 2:
            method_arg, url_arg = node.args[0], node.args[1]
            method = (_literal_text(method_arg) or "GET").lower()
        elif method in HTTP_METHODS or method == "stream":
            url_arg = node.args[0]
        else:
            continue
        for bindings in _loop_bindings(url_arg, loops):
            base, path = _url_parts(url_arg, {**module.constants, **bindings}, services)
            if receiver in local_clients and local_clients[receiver] is not None and base is None:
                base = local_clients[receiver]
            if receiver == "httpx" or receiver in local_clients or (base is not None and base.kind in ("url", "env", "service")):
                out.append((method.upper(), base, path, node.lineno, receiver))
    return out


def _loop_bindings(node: ast.AST, loops: dict[str, list[Value]]) -> list[dict[str, Value]]:
    """One binding per value of a loop variable the URL expression uses (``[{}]`` when none)."""
    used = [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in loops]
    if not used:
        return [{}]
    return [{used[0]: v} for v in loops[used[0]]]


# --- resolution --------------------------------------------------------------------------------------


class _Resolver:
    def __init__(self, compose: list[ComposeService], names: set[str]):
        self.compose = compose
        self.by_host = {c.name: c.otel_name for c in compose}
        self.names = names

    def url(self, url: str) -> str | None:
        parts = urllib.parse.urlsplit(url.replace("{}", "x"))
        host = parts.hostname or ""
        if host in self.by_host:
            return self.by_host[host]
        if host in self.names:
            return host
        if host in ("127.0.0.1", "localhost", "::1", "0.0.0.0") and parts.port:
            hits = [c.otel_name for c in self.compose if parts.port in c.ports]
            return hits[0] if len(hits) == 1 else None
        return None

    def value(self, value: Value | None, caller: str) -> tuple[str | None, str]:
        if value is None:
            return None, "unresolved"
        if value.kind == "service":
            return value.text, f"service name {value.text!r} passed to a helper"
        if value.kind == "url":
            return self.url(value.text), f"URL {value.text}"
        if value.kind == "env":
            own = [c for c in self.compose if c.otel_name == caller and value.text in c.environment]
            anywhere = [c for c in self.compose if value.text in c.environment]
            for candidates, where in ((own, f"compose environment of {caller}"), (anywhere, "compose environment")):
                if candidates:
                    url = candidates[0].environment[value.text]
                    return self.url(url), f"${value.text} = {url} ({where})"
            if value.default:
                return self.url(value.default), f"${value.text} default {value.default} in the code"
            return None, f"${value.text} (not set in compose, no default)"
        return None, "unresolved"


def _service_names(modules: list[Module], root: Path, compose: list[ComposeService]) -> dict[str, tuple[str, str]]:
    """``{module rel path: (service name, where the name came from)}``; a compose ``build.context``
    counts only when it is a folder below ``root`` (one service per folder)."""
    out = {}
    for m in modules:
        stem = m.path.stem
        hit = next((c for c in compose if stem in c.modules), None)
        if hit is None:
            hit = next((c for c in compose if c.context is not None and c.context not in (root, *root.parents)
                        and m.path.is_relative_to(c.context)), None)  # fmt: skip
        if hit is not None:
            where = "OTEL_SERVICE_NAME in compose" if "OTEL_SERVICE_NAME" in hit.environment else "compose service name"
            out[m.rel] = (hit.otel_name, where)
        elif m.path.parent != root:
            out[m.rel] = (m.path.parent.name, "folder name")
        else:
            out[m.rel] = (stem.replace("_", "-"), "file name")
    return out


def _template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.split("?", 1)[0]).rstrip("/") or "/"


def _path_matches(call_path: str, route_path: str) -> bool:
    a, b = _template(call_path).split("/"), _template(route_path).split("/")
    return len(a) == len(b) and all(x == y or x == "{}" or y == "{}" for x, y in zip(a, b))


def _confidence(route: Route, calls: list[Call], name_from: str) -> float:
    """0.9, × 0.8 when the route's receiver is not a known FastAPI/APIRouter, × 0.85 per call not
    resolved to a service, × 0.9 per call resolved only through a helper's service-name argument,
    × 0.9 when the service is named after a file or folder; at least 0.1."""
    c = 0.9 * (1.0 if route.known_app else 0.8) * (0.9 if name_from in ("file name", "folder name") else 1.0)
    for call in calls:
        c *= 0.85 if call.service is None else 0.9 if call.how.startswith("service name") else 1.0
    return round(max(0.1, c), 3)


def scan_source(root: str | Path, taken_ids: Iterable[str] = ()) -> dict:
    """Propose chains from the Python services under ``root``.

    Returns ``{"proposals": [{"definition", "confidence", "evidence"}], "routes": N, "files": N,
    "libraries": [shared modules skipped], "compose": path or None}``; each evidence holds ``locations`` (``file:line`` of the route and of
    every call followed), ``calls`` (``[{"caller", "callee", "method", "path", "how", "location"}]``),
    ``unresolved_calls``, ``service_name_from`` and ``category_reason``. IDs are the lowest free ones
    per category given ``taken_ids``. Raises ``NotADirectoryError`` when ``root`` is not a folder.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    compose = read_compose(_find_compose(root))
    files = sorted(p for p in root.rglob("*.py") if not SKIP_DIRS & set(p.relative_to(root).parts))[:MAX_FILES]
    names_hint = {c.otel_name for c in compose} | {c.name for c in compose}
    modules = [m for m in (_read_module(p, root, names_hint) for p in files) if m is not None]
    run = {stem for c in compose for stem in c.modules}
    imported = {alias.split(".")[0] for m in modules for node in ast.walk(m.tree)
                for alias in ([node.module or ""] if isinstance(node, ast.ImportFrom) else
                              [a.name for a in node.names] if isinstance(node, ast.Import) else [])}  # fmt: skip
    libraries = [m.rel for m in modules if m.path.stem in imported and m.path.stem not in run]
    modules = [m for m in modules if m.rel not in libraries]  # shared code, not a service of its own
    names = _service_names(modules, root, compose)
    resolver = _Resolver(compose, {n for n, _ in names.values()})
    routes: list[Route] = []
    for m in modules:
        service = names[m.rel][0]
        for route, func in _routes(m, service):
            for method, base, path, line, _receiver in _calls(func, m, names_hint | resolver.names):
                callee, how = resolver.value(base, service)
                route.calls.append(Call(method, callee, path, f"{m.rel}:{line}", how))
            routes.append(route)
    called = set()
    for r in routes:
        for call in r.calls:
            for target in routes:
                if call.service == target.service and call.path and _path_matches(call.path, target.path):
                    called.add(id(target))
    ids = rules.free_ids(taken_ids)
    proposals = []
    for entry in routes:
        if id(entry) in called:
            continue
        services, edges, followed = _walk(entry, routes)
        name_from = next(w for rel, (n, w) in names.items() if n == entry.service)
        websocket = entry.method == "WEBSOCKET"
        category, reason = rules.guess_category(entry.path, "", websocket)
        match = {"service": entry.service, "route": entry.path}
        if not websocket:
            match["method"] = entry.method
        label = f"{'WebSocket' if websocket else entry.method} {entry.path}"
        proposals.append({
            "definition": {
                "id": next(ids[rules.letter(category)]), "name": f"{label} on {entry.service}", "category": category,
                "description": f"Proposed by chainotel discovery from the code ({entry.location}); review before use.",
                "match": [match], "expected_services": services, "edges": [f"{a} -> {b}" for a, b in edges],
                "max_duration_ms": DEFAULT_SLA_MS,
            },
            "confidence": _confidence(entry, [c for _, c in followed], name_from),
            "evidence": {
                "locations": [entry.location] + [c.location for _, c in followed],
                "calls": [{"caller": caller, "callee": c.service, "method": c.method, "path": c.path, "how": c.how,
                           "location": c.location} for caller, c in followed],
                "unresolved_calls": [c.location for _, c in followed if c.service is None],
                "service_name_from": name_from,
                "category_reason": reason,
                "max_duration_ms": "a default: no traffic was measured; set it from `chainotel discover --since`",
            },
        })  # fmt: skip
    return {"proposals": proposals, "routes": len(routes), "files": len(modules) + len(libraries),
            "libraries": libraries, "compose": str(_find_compose(root)) if compose else None}  # fmt: skip


def _walk(entry: Route, routes: list[Route]) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, Call]]]:
    """Services (entry first, then in call order), acyclic edges and the calls followed from ``entry``."""
    services = [entry.service]
    edges: list[tuple[str, str]] = []
    followed: list[tuple[str, Call]] = []
    stack, seen = [entry], {id(entry)}
    while stack:
        route = stack.pop(0)
        for call in route.calls:
            followed.append((route.service, call))
            if call.service is None:
                continue
            if call.service not in services:
                services.append(call.service)
            if (route.service, call.service) not in edges:
                edges.append((route.service, call.service))
            for target in routes:
                if (target.service == call.service and call.path and _path_matches(call.path, target.path)
                        and target.method in (call.method, "WEBSOCKET") and id(target) not in seen and len(seen) < 100):  # fmt: skip
                    seen.add(id(target))
                    stack.append(target)
    return services, rules.acyclic(edges), followed
