"""The start-up line's list of installed libraries without their instrumentation, from
opentelemetry-bootstrap's own table, on a given set of installed distributions (the line itself,
from a real service: ``test_switches.py``, ``test_integrations.py``)."""

from __future__ import annotations

from importlib.metadata import version

from chainotel.diagnostics import uninstrumented_libraries

INSTRUMENTATION = version("opentelemetry-instrumentation")


class Dist:
    def __init__(self, version: str) -> None:
        self.version = version


def by_name(installed: dict) -> dict:
    return {s.name: s.reason for s in uninstrumented_libraries(installed)}


def test_a_library_without_its_instrumentation_is_named_with_the_package_bootstrap_would_install():
    found = by_name({"aiohttp": Dist("3.14.5"), "redis": Dist("5.0.1"), "opentelemetry-instrumentation-redis": Dist("0")})
    assert found["aiohttp-client"] == (f"aiohttp 3.14.5 is installed, its instrumentation "
                                       f"opentelemetry-instrumentation-aiohttp-client=={INSTRUMENTATION} is not")
    assert "aiohttp-server" in found  # one library, two instrumentations: both named
    assert "redis" not in found  # its instrumentation is installed


def test_outside_the_tables_range_or_a_distro_dependency_is_not_named():
    # aiohttp 4 is outside bootstrap's "aiohttp ~= 3.0"; pydantic (bootstrap maps it to tortoiseorm)
    # is chainotel's own dependency, not the service's library
    assert by_name({"aiohttp": Dist("4.0.0"), "pydantic": Dist("2.7.0")}) == {}
    assert by_name({}) == {}
