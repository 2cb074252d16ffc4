"""TLS (and mTLS) for both receivers, from ``tls_cert_file`` / ``tls_key_file`` /
``tls_client_ca_file`` (PEM files, read once at start).

- OTLP/HTTP + API: uvicorn's ``ssl_*`` options (:func:`uvicorn_options`); with a client CA,
  ``ssl.CERT_REQUIRED`` — a client without a certificate signed by it fails the handshake.
- OTLP/gRPC: :func:`grpc_credentials` (``grpc.ssl_server_credentials``, ``require_client_auth``
  with a client CA).

The SDK exporters reach it with ``OTEL_EXPORTER_OTLP_ENDPOINT=https://…``,
``OTEL_EXPORTER_OTLP_CERTIFICATE`` (the CA that signed the server certificate) and, for mTLS,
``OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`` / ``OTEL_EXPORTER_OTLP_CLIENT_KEY``.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from chainotel_analyzer.settings import AnalyzerSettings


class TLSConfigError(ValueError):
    """A TLS file cannot be read or is not a usable certificate/key; the message names it."""


def _read(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TLSConfigError(f"cannot read {what} {path}: {exc}") from None


def check_files(settings: AnalyzerSettings) -> None:
    """Load the configured files into an ``ssl.SSLContext`` once, so a bad file stops the start
    with its name instead of failing each handshake. Raises :class:`TLSConfigError`."""
    if settings.tls_cert_file is None:
        return
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"TLS certificate {settings.tls_cert_file} / key {settings.tls_key_file}: {exc}") from None
    if settings.tls_client_ca_file is not None:
        try:
            context.load_verify_locations(settings.tls_client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(f"TLS client CA {settings.tls_client_ca_file}: {exc}") from None


def uvicorn_options(settings: AnalyzerSettings) -> dict:
    """Keyword arguments of ``uvicorn.run`` for the configured TLS (``{}`` without)."""
    if settings.tls_cert_file is None:
        return {}
    options = {"ssl_certfile": str(settings.tls_cert_file), "ssl_keyfile": str(settings.tls_key_file)}
    if settings.tls_client_ca_file is not None:
        options.update(ssl_ca_certs=str(settings.tls_client_ca_file), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options


def grpc_credentials(settings: AnalyzerSettings) -> grpc.ServerCredentials | None:
    """Server credentials for the configured TLS, ``None`` without (plain text)."""
    if settings.tls_cert_file is None:
        return None
    key = _read(settings.tls_key_file, "TLS key")
    cert = _read(settings.tls_cert_file, "TLS certificate")
    ca = _read(settings.tls_client_ca_file, "TLS client CA") if settings.tls_client_ca_file is not None else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)
