"""Start-up diagnostics: one log record naming the instrumentations loaded and those skipped, and why.

An instrumentation package states the library versions it instruments (its ``instruments`` extra);
``opentelemetry-instrument`` skips one whose library is absent or outside that range — at debug
level, so a service on SQLAlchemy 2.1 with an instrumentation for ``< 2.1`` silently gets no
database spans. This module runs as an ``opentelemetry_post_instrument`` entry point, after
``opentelemetry-instrument`` has loaded the instrumentors, and (when the chainotel distro is in
use) logs once, at INFO on the ``chainotel.diagnostics`` logger, which writes to stderr, e.g.::

    chainotel: instrumentations loaded: fastapi, httpx; skipped: sqlalchemy (installed
    sqlalchemy 2.1.9 is outside the instrumented range sqlalchemy<2.1.0,>=1.0.0), redis
    (redis>=2.6 is not installed), aiohttp-client (aiohttp 3.14.5 is installed, its
    instrumentation opentelemetry-instrumentation-aiohttp-client==0.66b2 is not)

The last kind comes from ``opentelemetry-bootstrap``'s own table (``bootstrap_gen.libraries``):
a library the service has whose instrumentation package is not installed — the ones
``opentelemetry-bootstrap -a install`` would add, or could not because the package is not
published for this ``opentelemetry-instrumentation`` version. Libraries that only the distro
itself depends on (pydantic, …) are left out: they are not the service's.

``CHAINOTEL_STARTUP_LOG=false`` turns it off. Never raises.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

__all__ = ["InstrumentationStatus", "instrumentation_statuses", "log_instrumentations", "summary", "uninstrumented_libraries"]

_logger = logging.getLogger(__name__)
_DISABLED_ENV = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"


@dataclass(frozen=True)
class InstrumentationStatus:
    """One ``opentelemetry_instrumentor`` entry point: ``name`` (e.g. ``sqlalchemy``), ``loaded``,
    and for one that was not loaded, ``reason`` (a sentence fragment)."""

    name: str
    loaded: bool
    reason: str = ""


def _requirement(requirement: object) -> str:
    """A requirement (``packaging`` ``Requirement`` or text) without its marker:
    ``'sqlalchemy<2.1.0,>=1.0.0; extra == "instruments"'`` → ``'sqlalchemy<2.1.0,>=1.0.0'``."""
    return str(requirement).split(";", 1)[0].strip()


def _conflict_reason(conflict) -> str:
    """The reason text of an ``opentelemetry.instrumentation.dependencies.DependencyConflict``."""
    if conflict.required:
        required = _requirement(conflict.required)
        if conflict.found:
            return f"installed {conflict.found} is outside the instrumented range {required}"
        return f"{required} is not installed"
    if conflict.required_any:
        wanted = ", ".join(_requirement(r) for r in conflict.required_any)
        if conflict.found_any:
            return f"installed {', '.join(conflict.found_any)} outside the instrumented ranges {wanted}"
        return f"none of {wanted} is installed"
    return str(conflict)


def _distro_dependencies() -> set[str]:
    """Normalised names of the distributions chainotel itself requires (not its extras)."""
    from importlib.metadata import PackageNotFoundError, requires  # noqa: PLC0415

    from packaging.requirements import Requirement  # noqa: PLC0415

    try:
        declared = requires("chainotel") or []
    except PackageNotFoundError:
        return set()
    out = set()
    for text in declared:
        requirement = Requirement(text)
        if requirement.marker is None or "extra" not in str(requirement.marker):
            out.add(_normalise(requirement.name))
    return out


def _normalise(name: str) -> str:
    """A distribution name in PEP 503 normal form (``SQLAlchemy`` → ``sqlalchemy``)."""
    return name.lower().replace("_", "-").replace(".", "-")


def _installed() -> dict:
    """Normalised name → ``Distribution`` of every installed distribution. Names come from the
    ``.dist-info`` directory where the standard library offers it (``_normalized_name``), since
    parsing every distribution's metadata costs about 1 ms each at start-up."""
    from importlib.metadata import distributions  # noqa: PLC0415

    out = {}
    for dist in distributions():
        name = getattr(dist, "_normalized_name", None) or dist.metadata["Name"] or ""
        out.setdefault(_normalise(name), dist)
    return out


def uninstrumented_libraries(installed: dict | None = None) -> list[InstrumentationStatus]:
    """Installed libraries whose instrumentation package (by ``opentelemetry-bootstrap``'s table) is
    not installed, as skipped statuses named like the instrumentation's entry point
    (``opentelemetry-instrumentation-aiohttp-client`` → ``aiohttp-client``).

    ``installed``: normalised distribution name → ``importlib.metadata.Distribution`` (default:
    this environment's). Libraries chainotel itself depends on are left out.
    """
    from opentelemetry.instrumentation.bootstrap_gen import libraries  # noqa: PLC0415
    from packaging.requirements import Requirement  # noqa: PLC0415

    installed = _installed() if installed is None else installed
    own = _distro_dependencies()
    out: dict[str, InstrumentationStatus] = {}
    for entry in libraries:
        wanted = Requirement(entry["instrumentation"])
        package = _normalise(wanted.name)
        library = Requirement(entry["library"])
        dist = installed.get(_normalise(library.name))
        if dist is None or package in installed or _normalise(library.name) in own:
            continue
        found = dist.version
        if not library.specifier.contains(found, prereleases=True):
            continue
        name = package.removeprefix("opentelemetry-instrumentation-")
        out.setdefault(name, InstrumentationStatus(
            name, False, f"{library.name} {found} is installed, its instrumentation {entry['instrumentation']} is not"))
    return list(out.values())


def instrumentation_statuses(loaded: dict[str, str], disabled: str | None = None) -> list[InstrumentationStatus]:
    """The status of every installed instrumentor entry point.

    Args:
        loaded: name → ``""`` for the instrumentors loaded in this process, else why one that was
            tried was not (recorded by :class:`chainotel.distro.ChainotelDistro`).
        disabled: the ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` value (default: from the environment).
    """
    from importlib.metadata import entry_points  # noqa: PLC0415

    from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts  # noqa: PLC0415

    disabled = os.environ.get(_DISABLED_ENV, "") if disabled is None else disabled
    off = {name.strip() for name in disabled.split(",") if name.strip()}
    out = []
    seen = set()
    for entry_point in entry_points(group="opentelemetry_instrumentor"):
        name = entry_point.name
        if name in seen:
            continue
        seen.add(name)
        if name in loaded:
            out.append(InstrumentationStatus(name, not loaded[name], loaded[name]))
        elif "*" in off or name in off:
            out.append(InstrumentationStatus(name, False, f"disabled by {_DISABLED_ENV}"))
        else:
            conflict = get_dist_dependency_conflicts(entry_point.dist) if entry_point.dist else None
            reason = _conflict_reason(conflict) if conflict else "not loaded"
            out.append(InstrumentationStatus(name, False, reason))
    out.extend(status for status in uninstrumented_libraries() if status.name not in seen)
    return sorted(out, key=lambda s: s.name)


def summary(statuses: list[InstrumentationStatus]) -> str:
    """One line: ``chainotel: instrumentations loaded: a, b; skipped: c (reason), …``."""
    loaded = ", ".join(s.name for s in statuses if s.loaded) or "none"
    skipped = ", ".join(f"{s.name} ({s.reason})" for s in statuses if not s.loaded)
    return f"chainotel: instrumentations loaded: {loaded}" + (f"; skipped: {skipped}" if skipped else "")


def log_instrumentations() -> None:
    """Entry point ``opentelemetry_post_instrument`` → ``chainotel``: log the summary once, if the
    chainotel distro configured this process and ``CHAINOTEL_STARTUP_LOG`` is not false."""
    try:
        from chainotel.distro import ChainotelDistro  # noqa: PLC0415
        from chainotel.settings import DistroSettings  # noqa: PLC0415

        distro = ChainotelDistro()
        if not distro.configured or distro.reported:
            return
        distro.reported = True
        try:
            enabled = DistroSettings.from_env().startup_log
        except ValueError:
            enabled = True  # the configurator already logged the invalid value
        if not enabled:
            return
        if not _logger.handlers:
            # At this point logging is not configured by the application, or only by an
            # instrumentation (opentelemetry-instrumentation-logging adds a root handler), whose
            # level would drop an INFO record: the line goes to stderr on its own handler.
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            _logger.addHandler(handler)
            _logger.setLevel(logging.INFO)
            _logger.propagate = False
        _logger.info(summary(instrumentation_statuses(distro.loaded)))
    except Exception:  # noqa: BLE001 - diagnostics must never break the service
        _logger.debug("chainotel: start-up diagnostics failed", exc_info=True)
