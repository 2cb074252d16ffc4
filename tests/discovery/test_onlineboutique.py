"""Discovery from traffic on the real Online Boutique traces (no span kinds, no attributes, no chain):
the one entry point of the baseline minute (the frontend's ``Recv.`` span) becomes one proposal whose
service shares and edges equal those computed straight from the file."""

from __future__ import annotations

import gzip
import json
import subprocess
from collections import Counter

import pytest

from chainotel.catalog import ChainDefinition
from tests.data import needs_onlineboutique, onlineboutique_dir
from tests.processes import ANALYZER, serve

pytestmark = needs_onlineboutique
FILE = "baseline/2022-08-23_17_00_otlp.json.gz"
WINDOW = {"since": "2022-08-23T16:58:00Z", "until": "2022-08-23T17:01:00Z"}


def file_traces() -> dict[str, list[tuple[str, str, str]]]:
    """``{trace_id: [(span_id, parent_span_id, service)]}`` read from the OTLP/JSON file."""
    doc = json.load(gzip.open(onlineboutique_dir() / FILE))
    traces: dict[str, list] = {}
    for rs in doc["resourceSpans"]:
        service = next(a["value"]["stringValue"] for a in rs["resource"]["attributes"] if a["key"] == "service.name")
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                traces.setdefault(s["traceId"].lower(), []).append((s["spanId"].lower(), s.get("parentSpanId", "").lower(), service))
    return traces


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("analyzer") / "db") as client:
        subprocess.run([ANALYZER, "import", "--endpoint", str(client.base_url).rstrip("/"), str(onlineboutique_dir() / FILE)],
                       check=True, timeout=300, capture_output=True)  # fmt: skip
        r = client.post("/api/v1/discovery/scan", json={**WINDOW, "max_traces": 10_000})
        assert r.status_code == 200, r.text
        yield r.json()


def test_one_entry_point_with_the_files_service_shares_and_edges(scan):
    traces = file_traces()
    assert scan["traces"] == scan["untagged_traces"] == len(traces) == 502
    [p] = scan["proposals"]
    d = p["definition"]
    ChainDefinition.model_validate(d)
    assert d["match"] == [{"service": "frontend", "span_name": "hipstershop.Frontend/Recv."}]
    assert d["category"] == "user_experience" and "frontend" in p["evidence"]["category_reason"]
    shares = Counter(s for spans in traces.values() for s in {svc for _, _, svc in spans})
    assert {s["service"]: s["share"] for s in p["services"]} == {k: round(v / 502, 4) for k, v in shares.items()}
    assert set(d["expected_services"]) == {k for k, v in shares.items() if v / 502 >= 0.5}
    edges = Counter()
    for spans in traces.values():
        svc = {sid: service for sid, _, service in spans}
        edges.update({(svc[parent], service) for _, parent, service in spans if parent in svc and svc[parent] != service})
    seen = {(e["caller"], e["callee"]): e["share"] for e in p["evidence"]["edges"]}
    assert seen == {k: round(v / 502, 4) for k, v in edges.items()}
    expected = set(d["expected_services"])
    assert {tuple(e.split(" -> ")) for e in d["edges"]} == {k for k, v in edges.items() if v / 502 >= 0.5 and set(k) <= expected}
    assert d["max_duration_ms"] >= p["evidence"]["p99_ms"] > 0
    assert p["evidence"]["service_sets"] > 1 and 0 < p["confidence"] < 1
