"""Fixtures for the distro tests: an OTLP sink and real services (see :mod:`tests.distro.services`)."""

from __future__ import annotations

import pytest

from tests.distro.otlp_sink import OtlpSink
from tests.distro.services import Service, otel_env


@pytest.fixture(scope="module")
def sink():
    s = OtlpSink()
    yield s
    s.close()


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """``start(module, env, workers=1, instrument=True, pythonpath="") -> Service``; every service is
    stopped at module end."""
    started: list[Service] = []
    tmp = tmp_path_factory.mktemp("services")

    def _start(module: str, env: dict[str, str], workers: int = 1, instrument: bool = True,
               pythonpath: str = "") -> Service:
        service = Service(module, env, tmp, workers, pythonpath=pythonpath, instrument=instrument)
        started.append(service)
        return service

    yield _start
    for service in started:
        service.stop()


@pytest.fixture(scope="module")
def pair(sink, start):
    """gateway → backend, both under chainotel with the test catalog."""
    backend = start("backend", otel_env(sink, "test-backend"))
    gateway = start("gateway", otel_env(sink, "test-gateway", BACKEND_URL=backend.url))
    return gateway, backend
