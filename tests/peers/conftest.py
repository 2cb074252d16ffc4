"""Tests through the real peer programs (Jaeger v2, the OpenTelemetry Collector, a Go service),
built by ``make peers``. Without them every test here is skipped with the reason; under CI it fails."""

from __future__ import annotations

import pytest

from .peers import Jaeger, require_binaries


@pytest.fixture(scope="package", autouse=True)
def peers_built():
    """Skip (or, with CI=true, fail) each test of this package when the peer binaries are missing
    (package scope: it runs before any module fixture that would start a peer)."""
    return require_binaries()


@pytest.fixture(scope="package")
def jaeger(tmp_path_factory):
    """One Jaeger v2 (in-memory storage) for the package; stopped at the end."""
    peer = Jaeger(tmp_path_factory.mktemp("jaeger"))
    try:
        yield peer.start()
    finally:
        peer.stop()
