"""Authentication with scopes against real analyzer processes: OTLP/HTTP, OTLP/gRPC (SDK exporters
and raw calls), the API, the CLI; and the refusal to serve a non-loopback interface without tokens."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from chainotel_analyzer.security.policy import ExposureError, is_loopback, load_tokens, required_scope
from chainotel_analyzer.security.tokens import AuthFileError, Scope, TokenSet
from tests.ingest.otlp_data import request
from tests.processes import ANALYZER, analyzer_env, running

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TOKENS = {  # name -> (token, scopes)
    "collector": ("ingest-token-0123456789abcdef", ["ingest"]),
    "viewer": ("read-token-0123456789abcdef", ["read"]),
    "operator": ("admin-token-0123456789abcdef", ["read", "admin"]),
}
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def write_auth_file(path: Path, tokens: dict = TOKENS) -> Path:
    """A token file of ``tokens`` as SHA-256 entries (the production form)."""
    lines = []
    for name, (token, scopes) in tokens.items():
        lines.append(f"- name: {name}\n  token_sha256: '{hashlib.sha256(token.encode()).hexdigest()}'\n"
                     f"  scopes: [{', '.join(scopes)}]\n")  # fmt: skip
    path.write_text("".join(lines))
    return path


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name][0]}"}


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    env = {"CHAINOTEL_AUTH_FILE": str(write_auth_file(tmp / "tokens.yaml"))}
    with running(tmp / "db", env) as analyzer:
        yield analyzer


# --- the token file and the rule, without a server ---------------------------------------------


def test_token_file_entries_and_errors(caplog):
    tokens = TokenSet.parse(
        "- {name: a, token_sha256: %s, scopes: [ingest]}\n- {name: b, token: plain-token-for-dev-only, scopes: [read]}\n"
        % hashlib.sha256(b"tok-a").hexdigest()
    )
    assert tokens.authenticate("tok-a").name == "a" and tokens.authenticate("tok-a").scopes == {Scope.INGEST}
    assert tokens.authenticate("plain-token-for-dev-only").name == "b"
    assert tokens.authenticate("tok-b") is None and tokens.authenticate("") is None
    assert "plain token for 'b'" in caplog.text and "plain-token-for-dev-only" not in caplog.text
    for text, reason in [
        ("[]", "non-empty YAML list"),
        ("- {name: a, token_sha256: abc, scopes: [ingest]}", "64 hex digits"),
        ("- {name: a, token_sha256: %s, scopes: [ingest]}" % ("1" * 64), "quote the 64 hex digits"),
        ("- {name: a, token_sha256: %s, scopes: [write]}" % ("'" + "0" * 64 + "'"), "one of ingest, read, admin"),
        ("- {name: a, token_sha256: %s}" % ("'" + "0" * 64 + "'"), "scopes must be a non-empty list"),
        ("- {name: a, scopes: [read]}", "exactly one of token_sha256"),
        ("- {name: a, token: short, scopes: [read]}", "at least 16 characters"),
        ("- {name: a, token_sha256: %s, scopes: [read]}\n- {name: a, token_sha256: %s, scopes: [read]}"
         % ("'" + "0" * 64 + "'", "'" + "1" * 64 + "'"), "duplicate name"),
        ("- {name: a, token_sha256: %s, scopes: [read], extra: 1}" % ("'" + "0" * 64 + "'"), "unknown field"),
        ("- {name: 'a b', token_sha256: %s, scopes: [read]}" % ("'" + "0" * 64 + "'"), "name must be"),
    ]:
        with pytest.raises(AuthFileError, match=reason):
            TokenSet.parse(text)


def test_scope_rule_and_loopback():
    assert required_scope("GET", "/health") is None and required_scope("GET", "/openapi.json") is None
    assert required_scope("POST", "/v1/traces") is Scope.INGEST
    assert required_scope("GET", "/api/v1/chains") is Scope.READ
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert required_scope(method, "/api/v1/chains/B5") is Scope.ADMIN
    assert required_scope("POST", "/health") is Scope.ADMIN
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.com", ""]))
    assert load_tokens(None, False, "127.0.0.1") is None
    assert load_tokens(None, True, "0.0.0.0") is None
    with pytest.raises(ExposureError, match="CHAINOTEL_AUTH_FILE"):
        load_tokens(None, False, "0.0.0.0")


def test_serve_refuses_a_public_interface_without_tokens(tmp_path):
    """Exits before binding anything: no auth file, 0.0.0.0, no CHAINOTEL_ALLOW_UNAUTHENTICATED."""
    cmd = [ANALYZER, "serve", "--host", "0.0.0.0", "--grpc-port", "-1", "--http-port", "1",
           "--clickhouse-url", f"chdb://{tmp_path / 'db'}"]  # fmt: skip
    out = subprocess.run(cmd, env=analyzer_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "without authentication" in out.stderr, out.stderr
    assert not (tmp_path / "db").exists()
    (tmp_path / "bad.yaml").write_text("- {name: x, token_sha256: nothex, scopes: [read]}\n")
    out = subprocess.run(cmd[:2] + ["--host", "127.0.0.1"] + cmd[4:], capture_output=True, text=True, timeout=60,
                         env=analyzer_env({"CHAINOTEL_AUTH_FILE": str(tmp_path / "bad.yaml")}))  # fmt: skip
    assert out.returncode == 2 and "64 hex digits" in out.stderr, out.stderr


# --- a running analyzer with tokens -------------------------------------------------------------


def test_api_needs_a_token_with_the_scope(secured):
    with httpx.Client(base_url=secured.http, timeout=30) as http:
        health = http.get("/health")
        assert health.status_code == 200 and "token" not in health.text
        doc = http.get("/openapi.json").json()
        assert doc["components"]["securitySchemes"]["bearerAuth"] == {**doc["components"]["securitySchemes"]["bearerAuth"],
                                                                       "type": "http", "scheme": "bearer"}  # fmt: skip
        delete = doc["paths"]["/api/v1/chains/{chain}"]["delete"]
        assert delete["security"] == [{"bearerAuth": []}] and {"401", "403"} <= delete["responses"].keys()
        assert "`admin` scope" in delete["description"]
        assert "`ingest` scope" in doc["paths"]["/v1/traces"]["post"]["description"]
        assert "security" not in doc["paths"]["/health"]["get"]
        # an unauthenticated DELETE (it used to delete the chain) and a read token's
        r = http.delete("/api/v1/chains/B5")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert "bearer token" in r.json()["detail"]
        r = http.delete("/api/v1/chains/B5", headers=bearer("viewer"))
        assert r.status_code == 403 and 'error="insufficient_scope"' in r.headers["www-authenticate"]
        assert "'admin'" in r.json()["detail"]
        assert http.delete("/api/v1/chains/B5", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
        assert http.delete("/api/v1/chains/B5", headers={"Authorization": "Basic " + "x" * 20}).status_code == 401
        assert http.get("/api/v1/chains/B5", headers=bearer("viewer")).status_code == 200  # not deleted
        # reads need `read`; an ingest token cannot read
        assert http.get("/api/v1/chains").status_code == 401
        assert http.get("/api/v1/chains", headers=bearer("collector")).status_code == 403
        assert http.get("/api/v1/analytics/performance/real-time", headers=bearer("viewer")).status_code == 200
        # a registry change records the token's name, never the token
        doc = http.get("/api/v1/chains/B5", headers=bearer("viewer")).json()
        assert doc["changed_by"] == ""
        r = http.put("/api/v1/chains/B5", json=doc["definition"], headers=bearer("operator"))
        assert r.status_code == 200, r.text
        assert r.json()["changed_by"] == "operator" and r.json()["version"] == doc["version"] + 1
        assert http.delete("/api/v1/chains/B5", headers=bearer("operator")).status_code == 204


def test_otlp_http_needs_an_ingest_token(secured, monkeypatch):
    body = request(n_traces=1, spans_per_trace=2).SerializeToString()
    url = secured.http + "/v1/traces"
    r = httpx.post(url, content=body, headers=PROTOBUF, timeout=30)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert status_pb2.Status.FromString(r.content).code == 16  # UNAUTHENTICATED
    r = httpx.post(url, content=b"{}", headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 401 and r.json()["code"] == 16
    r = httpx.post(url, content=body, headers={**PROTOBUF, **bearer("viewer")}, timeout=30)
    assert r.status_code == 403 and status_pb2.Status.FromString(r.content).code == 7  # PERMISSION_DENIED
    assert httpx.post(url, content=body, headers={**PROTOBUF, **bearer("collector")}, timeout=30).status_code == 200

    # the SDK exporter, configured the standard way (percent-encoded header value)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20" + TOKENS["collector"][0])
    assert _export_one(OTLPSpanExporter(endpoint=url, timeout=10)) == SpanExportResult.SUCCESS
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20" + TOKENS["viewer"][0])
    assert _export_one(OTLPSpanExporter(endpoint=url, timeout=10)) == SpanExportResult.FAILURE


def test_otlp_grpc_needs_an_ingest_token(secured, monkeypatch):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20" + TOKENS["collector"][0])
    assert _export_one(OTLPSpanExporter(endpoint=secured.grpc, insecure=True, timeout=10)) == SpanExportResult.SUCCESS

    body = request(n_traces=1, spans_per_trace=2).SerializeToString()
    with grpc.insecure_channel(secured.grpc) as channel:
        export = channel.unary_unary(METHOD, request_serializer=None,
                                     response_deserializer=ExportTraceServiceResponse.FromString)  # fmt: skip
        for metadata, code in [
            ((), grpc.StatusCode.UNAUTHENTICATED),
            ((("authorization", "Bearer not-a-token"),), grpc.StatusCode.UNAUTHENTICATED),
            ((("authorization", "Bearer " + TOKENS["viewer"][0]),), grpc.StatusCode.PERMISSION_DENIED),
        ]:
            with pytest.raises(grpc.RpcError) as err:
                export(body, timeout=10, metadata=metadata)
            assert err.value.code() == code, err.value
        export(body, timeout=10, metadata=(("authorization", "Bearer " + TOKENS["collector"][0]),))


def test_cli_sends_chainotel_token(secured, monkeypatch):
    from typer.testing import CliRunner

    from chainotel.cli.app import app

    runner = CliRunner()
    monkeypatch.delenv("CHAINOTEL_TOKEN", raising=False)
    out = runner.invoke(app, ["health", "--analyzer", secured.http, "--json"])
    assert out.exit_code == 2 and "401" in out.output and "CHAINOTEL_TOKEN" in out.output
    monkeypatch.setenv("CHAINOTEL_TOKEN", TOKENS["viewer"][0])
    out = runner.invoke(app, ["health", "--analyzer", secured.http, "--json"])
    assert out.exit_code == 0, out.output


def _export_one(exporter) -> object:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(resource=Resource.create({"service.name": "auth-test"}))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("auth-root") as span:
        pass
    try:
        return exporter.export([span])
    finally:
        exporter.shutdown()
