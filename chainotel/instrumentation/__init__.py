"""OpenTelemetry instrumentations that chainotel ships for libraries without an upstream one.

Each is a ``BaseInstrumentor`` registered as an ``opentelemetry_instrumentor`` entry point, so
``opentelemetry-instrument`` loads it like any contrib instrumentation (and
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` leaves it out by its entry-point name).
"""
