"""The console with an auth file, in Chromium: pages send the browser to the login page and back;
the login takes a token with the read scope; the session cookie is HttpOnly, SameSite=Strict (and
Secure over TLS) and holds no token; the API does not take the cookie; resolving an alert needs an
admin session; logout ends the session for good."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.console.browser import Watched, browser, require_chromium  # noqa: F401 - fixtures
from tests.monitoring.traffic import traces_request, wait_for
from tests.processes import running

sync_api = require_chromium()

TOKENS = {  # name -> (token, scopes)
    "collector": ("console-ingest-token-0123456789", ["ingest"]),
    "viewer": ("console-read-token-0123456789", ["read"]),
    "operator": ("console-admin-token-0123456789", ["read", "admin"]),
}
CATALOG = """chains:
  - id: B4
    name: Orders
    category: service_communication
    max_duration_ms: 1000
    alerts: {window: 600s, for: 0s, error_rate_above: 0.2, sla_compliance_below: null}
"""


def auth_file(path: Path) -> Path:
    path.write_text("".join(
        f"- name: {name}\n  token_sha256: '{hashlib.sha256(token.encode()).hexdigest()}'\n  scopes: [{', '.join(scopes)}]\n"
        for name, (token, scopes) in TOKENS.items()))  # fmt: skip
    return path


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name][0]}"}


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """An analyzer with the auth file above and a firing B4 alert; yields its base URL."""
    tmp = tmp_path_factory.mktemp("login")
    (tmp / "chains.yaml").write_text(CATALOG)
    env = {"CHAINOTEL_AUTH_FILE": str(auth_file(tmp / "tokens.yaml")), "CHAINOTEL_CATALOG": str(tmp / "chains.yaml"),
           "CHAINOTEL_ALERT_EVAL_INTERVAL_S": "0.3"}  # fmt: skip
    with running(tmp / "db", env, grpc=False) as analyzer:
        body = traces_request("B4", 5, 20, error=True).SerializeToString()
        r = httpx.post(analyzer.http + "/v1/traces", content=body, timeout=30,
                       headers={"Content-Type": "application/x-protobuf", **bearer("collector")})  # fmt: skip
        assert r.status_code == 200, r.text
        wait_for(lambda: httpx.get(analyzer.http + "/api/v1/alerts", params={"state": "firing"}, headers=bearer("viewer"),
                                   timeout=10).json()["alerts"], 30, "B4 firing")  # fmt: skip
        yield analyzer.http


def _log_in(page, name: str) -> None:
    page.locator('input[name="token"]').fill(TOKENS[name][0])
    with page.expect_navigation():
        page.locator("form.login button").click()


def test_login_with_a_read_token_and_back_to_the_page(secured, browser):
    base = secured
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    w = Watched(browser, context=context, expected=(401, 403))
    page = w.goto(base + "/ui/chains/B4?range=15m")  # 303 to the login page
    assert page.url == base + "/ui/login?next=" + quote("/ui/chains/B4?range=15m", safe="")
    w.shot("login-1280")
    for token, status, message in (("wrong-token", 401, "Unknown token"), (TOKENS["collector"][0], 403, "lacks the 'read' scope")):
        page.locator('input[name="token"]').fill(token)
        with page.expect_navigation() as nav:
            page.locator("form.login button").click()
        assert nav.value.status == status and message in page.locator("#login-error").inner_text()
        assert context.cookies() == []
    _log_in(page, "viewer")
    assert page.url == base + "/ui/chains/B4?range=15m" and page.locator("#who").inner_text() == "viewer"
    [cookie] = context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == ("chainotel_session", True, "Strict", False)
    assert all(t not in cookie["value"] for t, _ in TOKENS.values()) and len(cookie["value"]) >= 40
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it
    assert TOKENS["viewer"][0] not in page.content() and TOKENS["viewer"][0] not in page.url
    # the API keeps to bearer tokens: the cookie alone gets 401
    # (the body is read too: an unread body is cancelled by the next navigation, which Chromium reports
    # as a failed request)
    assert page.evaluate("fetch('/api/v1/chains').then(async r => { await r.text(); return r.status; })") == 401
    # every page opens with the session
    for path in ("/ui/", "/ui/alerts", "/ui/services/gateway"):
        assert w.goto(base + path).url == base + path
    w.close()
    context.close()


def test_resolving_needs_an_admin_session_and_logout_ends_it(secured, browser):
    base = secured
    firing = httpx.get(base + "/api/v1/alerts", params={"state": "firing"}, headers=bearer("viewer"), timeout=10).json()["alerts"]
    alert_id = firing[0]["alert_id"]
    context = browser.new_context()
    w = Watched(browser, context=context, expected=(403,))
    page = w.goto(base + "/ui/alerts")
    _log_in(page, "viewer")
    assert page.url == base + "/ui/alerts"
    assert page.locator(f'tr[data-alert-id="{alert_id}"]').count() == 1 and page.locator("form.resolve").count() == 0
    session = context.cookies()[0]["value"]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.content()).group(1)  # the logout form's
    with httpx.Client(base_url=base, cookies={"chainotel_session": session}, timeout=10) as as_viewer:
        r = as_viewer.post(f"/ui/alerts/{alert_id}/resolve", data={"note": "x", "csrf": csrf})
        assert r.status_code == 403 and "admin" in r.text
    # log out: the login page again, and the old cookie opens nothing
    with page.expect_navigation():
        page.locator(".who button").click()
    assert page.url == base + "/ui/login" and context.cookies() == []
    r = httpx.get(base + "/ui/alerts", cookies={"chainotel_session": session}, timeout=10)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next=")

    page = w.goto(base + "/ui/alerts")
    _log_in(page, "operator")
    form = page.locator(f'tr[data-alert-id="{alert_id}"] form.resolve')
    form.locator('input[name="note"]').fill("checked by the operator")
    with page.expect_navigation():
        form.locator("button").click()
    assert page.url == base + f"/ui/alerts?resolved={alert_id}"
    done = httpx.get(base + "/api/v1/alerts", params={"chain": "B4"}, headers=bearer("viewer"), timeout=10).json()["alerts"]
    assert [(a["state"], a["note"]) for a in done if a["alert_id"] == alert_id] == [("resolved", "checked by the operator")]
    w.close()
    context.close()


def test_login_refuses_other_sites_and_open_redirects(secured):
    base = secured
    with httpx.Client(base_url=base, timeout=10) as client:
        r = client.post("/ui/login", data={"token": TOKENS["viewer"][0], "next": "/ui/"}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "set-cookie" not in r.headers
        for next_path in ("https://evil.example/", "//evil.example/ui/", "/api/v1/chains"):
            r = client.post("/ui/login", data={"token": TOKENS["viewer"][0], "next": next_path})
            assert r.status_code == 303 and r.headers["location"] == "/ui/"
        assert client.post("/ui/login", content=b"{}", headers={"Content-Type": "application/json"}).status_code == 415
    # the static files the login page needs are open; /docs and /health stay as they were
    assert httpx.get(base + "/ui/static/console.css", timeout=10).status_code == 200
    assert httpx.get(base + "/health", timeout=10).status_code == 200
    assert httpx.get(base + "/api/v1/chains", timeout=10).status_code == 401


def test_the_session_cookie_is_secure_over_tls(tmp_path):
    from tests.security.certs import make_pki

    pki = make_pki(tmp_path)
    env = {"CHAINOTEL_AUTH_FILE": str(auth_file(tmp_path / "tokens.yaml")),
           "CHAINOTEL_TLS_CERT_FILE": str(pki["server_cert"]), "CHAINOTEL_TLS_KEY_FILE": str(pki["server_key"])}  # fmt: skip
    with running(tmp_path / "db", env, grpc=False, tls={"ca": pki["ca"]}) as analyzer:
        r = httpx.post(analyzer.http + "/ui/login", data={"token": TOKENS["viewer"][0], "next": "/ui/"},
                       verify=analyzer.ssl_context(), timeout=10)  # fmt: skip
        assert r.status_code == 303
        attributes = [a.strip() for a in r.headers["set-cookie"].split(";")]
        assert {"HttpOnly", "SameSite=Strict", "Secure", "Path=/"} <= set(attributes)
