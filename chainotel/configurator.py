"""The ``chainotel`` SDK configurator (``OTEL_PYTHON_CONFIGURATOR=chainotel``).

It is the SDK's own configurator (``_OTelSDKConfigurator``: tracer provider, exporters, sampler,
ID generator, resource from the standard ``OTEL_*`` variables) plus one span processor,
:class:`~chainotel.processor.ChainSpanProcessor`, passed through the SDK's ``span_processors=``
argument (SDK ≥ 1.40) so it runs before the exporting ``BatchSpanProcessor``.

The catalog is read here, once, at start-up: ``CHAINOTEL_CATALOG`` (a YAML file) or the built-in
catalog — unless ``CHAINOTEL_CATALOG_URL`` names a live catalog, which is then polled and swapped in
(:mod:`chainotel.catalog.remote`). An invalid file is logged as one error naming the file, the chain and the field; the
service keeps running with chain tagging off.
"""

from __future__ import annotations

import logging
import os

from opentelemetry.sdk._configuration import _OTelSDKConfigurator

__all__ = ["CATALOG_ENV", "ChainotelConfigurator", "catalog_from_env"]

CATALOG_ENV = "CHAINOTEL_CATALOG"
"""Path of the chain catalog YAML file; unset or empty means the built-in catalog."""

_logger = logging.getLogger(__name__)


def catalog_from_env():
    """The catalog named by ``CHAINOTEL_CATALOG`` (or the built-in one), or ``None`` after logging
    one error when it is invalid. Never raises."""
    from chainotel.catalog import CatalogError, default_catalog, load_catalog  # noqa: PLC0415

    path = os.environ.get(CATALOG_ENV, "").strip()
    try:
        return load_catalog(path) if path else default_catalog()
    except CatalogError as exc:
        _logger.error("chainotel: invalid %s, chain tagging is off:\n%s", CATALOG_ENV, exc)
    except Exception:  # noqa: BLE001 - never stop the service
        _logger.exception("chainotel: cannot load the chain catalog, chain tagging is off")
    return None


class ChainotelConfigurator(_OTelSDKConfigurator):
    """Entry point ``opentelemetry_configurator`` → ``chainotel``."""

    def _configure(self, **kwargs) -> None:
        from chainotel.processor import ChainSpanProcessor  # noqa: PLC0415

        from chainotel.catalog.remote import initial_catalog, start_remote_catalog  # noqa: PLC0415

        processor = ChainSpanProcessor(initial_catalog(catalog_from_env))
        processors = list(kwargs.pop("span_processors", None) or [])
        processors.append(processor)
        super()._configure(span_processors=processors, **kwargs)
        start_remote_catalog(processor.set_catalog)  # CHAINOTEL_CATALOG_URL: follow the registry
