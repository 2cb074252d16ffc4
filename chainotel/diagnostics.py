"""Start-up diagnostics: one log record naming the instrumentations loaded and those skipped, and why.

An instrumentation package states the library versions it instruments (its ``instruments`` extra);
``opentelemetry-instrument`` skips one whose library is absent or outside that range — at debug
level, so a service on SQLAlchemy 2.1 with an instrumentation for ``< 2.1`` silently gets no
database spans. This module runs as an ``opentelemetry_post_instrument`` entry point, after
``opentelemetry-instrument`` has loaded the instrumentors, and (when the chainotel distro is in
use) logs once, at INFO on the ``chainotel.diagnostics`` logger, which writes to stderr, e.g.::

    chainotel: instrumentations loaded: fastapi, httpx; skipped: sqlalchemy (installed
    sqlalchemy 2.1.9 is outside the instrumented range sqlalchemy<2.1.0,>=1.0.0), redis
    (redis>=2.6 is not installed)

``CHAINOTEL_STARTUP_LOG=false`` turns it off. Never raises.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

__all__ = ["InstrumentationStatus", "instrumentation_statuses", "log_instrumentations", "summary"]

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
