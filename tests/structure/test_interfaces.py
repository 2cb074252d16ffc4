"""The routers need only the storage interfaces: the app serves in-memory fakes of them."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi.testclient import TestClient

from chainotel.catalog import default_catalog
from chainotel_analyzer.api.app import create_app
from chainotel_analyzer.api.deps import Services
from chainotel_analyzer.ingest.receive import Intake
from chainotel_analyzer.model.span import CLIENT, SERVER, Span
from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.interfaces import ChainExists, UnknownChain

TRACE = "0af7651916cd43dd8448eb211c80319c"
SPANS = [
    Span("a" * 16, "", "gateway", "POST /orders", 0, 10_000_000, SERVER, False, TRACE, "B3"),
    Span("b" * 16, "a" * 16, "gateway", "call payment", 1_000_000, 9_000_000, CLIENT, False, TRACE, "B3"),
]


class FakeReader:
    def trace_spans(self, trace_id):
        return SPANS if trace_id == TRACE else []


@dataclass
class FakeRegistry:
    chains: dict = field(default_factory=dict)

    def list(self):
        return [self.chains[k] for k in sorted(self.chains)]

    def get(self, chain):
        return self.chains.get(chain)

    def create(self, definition, changed_by=""):
        if definition["id"] in self.chains:
            raise ChainExists(f"chain {definition['id']!r} exists")
        self.chains[definition["id"]] = {"id": definition["id"], "version": 1, "source": "api",
                                         "updated_at": "2026-01-01T00:00:00+00:00", "changed_by": changed_by,
                                         "definition": definition}
        return self.chains[definition["id"]]

    def delete(self, chain, changed_by=""):
        if self.chains.pop(chain, None) is None:
            raise UnknownChain(f"unknown chain {chain!r}")


class FakeRuntime:
    def __init__(self):
        self.registry = FakeRegistry()
        self.closed = False

    def services(self):
        return Services(settings=AnalyzerSettings(), reader=FakeReader(), registry=self.registry,
                        intake=Intake(AnalyzerSettings(), None, None), store=None)  # fmt: skip

    def close(self):
        self.closed = True


def test_routers_serve_fakes_of_the_interfaces():
    runtime = FakeRuntime()
    with TestClient(create_app(runtime)) as http:
        path = http.get(f"/api/v1/traces/{TRACE}/critical-path")
        assert path.status_code == 200, path.text
        assert path.json()["trace_id"] == TRACE and path.json()["chain"] == "B3"
        assert http.get("/api/v1/traces/" + "1" * 32 + "/critical-path").status_code == 404
        definition = next(c for c in default_catalog().chains if c.id == "B3").model_dump(mode="json")
        created = http.post("/api/v1/chains", json=definition)
        assert created.status_code == 201, created.text
        assert created.json()["changed_by"] == "unauthenticated"  # no token file: the caller's name
        assert http.post("/api/v1/chains", json=definition).status_code == 409
        assert [c["id"] for c in http.get("/api/v1/chains").json()["chains"]] == ["B3"]
        assert http.delete("/api/v1/chains/B3").status_code == 204
        assert http.delete("/api/v1/chains/B3").status_code == 404
    assert runtime.closed


def test_every_route_declares_its_response_model():
    """Every JSON route of the OpenAPI document has a response model; the exceptions answer no JSON
    (OTLP/HTTP answers protobuf or OTLP/JSON by the request's type, DELETE answers 204 without a body)."""
    from fastapi.routing import APIRoute

    from chainotel_analyzer.api.app import routers

    untyped = [
        (sorted(route.methods), route.path)
        for router in routers() for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema and route.response_model is None
        and route.path != "/v1/traces" and route.status_code != 204
    ]  # fmt: skip
    assert untyped == []
