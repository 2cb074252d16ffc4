"""The analyzer's layers import downward only, read from the source (``ast``), not from a running
process: model ← store ← ingest, analysis ← monitoring ← api ← runtime/cli, with settings beside the model."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANALYZER = ROOT / "analyzer"
PACKAGE = "chainotel_analyzer"

# layer -> the analyzer layers it may import (itself always allowed)
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "settings": set(),
    "store": {"model", "settings"},
    "ingest": {"model", "settings", "store"},
    "analysis": {"model"},
    "monitoring": {"model", "settings", "store", "analysis"},
    "api": {"model", "settings", "store", "ingest", "analysis", "monitoring"},
    "runtime": {"model", "settings", "store", "ingest", "analysis", "monitoring", "api"},
    "cli": {"model", "settings", "store", "ingest", "analysis", "monitoring", "api", "runtime"},
}


def layer_of(module: str) -> str:
    """``chainotel_analyzer.store.writer`` → ``store``; ``chainotel_analyzer.settings`` → ``settings``."""
    return module.split(".")[1]


def analyzer_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import of an analyzer module in ``path`` (also those inside functions)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            names = names[:1] if node.module != PACKAGE else names[1:]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.startswith(PACKAGE + ".")]
    return sorted(found)


def modules() -> list[Path]:
    return sorted(p for p in ANALYZER.rglob("*.py") if "migrations" not in p.parts)


def test_every_module_belongs_to_a_known_layer():
    layers = {p.relative_to(ANALYZER).parts[0].removesuffix(".py") for p in modules()} - {"__init__"}
    assert layers <= set(ALLOWED), f"new top-level module(s) {layers - set(ALLOWED)}: give them a place in ALLOWED"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_layers_import_downward_only(path: Path):
    own = path.relative_to(ANALYZER).parts[0].removesuffix(".py")
    if own == "__init__":
        return
    wrong = [f"line {line}: {module}" for line, module in analyzer_imports(path)
             if layer_of(module) != own and layer_of(module) not in ALLOWED[own]]  # fmt: skip
    assert not wrong, f"{path.relative_to(ROOT)} ({own}) may import only {sorted(ALLOWED[own])}: {wrong}"


def test_the_checker_sees_imports_inside_functions(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from chainotel_analyzer.api.app import create_app\nimport chainotel_analyzer.store.client\n")
    assert [m for _, m in analyzer_imports(sample)] == ["chainotel_analyzer.api.app", "chainotel_analyzer.store.client"]


def test_nothing_outside_the_distro_loads_its_configurator():
    """The store reads the catalog path from its own settings; ``chainotel.configurator`` (which loads
    the SDK's configuration machinery) is the distro's, not the analyzer's."""
    users = [str(p.relative_to(ROOT)) for p in modules() if "chainotel.configurator" in p.read_text()]
    assert users == []


def test_every_analyzer_subpackage_is_packaged():
    """``[tool.setuptools] packages`` is an explicit list: a subpackage missing there is absent from the wheel."""
    import tomllib

    packaged = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    subpackages = {PACKAGE + "".join("." + part for part in p.parent.relative_to(ANALYZER).parts)
                   for p in ANALYZER.rglob("__init__.py")}  # fmt: skip
    assert subpackages <= packaged, f"add {sorted(subpackages - packaged)} to pyproject.toml"
