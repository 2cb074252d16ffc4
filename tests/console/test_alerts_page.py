"""The alerts page in Chromium against real alerts: a real analyzer evaluates catalog rules over
real OTLP traffic; the page lists what ``GET /api/v1/alerts`` answers (firing, pending, resolved)
with chain, value, since and the example trace; resolving with a note through the page's form is
what the API then reports; a form without the session's CSRF token, or sent from another site, is
refused and changes nothing."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.console.browser import browser, require_chromium, tab  # noqa: F401 - fixtures
from tests.monitoring.traffic import send, wait_for
from tests.processes import running

sync_api = require_chromium()

CATALOG = """chains:
  - id: B3
    name: Trading API request
    category: service_communication
    max_duration_ms: 500
    alerts: {window: 600s, for: 0s, sla_compliance_below: 0.9, error_rate_above: null}
  - id: B4
    name: Orders
    category: service_communication
    max_duration_ms: 1000
    alerts: {window: 600s, for: 0s, error_rate_above: 0.2, sla_compliance_below: null, severity: critical}
"""


def alerts(api, **params) -> list[dict]:
    r = api.get("/api/v1/alerts", params=params)
    r.raise_for_status()
    return r.json()["alerts"]


@pytest.fixture(scope="module")
def firing(tmp_path_factory):
    """A running analyzer with a firing SLA alert on B3 and a firing error-rate alert on B4."""
    tmp = tmp_path_factory.mktemp("alerts")
    (tmp / "chains.yaml").write_text(CATALOG)
    env = {"CHAINOTEL_CATALOG": str(tmp / "chains.yaml"), "CHAINOTEL_ALERT_EVAL_INTERVAL_S": "0.3"}
    with running(tmp / "db", env, grpc=False) as analyzer, httpx.Client(base_url=analyzer.http, timeout=30) as api:
        send(analyzer.http, "B3", 5, 800)
        send(analyzer.http, "B4", 5, 20, error=True, services=("gateway", "payments"))
        wait_for(lambda: len(alerts(api, state="firing")) == 2, 30, "two firing alerts")
        yield analyzer.http, api


def _ids(page, table: str) -> list[str]:
    return [r.get_attribute("data-alert-id") for r in page.locator(f"#alerts-{table} tbody tr[data-alert-id]").all()]


def test_the_page_lists_the_apis_alerts_and_links_chain_and_trace(firing, tab):
    base, api = firing
    page = tab.goto(base + "/ui/")
    page.locator("header nav a", has_text="Alerts").click()
    page.wait_for_url("**/ui/alerts")
    listed = alerts(api, state="firing")
    assert _ids(page, "firing") == [a["alert_id"] for a in listed]
    assert _ids(page, "pending") == [a["alert_id"] for a in alerts(api, state="pending")]
    b3 = next(a for a in listed if a["chain"] == "B3")
    row = page.locator(f'#alerts-firing tr[data-alert-id="{b3["alert_id"]}"]')
    assert "ChainSLAComplianceLow" in row.inner_text() and b3["summary"] in row.inner_text()
    assert row.locator("td.num").all_inner_texts() == ["0.000", "0.900"]  # value and threshold
    assert row.locator("time").get_attribute("datetime") == b3["fired_at"]
    assert row.locator('a[href="/ui/chains/B3"]').count() == 1
    tab.shot("alerts-1280")
    row.locator("a.trace-link").click()
    page.wait_for_url("**/ui/traces/**")
    assert b3["trace_id"] in page.locator("main").inner_text()
    # one chain's alerts
    page = tab.goto(base + "/ui/alerts")
    page.locator('select[name="chain"]').select_option("B4")
    page.wait_for_url("**chain=B4**")
    assert _ids(page, "firing") == [a["alert_id"] for a in alerts(api, state="firing", chain="B4")]


def test_resolving_with_a_note_through_the_form_is_what_the_api_reports(firing, tab):
    base, api = firing
    b4 = alerts(api, state="firing", chain="B4")[0]
    page = tab.goto(base + "/ui/alerts")
    form = page.locator(f'#alerts-firing tr[data-alert-id="{b4["alert_id"]}"] form.resolve')
    form.locator('input[name="note"]').fill("payments maintenance")
    with page.expect_navigation():
        form.locator("button").click()
    assert page.url.endswith(f"/ui/alerts?resolved={b4['alert_id']}")
    assert b4["alert_id"] in page.locator("#resolved-notice").inner_text()
    assert b4["alert_id"] in _ids(page, "resolved") and b4["alert_id"] not in _ids(page, "firing")
    assert "manual: payments maintenance" in page.locator(f'#alerts-resolved tr[data-alert-id="{b4["alert_id"]}"]').inner_text()
    done = next(a for a in alerts(api, chain="B4") if a["alert_id"] == b4["alert_id"])
    assert (done["state"], done["resolved_by"], done["note"]) == ("resolved", "manual", "payments maintenance")


def test_forms_without_the_csrf_token_or_from_another_site_change_nothing(firing):
    base, api = firing
    b3 = alerts(api, state="firing", chain="B3")[0]
    url = f"/ui/alerts/{b3['alert_id']}/resolve"
    with httpx.Client(base_url=base, timeout=30) as browser_like:
        html = browser_like.get("/ui/alerts").text  # the session cookie and its CSRF token
        assert "chainotel_session" in browser_like.cookies
        csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
        assert browser_like.post(url, data={"note": "x"}).status_code == 403
        assert browser_like.post(url, data={"note": "x", "csrf": "forged"}).status_code == 403
        r = browser_like.post(url, data={"note": "x", "csrf": csrf}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and "another site" in r.text
        with httpx.Client(base_url=base, timeout=30) as other:  # another browser's session: its token is not this one
            other.get("/ui/alerts")
            assert other.post(url, data={"note": "x", "csrf": csrf}).status_code == 403
        assert [a["alert_id"] for a in alerts(api, state="firing", chain="B3")] == [b3["alert_id"]]
        assert browser_like.post(url, data={"note": "", "csrf": csrf}).status_code == 422
        r = browser_like.post(url, data={"note": "checked", "csrf": csrf}, headers={"Origin": base})
        assert r.status_code == 303 and r.headers["location"] == f"/ui/alerts?resolved={b3['alert_id']}"
        assert browser_like.post(url, data={"note": "again", "csrf": csrf}).status_code == 409
    assert alerts(api, state="firing", chain="B3") == []
