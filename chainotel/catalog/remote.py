"""A live chain catalog: a service follows the analyzer's chain registry without a restart.

With ``CHAINOTEL_CATALOG_URL`` set (e.g. ``http://analyzer:4318/api/v1/catalog``; both variables are
fields of :class:`chainotel.settings.DistroSettings`), a daemon thread fetches the catalog at start
and then every ``CHAINOTEL_CATALOG_POLL_INTERVAL_S`` seconds (default 30, each wait drawn uniformly
within ±10 % so that many services do not poll in step — the jitter Jaeger's remote sampling
clients apply too), sending ``If-None-Match`` with the last ``ETag``. What it
gets is validated like a catalog file (:func:`chainotel.catalog.parse_catalog`); a valid catalog is
handed to ``apply`` (the span processor's ``set_catalog``), which swaps it in for new traces.

On any error — unreachable, timeout, an HTTP error, an invalid or oversized body — the last good
catalog stays in use, and the error is logged at warning level once until the next success. Before
the first success the service tags by ``CHAINOTEL_CATALOG`` when it is also set (the start-up
fallback), else by no chain (:func:`initial_catalog`). The application's requests and start-up never
wait for the poller (it runs on its own thread; each fetch has a timeout), and nothing it does raises
into the application.

Only the standard library is used (``urllib.request``), so the distribution needs no HTTP client.
"""

from __future__ import annotations

import logging
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Callable

from chainotel.catalog.catalog import Catalog, CatalogError
from chainotel.catalog.loader import parse_catalog
from chainotel.settings import DistroSettings

__all__ = ["RemoteCatalog", "initial_catalog", "start_remote_catalog"]

_logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 4 * 1024 * 1024
"""A catalog body larger than this is refused (a catalog of 30 chains is about 10 KB)."""

JITTER = 0.1
"""Each wait between polls is the interval × a uniform factor in [1 − JITTER, 1 + JITTER]."""


def initial_catalog(fallback: Callable[[], Catalog | None], settings: DistroSettings) -> Catalog | None:
    """The catalog a service starts tagging with: ``fallback()`` (the ``CHAINOTEL_CATALOG`` file, or
    the built-in catalog) — unless a live catalog is configured (``settings.catalog_url``) and
    ``CHAINOTEL_CATALOG`` is not set: then an empty catalog (no chain) until the first fetch, since
    the built-in catalog describes another platform than the registry."""
    if settings.catalog_url and not settings.catalog:
        return Catalog([], source="<waiting for CHAINOTEL_CATALOG_URL>")
    return fallback()


class RemoteCatalog:
    """Polls ``settings.url`` and hands each new valid catalog to ``apply`` (see the module doc).

    ``etag``: the last ``ETag`` received; ``catalog``: the last good catalog (``None`` before the
    first success); ``fetches``, ``failures``: counters. :meth:`start` starts the daemon thread,
    :meth:`stop` ends it; :meth:`poll_once` is one fetch (used by the thread, and by tests).
    """

    def __init__(self, settings: DistroSettings, apply: Callable[[Catalog], None]):
        self.url = settings.catalog_url
        self.poll_interval_s = settings.catalog_poll_interval_s
        self._apply = apply
        self.etag: str | None = None
        self.catalog: Catalog | None = None
        self.fetches = 0
        self.failures = 0
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def timeout_s(self) -> float:
        """Each fetch's timeout: the smaller of 10 s and the poll interval."""
        return min(10.0, self.poll_interval_s)

    def start(self) -> RemoteCatalog:
        """Start polling on a daemon thread (the first fetch at once). Never raises."""
        try:
            self._thread = threading.Thread(target=self._run, name="chainotel-catalog", daemon=True)
            self._thread.start()
        except Exception:  # noqa: BLE001 - never stop the service
            _logger.exception("chainotel: cannot start the live catalog poller")
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop polling; waits up to ``timeout_s`` for a fetch in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            wait_s = self.poll_interval_s * random.uniform(1 - JITTER, 1 + JITTER)
            self._stop.wait(wait_s)

    def poll_once(self) -> bool:
        """One conditional GET; ``True`` when a new catalog was applied. Never raises."""
        self.fetches += 1
        try:
            text, etag = self._fetch()
            if text is None:  # 304 Not Modified
                self._recovered()
                return False
            catalog = parse_catalog(text, self.url)
            self._apply(catalog)
            self.catalog, self.etag = catalog, etag
            self._recovered()
            _logger.info("chainotel: live catalog from %s applied (%d chains)", self.url, len(catalog))
            return True
        except CatalogError as exc:
            self._failed(f"the catalog is invalid, keeping the last good one:\n{exc}")
        except Exception as exc:  # noqa: BLE001 - network, HTTP, decoding: keep the last good catalog
            self._failed(f"cannot fetch it ({type(exc).__name__}: {exc}); keeping the last good catalog")
        return False

    def _fetch(self) -> tuple[str | None, str | None]:
        """``(body, ETag)``, or ``(None, ETag)`` for 304. Raises on any other answer."""
        headers = {"Accept": "application/json", "User-Agent": "chainotel-catalog"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        request = urllib.request.Request(self.url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - http(s) only
                body = response.read(MAX_BODY_BYTES + 1)
                if len(body) > MAX_BODY_BYTES:
                    raise ValueError(f"catalog larger than {MAX_BODY_BYTES} bytes")
                return body.decode("utf-8"), response.headers.get("ETag")
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return None, self.etag
            raise

    def _failed(self, message: str) -> None:
        self.failures += 1
        if not self._failing:
            self._failing = True
            _logger.warning("chainotel: live catalog %s: %s", self.url, message)

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            _logger.warning("chainotel: live catalog %s reachable and valid again", self.url)


def start_remote_catalog(apply: Callable[[Catalog], None], settings: DistroSettings) -> RemoteCatalog | None:
    """Start a :class:`RemoteCatalog` when ``settings.catalog_url`` (``CHAINOTEL_CATALOG_URL``) is
    set; ``None`` otherwise. Never raises."""
    try:
        return RemoteCatalog(settings, apply).start() if settings.catalog_url else None
    except Exception:  # noqa: BLE001 - never stop the service
        _logger.exception("chainotel: cannot start the live catalog")
        return None
