"""Debian's Chromium driven by Playwright for the console's browser tests: the browser's path and
flags, a module-level skip when it is missing (an error under CI, whose ``.ci/run`` installs it),
and :class:`Watched`, a page that records console errors, failed requests and HTTP errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
SHOTS = Path(__file__).with_name("screenshots")


def require_chromium():
    """``playwright.sync_api``; skips the calling test module when Chromium or Playwright is missing
    (raises under ``CI``)."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        if os.environ.get("CI"):
            raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser():
    sync_api = require_chromium()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Watched:
    """A page whose console errors, uncaught exceptions, failed requests and HTTP errors are recorded
    (HTTP statuses in ``expected`` are not problems: a login page answering 401 on a wrong token)."""

    def __init__(self, browser, width: int = 1280, height: int = 800, context=None, expected: tuple[int, ...] = ()):
        self.page = (context or browser).new_page(**({} if context else {"viewport": {"width": width, "height": height}}))
        self.problems: list[str] = []
        self.expected = expected
        self.page.on("console", lambda m: m.type == "error" and not self._expected_console(m.text)
                     and self.problems.append(f"console: {m.text}"))  # fmt: skip
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        self.page.on("response", lambda r: r.status >= 400 and r.status not in self.expected
                     and self.problems.append(f"HTTP {r.status}: {r.url}"))  # fmt: skip

    def _expected_console(self, text: str) -> bool:
        # Chromium logs "Failed to load resource: ... status of 401" for an expected error status
        return any(f"status of {s}" in text for s in self.expected)

    def goto(self, url: str, status: int = 200):
        response = self.page.goto(url)
        assert response is not None and response.status == status, (url, response and response.status)
        return self.page

    def shot(self, name: str) -> None:
        SHOTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.page.close()
        assert self.problems == [], self.problems


@pytest.fixture
def tab(browser):
    watched = Watched(browser)
    yield watched
    watched.close()
