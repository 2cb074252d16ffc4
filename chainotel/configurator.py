"""The ``chainotel`` SDK configurator (``OTEL_PYTHON_CONFIGURATOR=chainotel``).

It is the SDK's own configurator (``_OTelSDKConfigurator``, the class distros are told to extend:
tracer provider, exporters, sampler, ID generator, resource from the standard ``OTEL_*``
variables) plus chain tagging:

- :class:`~chainotel.processor.ChainSpanProcessor`, passed through the SDK's ``span_processors=``
  argument (SDK ≥ 1.40) so it runs before the exporting ``BatchSpanProcessor``;
- :class:`~chainotel.sampler.ChainSampler` around the sampler the SDK configured
  (``OTEL_TRACES_SAMPLER``), which adds the chain attributes when a span of a decided trace is
  created.

The configuration (:class:`~chainotel.settings.DistroSettings`) and the catalog are read here,
once, at start-up: ``CHAINOTEL_CATALOG`` (a YAML file) or the built-in catalog;
``CHAINOTEL_TAGGING_ENABLED=false`` configures tracing without chain tagging;
``CHAINOTEL_SPAN_ATTRIBUTES=minimal`` puts ``chain.id`` alone on the spans that are not local roots. An invalid file or
value is logged as one error naming it; the service keeps running, traced, with chain tagging off.
``CHAINOTEL_CATALOG_URL`` names a live catalog instead, polled and swapped in
(:mod:`chainotel.catalog.remote`).
"""

from __future__ import annotations

import logging

from opentelemetry.sdk._configuration import _OTelSDKConfigurator

from chainotel.settings import CATALOG_ENV, DistroSettings

__all__ = ["CATALOG_ENV", "ChainotelConfigurator", "catalog_from_settings"]

_logger = logging.getLogger(__name__)


def catalog_from_settings(settings: DistroSettings):
    """The catalog to tag with: ``settings.catalog`` (or the built-in one); ``None`` when tagging is
    switched off, or after logging one error when the file is invalid. Never raises."""
    from chainotel.catalog import CatalogError, default_catalog, load_catalog  # noqa: PLC0415

    if not settings.tagging_enabled:
        _logger.info("chainotel: CHAINOTEL_TAGGING_ENABLED=false, spans are traced without chain attributes")
        return None
    try:
        return load_catalog(settings.catalog) if settings.catalog else default_catalog()
    except CatalogError as exc:
        _logger.error("chainotel: invalid %s, chain tagging is off:\n%s", CATALOG_ENV, exc)
    except Exception:  # noqa: BLE001 - never stop the service
        _logger.exception("chainotel: cannot load the chain catalog, chain tagging is off")
    return None


def _settings() -> DistroSettings:
    from chainotel.settings import SettingsError  # noqa: PLC0415

    try:
        return DistroSettings.from_env()
    except SettingsError as exc:
        _logger.error("chainotel: invalid configuration, chain tagging is off: %s", exc)
        return DistroSettings(tagging_enabled=False)


class ChainotelConfigurator(_OTelSDKConfigurator):
    """Entry point ``opentelemetry_configurator`` → ``chainotel``."""

    def _configure(self, **kwargs) -> None:
        from opentelemetry import trace  # noqa: PLC0415

        from chainotel.catalog.remote import initial_catalog, start_remote_catalog  # noqa: PLC0415
        from chainotel.processor import ChainSpanProcessor  # noqa: PLC0415
        from chainotel.sampler import install  # noqa: PLC0415

        settings = _settings()
        catalog = initial_catalog(lambda: catalog_from_settings(settings), settings) if settings.tagging_enabled else None
        processor = ChainSpanProcessor(catalog, max_traces=settings.max_traces, span_attributes=settings.span_attributes)
        processors = list(kwargs.pop("span_processors", None) or [])
        processors.append(processor)
        super()._configure(span_processors=processors, **kwargs)
        if settings.tagging_enabled:
            install(trace.get_tracer_provider(), processor)  # a live catalog may arrive later
            start_remote_catalog(processor.set_catalog, settings)  # CHAINOTEL_CATALOG_URL: follow the registry
        else:
            catalog_from_settings(settings)  # logs that tagging is off
