"""``pip install chainotel`` is the distro and no more; the CLI says which extra it needs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
DISTRO_NEEDS = {
    "opentelemetry-api", "opentelemetry-sdk", "opentelemetry-instrumentation",
    "opentelemetry-exporter-otlp-proto-http", "pydantic", "pydantic-settings", "pyyaml",
}


def test_base_dependencies_are_what_the_distro_imports():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    names = {Requirement(r).name.lower() for r in project["dependencies"]}
    assert names == DISTRO_NEEDS
    assert project["scripts"]["chainotel"] == "chainotel.cli:main"
    assert "typer" in {Requirement(r).name for r in project["optional-dependencies"]["cli"]}


def test_distro_modules_import_without_the_cli_extra():
    """The modules a service loads import with typer, rich, httpx and grpc made unimportable."""
    code = (
        "import sys\n"
        "for m in ('typer', 'rich', 'httpx', 'grpc', 'click'): sys.modules[m] = None\n"
        "import chainotel.distro, chainotel.configurator, chainotel.processor, chainotel.sampler\n"
        "import chainotel.propagator, chainotel.id_generator, chainotel.settings, chainotel.catalog\n"
        "import chainotel.cli\n"
        "chainotel.cli.main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "the command line needs the 'cli' extra" in done.stderr
    assert 'pip install "chainotel[cli]"' in done.stderr
