"""Safe defaults: loopback binding, CORS off unless origins are configured, /docs that can be turned off."""

from __future__ import annotations

from chainotel_analyzer.settings import AnalyzerSettings
from tests.processes import serve


def test_defaults_are_loopback_without_cors(monkeypatch):
    for name in ("CHAINOTEL_HOST", "CHAINOTEL_CORS_ALLOW_ORIGINS", "CHAINOTEL_AUTH_FILE"):
        monkeypatch.delenv(name, raising=False)
    settings = AnalyzerSettings()
    assert settings.host == "127.0.0.1" and settings.cors_origins() == [] and settings.auth_file is None
    assert not settings.allow_unauthenticated
    monkeypatch.setenv("CHAINOTEL_CORS_ALLOW_ORIGINS", " https://ui.example.com, http://localhost:3000 ,")
    monkeypatch.setenv("CHAINOTEL_AUTH_FILE", "")
    settings = AnalyzerSettings()
    assert settings.cors_origins() == ["https://ui.example.com", "http://localhost:3000"] and settings.auth_file is None


def test_cors_only_for_configured_origins_and_docs_off(tmp_path):
    origin = {"Origin": "https://ui.example.com"}
    preflight = {**origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    with serve(tmp_path / "plain") as http:
        r = http.get("/api/v1/chains", headers=origin)
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
        assert "access-control-allow-origin" not in http.options("/api/v1/chains", headers=preflight).headers
        assert http.get("/docs").status_code == 200 and http.get("/openapi.json").status_code == 200
    env = {"CHAINOTEL_CORS_ALLOW_ORIGINS": "https://ui.example.com", "CHAINOTEL_DOCS_ENABLED": "false"}
    with serve(tmp_path / "cors", env) as http:
        r = http.options("/api/v1/chains", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://ui.example.com"
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
        r = http.get("/api/v1/chains", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in r.headers
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert http.get(path).status_code == 404
        assert http.get("/health").status_code == 200
