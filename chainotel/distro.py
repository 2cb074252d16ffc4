"""The ``chainotel`` OpenTelemetry distro (``OTEL_PYTHON_DISTRO=chainotel``).

``opentelemetry-instrument`` calls :meth:`ChainotelDistro.configure` before the configurator and
the instrumentors. It only sets *defaults* (``os.environ.setdefault``: a value the user exported
is never changed):

======================== ================================ ===========================================
variable                 default                          why
======================== ================================ ===========================================
OTEL_TRACES_EXPORTER     ``otlp``                         spans go to any OTLP receiver
OTEL_METRICS_EXPORTER    ``none``                         the chainotel analyzer receives traces only
OTEL_LOGS_EXPORTER       ``none``                         idem; set ``otlp`` to export them
OTEL_PROPAGATORS         ``tracecontext,baggage,xchain``  W3C context + ``X-Chain-ID``
OTEL_PYTHON_ID_GENERATOR ``xchain``                       lone ``X-Chain-ID`` → that trace ID
======================== ================================ ===========================================

and ``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`` when neither it nor
``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` is set and the OTLP/gRPC exporter is not installed: the SDK
reads ``otlp`` as OTLP/gRPC by default, and ``pip install chainotel`` ships the OTLP/HTTP exporter
only (``chainotel[grpc]`` adds gRPC) — without this default the SDK would fail to configure
(http/protobuf is also the OTLP spec's recommended default; its endpoint is ``:4318``).

``opentelemetry.propagate`` builds the global propagator from ``OTEL_PROPAGATORS`` when it is first
imported; if that happened before this distro ran, the global text map is rebuilt from the
environment after the defaults are set, so the default really is ``tracecontext,baggage,xchain``.
The rebuild reads ``OTEL_PROPAGATORS`` as the OpenTelemetry spec and the API define it (a comma
list of names of the ``opentelemetry_propagator`` entry point group, ``none`` for no propagator)
and installs a ``CompositePropagator`` of them with ``set_global_textmap``. If a name is unknown
or a propagator fails to load, only the rebuild is skipped, with a warning — the SDK is still
configured (an exception here would make ``opentelemetry-instrument`` skip the whole configuration).

It also installs :class:`~chainotel.propagator.XChainResponsePropagator` as the global HTTP
response propagator, so every response of an instrumented server carries ``X-Chain-ID``.
"""

from __future__ import annotations

import logging
import os
import sys

from opentelemetry.instrumentation.distro import BaseDistro

__all__ = ["DEFAULTS", "ChainotelDistro", "propagators_from_env"]

_logger = logging.getLogger(__name__)

DEFAULTS: dict[str, str] = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
    "OTEL_PROPAGATORS": "tracecontext,baggage,xchain",
    "OTEL_PYTHON_ID_GENERATOR": "xchain",
}
"""Environment defaults set by the distro (never overriding a value the user set)."""

_PROTOCOL, _TRACES_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"


def _grpc_exporter_installed() -> bool:
    """Whether the SDK's ``otlp_proto_grpc`` span exporter entry point is installed."""
    from importlib.metadata import entry_points  # noqa: PLC0415

    return bool(entry_points(group="opentelemetry_traces_exporter", name="otlp_proto_grpc"))


class ChainotelDistro(BaseDistro):
    """Entry point ``opentelemetry_distro`` → ``chainotel``.

    A singleton (as every ``BaseDistro``). Attributes for :mod:`chainotel.diagnostics`:
    ``configured`` (this process was configured by it), ``loaded`` (instrumentor name → ``""``
    when loaded, else why not: its library missing, or the error its ``instrument()`` raised),
    ``reported`` (the start-up summary was logged).
    """

    configured = False
    reported = False
    loaded: dict[str, str] = {}

    def load_instrumentor(self, entry_point, **kwargs) -> None:
        """Load the instrumentor as ``BaseDistro`` does, recording the outcome for the start-up
        summary; errors propagate to ``opentelemetry-instrument`` unchanged."""
        try:
            super().load_instrumentor(entry_point, **kwargs)
        except ModuleNotFoundError as exc:
            self.loaded[entry_point.name] = f"{exc.name} is not installed" if exc.name else str(exc)
            raise
        except Exception as exc:
            self.loaded[entry_point.name] = f"failed: {type(exc).__name__}: {exc}"
            raise
        self.loaded[entry_point.name] = ""

    def _configure(self, **kwargs) -> None:
        type(self).configured = True
        type(self).loaded = {}
        for name, value in DEFAULTS.items():
            os.environ.setdefault(name, value)
        if not (os.environ.get(_PROTOCOL) or os.environ.get(_TRACES_PROTOCOL)) and not _grpc_exporter_installed():
            os.environ[_PROTOCOL] = "http/protobuf"
        if "opentelemetry.propagate" in sys.modules:  # imported before the defaults were set
            _rebuild_global_textmap()
        from opentelemetry.instrumentation.propagators import set_global_response_propagator  # noqa: PLC0415

        from chainotel.propagator import XChainResponsePropagator  # noqa: PLC0415

        set_global_response_propagator(XChainResponsePropagator())


def _rebuild_global_textmap() -> None:
    """Set the global text map propagator from ``OTEL_PROPAGATORS`` as it is now. Never raises: if
    a propagator cannot be loaded, the propagator built at import stays (with a warning)."""
    from opentelemetry import propagate  # noqa: PLC0415 - already imported

    try:
        propagate.set_global_textmap(propagators_from_env(os.environ.get("OTEL_PROPAGATORS", "")))
    except Exception:  # noqa: BLE001 - a propagator problem must not leave the SDK unconfigured
        _logger.warning(
            "chainotel: could not rebuild the global propagator from OTEL_PROPAGATORS=%r; keeping the one "
            "built when opentelemetry.propagate was imported, so X-Chain-ID may not reach downstream "
            "services. Export OTEL_PROPAGATORS=%s before the process starts to avoid the rebuild.",
            os.environ.get("OTEL_PROPAGATORS"), DEFAULTS["OTEL_PROPAGATORS"], exc_info=True,
        )


def propagators_from_env(value: str):
    """The ``CompositePropagator`` named by an ``OTEL_PROPAGATORS`` value: comma-separated names of
    the ``opentelemetry_propagator`` entry point group, in order; ``none`` anywhere means no
    propagator; empty means the spec's default ``tracecontext,baggage``.

    Raises:
        ValueError: a name is not an installed propagator.
    """
    from importlib.metadata import entry_points  # noqa: PLC0415

    from opentelemetry.propagators.composite import CompositePropagator  # noqa: PLC0415

    names = [name.strip() for name in (value or "tracecontext,baggage").split(",") if name.strip()]
    if any(name.lower() == "none" for name in names):
        return CompositePropagator([])
    propagators = []
    for name in names:
        found = entry_points(group="opentelemetry_propagator", name=name)
        if not found:
            raise ValueError(f"propagator {name!r} in OTEL_PROPAGATORS is not installed")
        propagators.append(next(iter(found)).load()())
    return CompositePropagator(propagators)
