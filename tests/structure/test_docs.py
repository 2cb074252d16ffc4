"""The documentation stays true to the code: the generated configuration reference is current, the
README links every page of docs/, and no tracker numbers are left in code or docs."""

from __future__ import annotations

import re
import runpy
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = runpy.run_path(str(ROOT / "docs" / "generate.py"))


def test_configuration_reference_is_generated_from_the_settings():
    assert (ROOT / "docs" / "configuration.md").read_text() == GENERATOR["render"](), \
        "docs/configuration.md is stale: run `make docs` and commit it"


def test_configuration_reference_names_every_analyzer_setting():
    from chainotel_analyzer.settings import AnalyzerSettings, env_name

    text = GENERATOR["render"]()
    assert all(f"`{env_name(field)}`" in text for field in AnalyzerSettings.model_fields)


def test_the_check_fails_on_a_stale_reference(tmp_path, monkeypatch):
    stale = tmp_path / "configuration.md"
    stale.write_text("# Configuration reference\n")
    main = GENERATOR["main"]
    monkeypatch.setitem(main.__globals__, "OUTPUT", stale)
    assert main(["--check"]) == 1


def test_serve_has_a_flag_for_every_setting_with_its_variable():
    from typer.testing import CliRunner

    from chainotel_analyzer.cli import app
    from chainotel_analyzer.settings import AnalyzerSettings, env_name

    out = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "500", "TERM": "dumb"}).output
    missing = [field for field in AnalyzerSettings.model_fields if f"(env {env_name(field)};" not in out]
    assert missing == []
