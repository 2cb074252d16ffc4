"""The console in a real browser: Debian's Chromium driven by Playwright against a real analyzer fed
real OTLP/HTTP. Every page renders its data (compared with the API) with no console error and no
failed request; overview → chain → trace navigation by link and keyboard; the spans marked critical
are the API's critical path; the time range changes what is shown; instance filters return what the
API returns. Screenshots of every page (1280×800 and 390 px wide) go to ``tests/console/screenshots/``.
"""

from __future__ import annotations

import time

import pytest

from tests.console.browser import Watched, browser, require_chromium, tab  # noqa: F401 - fixtures
from tests.console.traffic import Traffic
from tests.processes import running

JAEGER_UI = "http://jaeger.example:16686"

sync_api = require_chromium()

RECENT, OLDER, HOURS_AGO = 14, 10, 5
"""B1 traces in the last 15 min, B1 traces 30–50 min ago (together more than a page of instances),
A1 traces 3 h ago."""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A running analyzer with the traffic above; yields ``(base URL, httpx client, planned traces)``."""
    import httpx

    now = time.time_ns()
    traffic = Traffic()
    for n in range(RECENT):
        traffic.add("B1", n, now - (600 - n * 40) * 10**9, duration_ms=[60, 150, 1400][n % 3], error=n % 4 == 1,
                    user_id=f"user-{n % 2}", with_db=n % 3 != 0)  # fmt: skip
    for n in range(OLDER):
        traffic.add("B1", 100 + n, now - (3000 - n * 100) * 10**9, duration_ms=90, with_db=True)
    for n in range(HOURS_AGO):
        traffic.add("A1", 200 + n, now - (3 * 3600 + n * 60) * 10**9, duration_ms=50 + n)
    with running(tmp_path_factory.mktemp("console") / "db", {"CHAINOTEL_JAEGER_UI_URL": JAEGER_UI}, grpc=False) as a, \
            httpx.Client(base_url=a.http, timeout=60) as api:  # fmt: skip
        traffic.send(api)
        yield a.http, api, traffic.planned


def _row_texts(page, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


def _slowest_db_trace(api) -> str:
    doc = api.get("/api/v1/chains/B1/instances", params={"service": "db", "limit": 1}).json()
    return doc["instances"][0]["instance_id"]


def test_every_page_renders_its_data(site, browser):
    base, api, planned = site
    tid = _slowest_db_trace(api)
    health = {c["chain"]: c for c in api.get("/api/v1/analytics/chains/health/overview").json()["chains"]}
    cp = api.get(f"/api/v1/traces/{tid}/critical-path").json()
    impact = api.get("/api/v1/analytics/services/db/impact").json()
    instances = api.get("/api/v1/chains/B1/instances", params={"limit": 20}).json()["instances"]
    for width, height, tag in ((1280, 800, "1280"), (390, 844, "390")):
        w = Watched(browser, width, height)
        page = w.goto(base + "/")  # redirects to /ui/
        assert page.url.endswith("/ui/")
        rows = page.locator("table#chains tbody tr")
        assert rows.count() == len(api.get("/api/v1/chains").json()["chains"]) == len(health)
        b1 = page.locator('tr[data-chain="B1"]')
        assert b1.get_attribute("data-traces") == str(health["B1"]["traces"]) == str(RECENT + OLDER)
        assert "healthy" in b1.inner_text() or "degraded" in b1.inner_text() or "unhealthy" in b1.inner_text()
        assert b1.locator("svg.spark path, svg.spark circle").count() > 0
        w.shot(f"overview-{tag}")

        page = w.goto(base + "/ui/chains/B1")
        assert page.locator("#trace-count").inner_text() == str(RECENT + OLDER)
        assert page.locator("svg.chart").count() == 3 and page.locator("svg.chart line.sla").count() == 1
        assert [r.get_attribute("data-trace-id") for r in page.locator("#instance-list tbody tr").all()] == \
            [i["trace_id"] for i in instances]  # fmt: skip
        assert page.locator("svg.graph g.node").count() == 3
        edges = {(e.get_attribute("data-caller"), e.get_attribute("data-callee")) for e in page.locator("svg.graph g.edge").all()}
        assert edges == {("gateway", "backend"), ("backend", "db")}
        assert page.locator("#bottlenecks tbody tr").count() == 3
        w.shot(f"chain-{tag}")

        page = w.goto(base + f"/ui/traces/{tid}")
        assert page.locator("details.span").count() == len(cp["spans"])
        assert page.locator("#duration").inner_text().replace(" ", "") in ("1.40s", "1400.0ms")
        assert page.locator("#verdict").inner_text() == "breached"  # 1.4 s > B1's 1 s SLA
        assert page.locator("#jaeger").get_attribute("href") == f"{JAEGER_UI}/trace/{cp['trace_id']}"
        page.locator("details.span").nth(2).locator("summary").click()
        assert page.locator("details.span[open] .span-details").is_visible()
        w.shot(f"trace-{tag}")

        page = w.goto(base + "/ui/services/db")
        assert [r.get_attribute("data-chain") for r in page.locator("#service-chains tbody tr").all()] == \
            [c["chain"] for c in impact["chains"]] == ["B1"]  # fmt: skip
        assert "query" in page.locator("#operations").inner_text()
        w.shot(f"service-{tag}")
        w.close()


def test_overview_to_chain_to_trace_by_link_and_keyboard(site, tab):
    base, api, _ = site
    page = tab.goto(base + "/ui/")
    page.locator('tr[data-chain="B1"] a').first.click()
    page.wait_for_url("**/ui/chains/B1?**")
    first = page.locator("#instance-list tbody tr").first
    trace_id = first.get_attribute("data-trace-id")
    first.locator("a").click()
    page.wait_for_url("**/ui/traces/**")
    assert trace_id in page.locator("main").inner_text()
    # keyboard: tab to the first span, open it with Enter, read its details
    summary = page.locator("details.span summary").first
    summary.focus()
    page.keyboard.press("Enter")
    assert page.locator("details.span").first.get_attribute("open") is not None
    assert "Self time" in page.locator("details.span").first.inner_text()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.tagName") in ("SUMMARY", "A")


def test_spans_marked_critical_are_the_apis_critical_path(site, tab):
    base, api, planned = site
    for p in planned[:4]:  # db and no-db traces, error and ok
        cp = api.get(f"/api/v1/traces/{p.trace_id}/critical-path").json()
        on_path = {sec["span_id"] for root in cp["roots"] for sec in root["sections"]}
        page = tab.goto(base + f"/ui/traces/{p.trace_id}")
        marked = {d.get_attribute("data-span-id") for d in page.locator('details.span[data-critical="true"]').all()}
        unmarked = {d.get_attribute("data-span-id") for d in page.locator('details.span[data-critical="false"]').all()}
        assert marked == on_path and marked and not marked & unmarked
        assert page.locator(".wf-crit").count() == sum(len(root["sections"]) for root in cp["roots"])


def test_changing_the_time_range_changes_what_is_shown(site, tab):
    base, _, _ = site
    page = tab.goto(base + "/ui/?range=15m")
    assert page.locator('tr[data-chain="B1"]').get_attribute("data-traces") == str(RECENT)
    assert page.locator('tr[data-chain="A1"]').get_attribute("data-traces") == "0"
    page.locator('select[name="range"]').select_option("1h")  # submits itself
    page.wait_for_url("**range=1h**")
    assert page.locator('tr[data-chain="B1"]').get_attribute("data-traces") == str(RECENT + OLDER)
    page.locator('select[name="range"]').select_option("6h")
    page.wait_for_url("**range=6h**")
    assert page.locator('tr[data-chain="A1"]').get_attribute("data-traces") == str(HOURS_AGO)
    # a custom range: the hours before the A1 traces hold nothing
    page.locator('select[name="range"]').select_option("custom")
    page.locator('input[name="since"]').fill("2020-01-01T00:00:00")
    page.locator('input[name="until"]').fill("2020-01-02T00:00:00")
    page.locator("form.range button").click()
    page.wait_for_url("**range=custom**")
    assert {r.get_attribute("data-traces") for r in page.locator("table#chains tbody tr").all()} == {"0"}
    # the chain page follows the range in its links and its data
    page = tab.goto(base + "/ui/chains/B1?range=15m")
    assert page.locator("#trace-count").inner_text() == str(RECENT)


def test_instance_filters_return_what_the_api_returns(site, tab):
    base, api, _ = site
    page = tab.goto(base + "/ui/chains/B1?range=1h")
    form = page.locator('form[aria-label="Instance filters"]')
    for status, service, min_ms, order in (("error", "", "", "duration_desc"), ("any", "db", "100", "start_desc"),
                                          ("ok", "backend", "", "duration_desc")):  # fmt: skip
        form.locator('select[name="status"]').select_option(status)
        form.locator('select[name="service"]').select_option(service)
        form.locator('input[name="min_duration_ms"]').fill(min_ms)
        form.locator('select[name="order"]').select_option(order)
        with page.expect_navigation():
            form.locator("button").click()
        params = {k: v for k, v in {"status": status, "service": service, "min_duration_ms": min_ms, "order": order,
                                    "limit": 20}.items() if v}  # fmt: skip
        expected = api.get("/api/v1/chains/B1/instances", params=params).json()["instances"]
        shown = [r.get_attribute("data-trace-id") for r in page.locator("#instance-list tbody tr[data-trace-id]").all()]
        assert shown == [i["trace_id"] for i in expected] and shown, (status, service, min_ms)
    # paging: the pages together are the API's full list, in order
    page = tab.goto(base + "/ui/chains/B1?range=1h&order=start_desc")
    seen = []
    while True:
        seen += [r.get_attribute("data-trace-id") for r in page.locator("#instance-list tbody tr[data-trace-id]").all()]
        nxt = page.locator('a[rel="next"]')
        if nxt.count() == 0:
            break
        with page.expect_navigation():
            nxt.click()
    full = api.get("/api/v1/chains/B1/instances", params={"order": "start_desc", "limit": 500}).json()["instances"]
    assert seen == [i["trace_id"] for i in full] and len(seen) == RECENT + OLDER


def test_span_details_show_what_the_whole_trace_read_returns(site, tab):
    """Events, links, typed attributes, scope and resource on the trace page are the spans of
    ``GET /api/v1/traces/{id}``, field for field."""
    base, api, _ = site
    tid, linked = "d1" + "0" * 29 + "1", "e2" + "0" * 29 + "2"
    start = time.time_ns() - 5 * 10**9

    def kv(key, **value):
        return {"key": key, "value": value}

    span = {
        "traceId": tid, "spanId": "00000000000000a1", "name": "link work", "kind": 1,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 30_000_000),
        "attributes": [kv("chain.id", stringValue="C1"), kv("retry", intValue="3"), kv("ratio", doubleValue=0.25),
                       kv("tags", arrayValue={"values": [{"stringValue": "a"}, {"stringValue": "b"}]})],
        "events": [{"timeUnixNano": str(start + 10_000_000), "name": "cache.miss", "attributes": [kv("key", stringValue="user:7")]}],
        "links": [{"traceId": linked, "spanId": "00000000000000b2", "traceState": "vendor=1",
                   "attributes": [kv("link.kind", stringValue="follows")]}],
        "traceState": "congo=t61rcWkgMzE", "status": {"code": 2, "message": "boom"},
    }  # fmt: skip
    body = {"resourceSpans": [{"resource": {"attributes": [kv("service.name", stringValue="linker"), kv("host.cores", intValue="8")]},
                               "scopeSpans": [{"scope": {"name": "lib.x", "version": "1.2.3", "attributes": [kv("scope.k", boolValue=True)]},
                                               "spans": [span]}]}]}  # fmt: skip
    assert api.post("/v1/traces", json=body).status_code == 200
    [stored] = api.get(f"/api/v1/traces/{tid}").json()["resourceSpans"]
    stored_span = stored["scopeSpans"][0]["spans"][0]
    page = tab.goto(base + f"/ui/traces/{tid}")
    details = page.locator('details.span[data-span-id="00000000000000a1"]')
    details.locator("summary").click()
    text = details.inner_text()
    for expected in ("cache.miss", "user:7", "vendor=1", "follows", "congo=t61rcWkgMzE", "error: boom", "lib.x 1.2.3",
                     "scope.k", "host.cores"):  # fmt: skip
        assert expected in text, expected
    assert details.locator(f'ul.links a[href="/ui/traces/{linked}"]').count() == 1
    # every attribute the API returns, with its type, and nothing else
    shown = [(dt.inner_text(), dd.inner_text()) for dt, dd in zip(details.locator("h3:text-is('Attributes') + dl dt").all(),
                                                                    details.locator("h3:text-is('Attributes') + dl dd").all())]  # fmt: skip
    assert [k for k, _ in shown] == [a["key"] for a in stored_span["attributes"]]
    assert dict(shown)["retry"] == "3 int" and dict(shown)["ratio"] == "0.25 double" and dict(shown)["tags"] == '["a", "b"] array'
    assert len(stored_span["events"]) == details.locator("ul.events li").count() == 1
    assert details.get_attribute("class").split() == ["span", "critical", "error"]
