"""Instance search through a running analyzer fed real OTLP: filters, both orders with ties, cursor
paging without duplicates or gaps at every page size, cursors bound to their filters and window,
the seed scripts' analysis URL."""

from __future__ import annotations

import pytest

from tests.console.traffic import Traffic
from tests.processes import serve

T0_S = 1_650_000_000
CHAIN = "B1"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    traffic = Traffic()
    # 30 traces over 5 minutes; durations repeat (ties), every 4th fails, three users, some with a db
    for n in range(30):
        traffic.add(CHAIN, n, (T0_S + n * 10) * 10**9, duration_ms=[40, 80, 80, 120, 300][n % 5],
                    error=n % 4 == 0, user_id=f"user-{n % 3}", with_db=n % 2 == 0)  # fmt: skip
    traffic.add("B2", 99, (T0_S + 5) * 10**9, duration_ms=500)  # another chain: never listed under B1
    traffic.add(CHAIN, 98, (T0_S + 400) * 10**9, duration_ms=900)  # after the window below
    with serve(tmp_path_factory.mktemp("console") / "db") as api:
        traffic.send(api)
        yield api, [p for p in traffic.planned if p.trace_id[-2:] not in ("62", "63")]  # B1 traces in the window


WINDOW = {"since": T0_S, "until": T0_S + 300}


def _expected(planned, order="duration_desc", **f):
    rows = [p for p in planned
            if (f.get("status", "any") == "any" or p.error == (f["status"] == "error"))
            and p.duration_ns >= f.get("min_duration_ms", 0) * 1e6
            and (f.get("service") is None or f["service"] in p.services)
            and (f.get("user_id") is None or p.user_id == f["user_id"])]  # fmt: skip
    key = (lambda p: (-p.duration_ns, p.trace_id)) if order == "duration_desc" else (lambda p: (-p.start_ns, p.trace_id))
    return [p.trace_id for p in sorted(rows, key=key)]


def _all_pages(api, limit, **params):
    seen, cursor, pages = [], None, 0
    while True:
        r = api.get(f"/api/v1/chains/{CHAIN}/instances",
                    params={**WINDOW, **params, "limit": limit, **({"cursor": cursor} if cursor else {})})  # fmt: skip
        assert r.status_code == 200, r.text
        doc = r.json()
        assert len(doc["instances"]) <= limit
        seen += [i["trace_id"] for i in doc["instances"]]
        pages += 1
        cursor = doc["next_cursor"]
        if cursor is None:
            return seen, pages
        assert pages < 100


def test_one_page_holds_what_the_filters_and_order_say(world):
    api, planned = world
    doc = api.get(f"/api/v1/chains/{CHAIN}/instances", params={**WINDOW, "limit": 500}).json()
    assert [i["trace_id"] for i in doc["instances"]] == _expected(planned) and doc["next_cursor"] is None
    first = doc["instances"][0]
    p = next(p for p in planned if p.trace_id == first["trace_id"])
    assert first["duration_ms"] == pytest.approx(p.duration_ns / 1e6) and first["start_unix_nano"] == p.start_ns
    assert first["root_service"] == "gateway" and first["root_operation"] == "GET /checkout"
    assert first["error"] == p.error and tuple(first["services"]) == p.services
    tid = first["trace_id"]
    assert first["instance_id"] == f"{tid[:8]}-{tid[8:12]}-{tid[12:16]}-{tid[16:20]}-{tid[20:]}"
    for f in ({"status": "error"}, {"status": "ok"}, {"min_duration_ms": 100}, {"service": "db"},
              {"user_id": "user-1"}, {"status": "error", "service": "db", "min_duration_ms": 50},
              {"user_id": "nobody"}):  # fmt: skip
        for order in ("duration_desc", "start_desc"):
            r = api.get(f"/api/v1/chains/{CHAIN}/instances", params={**WINDOW, **f, "order": order, "limit": 500})
            assert [i["trace_id"] for i in r.json()["instances"]] == _expected(planned, order, **f), (f, order)


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 29])
def test_cursor_pages_neither_repeat_nor_skip(world, limit):
    api, planned = world
    for order in ("duration_desc", "start_desc"):
        seen, pages = _all_pages(api, limit, order=order)
        assert seen == _expected(planned, order) and pages == -(-len(seen) // limit), order
    seen, _ = _all_pages(api, limit, status="ok", service="db")
    assert seen == _expected(planned, status="ok", service="db")


def test_a_cursor_keeps_its_window_and_is_bound_to_its_filters(world):
    api, planned = world
    first = api.get(f"/api/v1/chains/{CHAIN}/instances", params={**WINDOW, "limit": 5}).json()
    cursor = first["next_cursor"]
    # the window travels in the cursor: without since/until the next page is still of that window
    nxt = api.get(f"/api/v1/chains/{CHAIN}/instances", params={"limit": 5, "cursor": cursor}).json()
    assert nxt["window"] == first["window"]
    assert [i["trace_id"] for i in nxt["instances"]] == _expected(planned)[5:10]
    r = api.get(f"/api/v1/chains/{CHAIN}/instances", params={"cursor": cursor, "status": "error"})
    assert r.status_code == 422 and "other filters" in r.text
    r = api.get(f"/api/v1/chains/{CHAIN}/instances", params={"cursor": "not-a-cursor"})
    assert r.status_code == 422 and "cursor" in r.text


def test_bad_parameters_and_unknown_chains(world):
    api, _ = world
    assert api.get("/api/v1/chains/E77/instances").status_code == 404
    assert api.get("/api/v1/chains/Z9/instances").status_code == 422
    for bad in ({"status": "broken"}, {"order": "random"}, {"limit": 0}, {"limit": 501}, {"min_duration_ms": -1},
                {"since": "yesterday"}):  # fmt: skip
        assert api.get(f"/api/v1/chains/{CHAIN}/instances", params=bad).status_code == 422, bad
    # values are bound parameters: a quote is just a service nobody has
    r = api.get(f"/api/v1/chains/{CHAIN}/instances", params={**WINDOW, "service": "x' OR '1'='1"})
    assert r.status_code == 200 and r.json()["instances"] == []
    empty = api.get(f"/api/v1/chains/{CHAIN}/instances", params={"since": 1, "until": 2}).json()
    assert empty["instances"] == [] and empty["next_cursor"] is None


def test_the_seed_scripts_analysis_url_answers_with_the_instance_analysis(world):
    api, planned = world
    tid = planned[0].trace_id
    seed = api.get(f"/api/v1/analytics/chains/trace/{tid}")
    assert seed.status_code == 200, seed.text
    assert seed.json() == api.get(f"/api/v1/chains/analysis/{tid}").json()
    assert seed.json()["service_count"] == len(planned[0].services)
    assert api.get("/api/v1/analytics/chains/trace/0123456789abcdef0123456789abcdef").status_code == 404
    doc = api.get("/openapi.json").json()
    assert "/api/v1/chains/{chain}/instances" in doc["paths"]
    assert "next_cursor" in doc["components"]["schemas"]["InstancesResponse"]["properties"]


def test_console_pages_answer_bad_input_with_an_error_page(world):
    api, planned = world
    root = api.get("/")
    assert root.status_code == 307 and root.headers["location"] == "/ui/"
    assert api.get("/docs").status_code == 200  # the OpenAPI docs stay where they were
    for path, status, words in (
        ("/ui/?range=bad", 422, "range"), ("/ui/?sort=nope", 422, "sort"), ("/ui/chains/E77", 404, "unknown chain"),
        ("/ui/chains/Z9", 422, "chain"), ("/ui/traces/not-an-id", 422, "chain instance ID"),
        ("/ui/traces/0123456789abcdef0123456789abcdef", 404, "unknown"),
        ("/ui/chains/B1?min_duration_ms=fast", 422, "min_duration_ms"), ("/ui/chains/B1?status=broken", 422, "status"),
        ("/ui/?range=custom&since=2020-01-02T00:00&until=2020-01-01T00:00", 422, "before"),
        ("/ui/static/../../etc/passwd", 404, ""), ("/ui/static/other.js", 404, ""),
    ):  # fmt: skip
        r = api.get(path)
        assert r.status_code == status, (path, r.text[:300])
        assert words in r.text, path
        if path.startswith("/ui/") and "static" not in path:
            assert r.headers["content-type"].startswith("text/html") and 'role="alert"' in r.text, path
    css = api.get("/ui/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    # a custom window in the past shows that window's traces
    page = api.get("/ui/chains/B1", params={"range": "custom", "since": T0_S, "until": T0_S + 300})
    assert page.status_code == 200 and f'id="trace-count">{len(planned)}<' in page.text
