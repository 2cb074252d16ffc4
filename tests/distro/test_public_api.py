"""The distro uses OpenTelemetry's public API only, and its settings are the one reader of CHAINOTEL_*.

Read from the source (ast), so a new private import or ``obj._attr`` reach-in fails here. The one
allowed private name is the SDK's ``_OTelSDKConfigurator`` with its ``_configure`` hook: the class
the SDK tells distributions to subclass.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from chainotel.settings import DistroSettings

SOURCE = Path(__file__).resolve().parents[2] / "chainotel"
FILES = sorted(SOURCE.rglob("*.py"))
ALLOWED = {"_OTelSDKConfigurator", "_configure"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__")) and name not in ALLOWED


def private_uses(tree: ast.AST) -> list[str]:
    """``module._x`` imports, ``_x`` names imported from opentelemetry, and ``obj._x`` reads of
    anything but ``self``/``cls`` (the distro's own objects keep their privates to themselves)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("opentelemetry"):
            only_allowed = all(alias.name in ALLOWED for alias in node.names)  # its module is private too
            found += [f"from {node.module}" for part in node.module.split(".") if _private(part) and not only_allowed]
            found += [f"import {alias.name}" for alias in node.names if _private(alias.name)]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if any(_private(p) for p in alias.name.split("."))]
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            if not (isinstance(base, ast.Name) and base.id in ("self", "cls")):
                found.append(f"{ast.unparse(node)} (line {node.lineno})")
    return found


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SOURCE)))
def test_no_private_opentelemetry_names(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    allowed_os_exit = [u for u in private_uses(tree) if not u.startswith("os._exit")]  # stdlib, not OTel
    assert not allowed_os_exit, allowed_os_exit
    text = path.read_text(encoding="utf-8")
    text = text.replace("opentelemetry.sdk._configuration import _OTelSDKConfigurator", "")
    assert not re.search(r"opentelemetry[\w.]*\._\w", text), "private name in text"


def test_private_reach_ins_are_found():
    """The check itself: the patterns the processor used to rely on are reported."""
    tree = ast.parse(
        "from opentelemetry.sdk._configuration import x\n"
        "from opentelemetry.propagate import _load_propagators\n"
        "span._attributes._dict.update(a)\n"
    )
    assert len(private_uses(tree)) == 4


def test_no_span_context_tuple_indexing():
    for path in FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
                assert node.value.id not in ("parent", "context", "span_context"), (path, ast.unparse(node))


def test_every_chainotel_variable_is_a_settings_field():
    """No module reads os.environ for CHAINOTEL_*: each name that appears is a settings field of
    the distro, or one the distro's demo hands to another component (the analyzer's settings, the
    Collector configuration's ``${env:CHAINOTEL_…}`` variables)."""
    from chainotel_analyzer.settings import AnalyzerSettings, env_name

    collector = "".join(p.read_text() for p in (SOURCE.parent / "collector-config").glob("*.yaml"))
    fields = {DistroSettings.env_name(name) for name in DistroSettings.model_fields}
    fields |= {env_name(name) for name in AnalyzerSettings.model_fields}
    fields |= set(re.findall(r"env:(CHAINOTEL_[A-Z_]+)", collector))
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        for name in set(re.findall(r"CHAINOTEL_[A-Z_]+", text)) - {"CHAINOTEL_"}:
            assert name in fields, (path, name)
        if path.name != "settings.py":
            assert not re.search(r"environ(\.get)?\(?\[?[\"']CHAINOTEL_", text), path


def test_settings_fields_are_described():
    for name, field in DistroSettings.model_fields.items():
        assert field.description and len(field.description) > 20, name


def test_live_catalog_variables_are_validated_with_the_other_settings():
    from chainotel.settings import SettingsError

    settings = DistroSettings.from_env({"CHAINOTEL_CATALOG_URL": " http://analyzer:4318/api/v1/catalog ",
                                        "CHAINOTEL_CATALOG_POLL_INTERVAL_S": "2.5"})
    assert (settings.catalog_url, settings.catalog_poll_interval_s) == ("http://analyzer:4318/api/v1/catalog", 2.5)
    assert DistroSettings.from_env({}).catalog_url == "" and DistroSettings.from_env({}).catalog_poll_interval_s == 30
    for name, value in (("CHAINOTEL_CATALOG_URL", "ftp://x"), ("CHAINOTEL_CATALOG_POLL_INTERVAL_S", "0"),
                        ("CHAINOTEL_CATALOG_POLL_INTERVAL_S", "inf"), ("CHAINOTEL_CATALOG_POLL_INTERVAL_S", "soon")):
        with pytest.raises(SettingsError, match=name):
            DistroSettings.from_env({name: value})
