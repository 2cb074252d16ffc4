"""ChainotelDistro.configure in-process: the propagator rebuild after an early import of
``opentelemetry.propagate``, and that a failing rebuild leaves the rest of the configuration intact."""

from __future__ import annotations

import logging
import os

import pytest
from opentelemetry import propagate
from opentelemetry.instrumentation import propagators as response_propagators

from chainotel.distro import DEFAULTS, ChainotelDistro, propagators_from_env
from chainotel.propagator import XChainPropagator, XChainResponsePropagator


@pytest.fixture
def clean_globals(monkeypatch):
    """No OTEL_* defaults in the environment; global text map and response propagator restored afterwards."""
    for name in DEFAULTS:
        monkeypatch.delenv(name, raising=False)  # restored (or removed again) at teardown
    textmap = propagate.get_global_textmap()
    response = response_propagators.get_global_response_propagator()
    propagate.set_global_textmap(propagate.get_global_textmap().__class__([]))
    yield
    propagate.set_global_textmap(textmap)
    response_propagators.set_global_response_propagator(response)


def _names(textmap) -> list[str]:
    return [type(p).__name__ for p in textmap._propagators]  # noqa: SLF001 - CompositePropagator


def test_early_imported_propagate_is_rebuilt_with_xchain(clean_globals):
    ChainotelDistro().configure()
    assert _names(propagate.get_global_textmap()) == ["TraceContextTextMapPropagator", "W3CBaggagePropagator",
                                                      XChainPropagator.__name__]
    assert isinstance(response_propagators.get_global_response_propagator(), XChainResponsePropagator)


def test_failed_rebuild_is_logged_and_the_rest_is_configured(clean_globals, monkeypatch, caplog):
    monkeypatch.setenv("OTEL_PROPAGATORS", "tracecontext,no-such-propagator")
    before = propagate.get_global_textmap()
    with caplog.at_level(logging.WARNING, logger="chainotel.distro"):
        ChainotelDistro().configure()  # must not raise: opentelemetry-instrument would skip the SDK setup
    assert propagate.get_global_textmap() is before
    assert "could not rebuild the global propagator" in caplog.text
    assert "'no-such-propagator' in OTEL_PROPAGATORS is not installed" in caplog.text
    assert isinstance(response_propagators.get_global_response_propagator(), XChainResponsePropagator)
    assert os.environ["OTEL_PYTHON_ID_GENERATOR"] == "xchain"  # the defaults are still set


@pytest.mark.parametrize(
    "value,names",
    [
        ("", ["TraceContextTextMapPropagator", "W3CBaggagePropagator"]),
        (" xchain , tracecontext", ["XChainPropagator", "TraceContextTextMapPropagator"]),
        ("tracecontext,none", []),
    ],
)
def test_propagators_from_env_reads_otel_propagators_as_the_api_does(value, names):
    assert _names(propagators_from_env(value)) == names


def test_otlp_http_is_the_default_when_the_grpc_exporter_is_not_installed(clean_globals, monkeypatch):
    from chainotel import distro

    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(distro, "_grpc_exporter_installed", lambda: False)
    ChainotelDistro().configure()
    assert os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")  # the user's choice stays
    ChainotelDistro().configure()
    assert os.environ["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"


def test_grpc_stays_the_sdk_default_when_its_exporter_is_installed(clean_globals, monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", raising=False)
    ChainotelDistro().configure()  # the test environment has chainotel[grpc]
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" not in os.environ


def test_invalid_chainotel_value_is_one_error_and_tagging_off(monkeypatch, caplog):
    from chainotel import configurator

    monkeypatch.setenv("CHAINOTEL_MAX_TRACES", "many")
    with caplog.at_level(logging.ERROR, logger="chainotel.configurator"):
        settings = configurator._settings()  # noqa: SLF001 - the configurator's own reader
    assert settings.tagging_enabled is False
    assert configurator.catalog_from_settings(settings) is None
    (record,) = caplog.records
    assert "CHAINOTEL_MAX_TRACES='many'" in record.getMessage()
