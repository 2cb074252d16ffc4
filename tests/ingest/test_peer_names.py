"""A client span's peer is named after what it calls: "<db.system / gen_ai provider> on <server>"."""

from __future__ import annotations

import pytest

from chainotel_analyzer.ingest.otlp import decode_request
from tests.ingest.otlp_data import kv, request


@pytest.mark.parametrize(
    "attributes,peer",
    [
        ({"db.system": "postgresql", "server.address": "db-host"}, "postgresql on db-host"),
        ({"db.system.name": "redis", "net.peer.name": "cache-1"}, "redis on cache-1"),
        ({"gen_ai.provider.name": "openai", "server.address": "api.example"}, "openai on api.example"),
        ({"db.system": "sqlite"}, "sqlite"),
        ({"db.system": "postgresql", "server.address": "db-host", "peer.service": "ledger-db"}, "ledger-db"),
        ({"server.address": "cartservice"}, "cartservice"),
    ],
)
def test_client_span_peer_names_the_system_and_host(attributes, peer):
    req = request(n_traces=1, spans_per_trace=1)
    span = req.resource_spans[0].scope_spans[0].spans[0]
    span.kind = 3  # CLIENT
    span.attributes.extend(kv(k, v) for k, v in attributes.items())
    decoded = decode_request(req)
    assert decoded.table.column("peer_service")[0].as_py() == peer
