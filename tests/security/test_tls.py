"""TLS and mTLS on OTLP/HTTP + API and OTLP/gRPC, with certificates the tests make, reached by the
OpenTelemetry SDK exporters configured the standard way (``OTEL_EXPORTER_OTLP_CERTIFICATE``,
``OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE``/``_KEY``, ``OTEL_EXPORTER_OTLP_HEADERS``) with tokens."""

from __future__ import annotations

import ssl
import subprocess

import httpx
import pytest

from tests.processes import ANALYZER, analyzer_env, running
from tests.security.certs import make_pki
from tests.security.test_auth import TOKENS, bearer, write_auth_file


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def _no_ca_bundle_override(monkeypatch):
    """requests (under the OTLP/HTTP exporter) lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the
    session's CA file, i.e. OTEL_EXPORTER_OTLP_CERTIFICATE; a machine may set them."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def _export(exporter) -> object:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({"service.name": "tls-test"}))
    with provider.get_tracer("tests").start_as_current_span("tls-root") as span:
        pass
    try:
        return exporter.export([span])
    finally:
        exporter.shutdown()


def _exporters(analyzer, timeout_s: float = 20):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return (HttpExporter(endpoint=analyzer.http + "/v1/traces", timeout=timeout_s),
            GrpcExporter(endpoint=f"https://{analyzer.grpc}", timeout=timeout_s))  # fmt: skip


def _tls_env(tmp_path, pki, client_ca: bool) -> dict[str, str]:
    env = {"CHAINOTEL_TLS_CERT_FILE": str(pki["server_cert"]), "CHAINOTEL_TLS_KEY_FILE": str(pki["server_key"]),
           "CHAINOTEL_AUTH_FILE": str(write_auth_file(tmp_path / "tokens.yaml"))}  # fmt: skip
    if client_ca:
        env["CHAINOTEL_TLS_CLIENT_CA_FILE"] = str(pki["ca"])
    return env


def test_tls_with_tokens_from_sdk_exporters(tmp_path, pki, monkeypatch):
    from opentelemetry.sdk.trace.export import SpanExportResult

    with running(tmp_path / "db", _tls_env(tmp_path, pki, False), tls={"ca": pki["ca"]}) as a:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(pki["ca"]))
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20" + TOKENS["collector"][0])
        assert [_export(e) for e in _exporters(a)] == [SpanExportResult.SUCCESS] * 2
        # the API over TLS with a read token; plain HTTP on the TLS port gets nowhere
        verify = a.ssl_context()
        r = httpx.get(a.http + "/api/v1/chains", headers=bearer("viewer"), verify=verify, timeout=10)
        assert r.status_code == 200 and r.json()["chains"]
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{a.http_port}/health", timeout=5)
        # a server certificate from an unknown CA is refused by the exporters
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(pki["other_ca"]))
        assert [_export(e) for e in _exporters(a, timeout_s=3)] == [SpanExportResult.FAILURE] * 2
        assert httpx.get(a.http + "/api/v1/traces/" + "0" * 31 + "1/critical-path", headers=bearer("viewer"),
                         verify=verify, timeout=10).status_code == 404  # fmt: skip


def test_mtls_needs_a_client_certificate_from_the_ca(tmp_path, pki, monkeypatch):
    from opentelemetry.sdk.trace.export import SpanExportResult

    tls = {"ca": pki["ca"], "cert": pki["client_cert"], "key": pki["client_key"]}
    with running(tmp_path / "db", _tls_env(tmp_path, pki, True), tls=tls) as a:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(pki["ca"]))
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20" + TOKENS["collector"][0])
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", str(pki["client_cert"]))
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", str(pki["client_key"]))
        assert [_export(e) for e in _exporters(a)] == [SpanExportResult.SUCCESS] * 2
        # a client certificate of another CA, or none: the handshake fails
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", str(pki["other_client_cert"]))
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", str(pki["other_client_key"]))
        assert [_export(e) for e in _exporters(a, timeout_s=3)] == [SpanExportResult.FAILURE] * 2
        no_cert = ssl.create_default_context(cafile=str(pki["ca"]))
        with pytest.raises(httpx.TransportError):
            httpx.get(a.http + "/health", verify=no_cert, timeout=5)
        assert httpx.get(a.http + "/health", verify=a.ssl_context(), timeout=5).status_code == 200


def test_bad_tls_settings_stop_the_start(tmp_path, pki):
    base = [ANALYZER, "serve", "--host", "127.0.0.1", "--grpc-port", "-1", "--http-port", "1",
            "--clickhouse-url", f"chdb://{tmp_path / 'db'}"]  # fmt: skip
    for env, reason in [
        ({"CHAINOTEL_TLS_CERT_FILE": str(pki["server_cert"])}, "go together"),
        ({"CHAINOTEL_TLS_CLIENT_CA_FILE": str(pki["ca"])}, "needs tls_cert_file"),
        ({"CHAINOTEL_TLS_CERT_FILE": str(pki["server_cert"]), "CHAINOTEL_TLS_KEY_FILE": str(pki["client_key"])},
         "TLS certificate"),
    ]:
        out = subprocess.run(base, env=analyzer_env(env), capture_output=True, text=True, timeout=60)
        assert out.returncode == 2 and reason in out.stderr, out.stderr
