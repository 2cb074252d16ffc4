"""Fault injection of the demo services (examples/demo_service.py): DEMO_SLOW parsing and seeded errors."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest
from fastapi import HTTPException

from chainotel.cli.demo import examples_dir


@pytest.fixture(scope="module")
def demo_module():
    spec = importlib.util.spec_from_file_location("demo_service_under_test", examples_dir() / "demo_service.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parse_slow(demo_module):
    assert demo_module.parse_slow("ai-provider:200ms") == {"ai-provider": 0.2}
    assert demo_module.parse_slow(" ai-provider:200ms , trading-engine:1.5s ") == {"ai-provider": 0.2, "trading-engine": 1.5}
    assert demo_module.parse_slow("") == {}


@pytest.mark.parametrize("bad", ["ai-provider", "ai-provider:200", "ai-provider:fast", ":200ms"])
def test_parse_slow_refuses_bad_entries(demo_module, bad):
    with pytest.raises(ValueError, match="DEMO_SLOW"):
        demo_module.parse_slow(bad)


def test_errors_are_seeded_and_slowdown_applies_to_the_named_service(demo_module, monkeypatch):
    monkeypatch.setenv("DEMO_SLOW", "ai-provider:20ms")
    monkeypatch.setenv("DEMO_ERROR_RATE", "0.3")
    monkeypatch.setenv("DEMO_SEED", "5")

    def outcomes(service):
        faults = demo_module.Faults(service)
        out = []
        for _ in range(40):
            try:
                asyncio.run(faults.work(0))
                out.append(True)
            except HTTPException as exc:
                assert exc.status_code == 500
                out.append(False)
        return faults, out

    slowed, first = outcomes("ai-provider")
    _, again = outcomes("ai-provider")
    other, _ = outcomes("trading-engine")
    assert first == again  # same seed, same failures
    assert 0 < first.count(False) < 40
    assert slowed.delay_s == 0.02 and other.delay_s == 0.0
