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


def test_every_row_of_the_configuration_tables_has_four_cells():
    """A bare ``|`` in a type (``Path | None``) or a description would split a row into more cells."""
    rows = [line for line in GENERATOR["render"]().splitlines() if line.startswith("| `")]
    assert rows
    bad = [row for row in rows if len(re.split(r"(?<!\\)\|", row)) != 6]
    assert not bad, bad


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


def test_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert [p for p in pages if f"(docs/{p})" not in readme] == []


def test_docs_links_to_other_pages_resolve():
    broken = []
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


TRACKER = re.compile(r"\b(issue|review)s? \d+\b", re.I)
"""A reference to this project's own tracker ("issue 9", "review 3"), which a reader cannot look up.
Upstream references keep their ``#``: "ClickHouse issues #6104"."""


def test_no_tracker_numbers_in_code_or_docs():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    found = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in (".py", ".md", ".yaml", ".yml", ".toml", ".sql", ".sh") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if TRACKER.search(line) and path != Path(__file__):
                found.append(f"{name}:{number}: {line.strip()[:80]}")
    assert found == []


def test_the_tracker_pattern_catches_what_it_should():
    assert TRACKER.search("rules from issue 2 / README") and TRACKER.search("(review 23)")
    assert not TRACKER.search("ClickHouse issues #6104, #37318") and not TRACKER.search("no issue here")
