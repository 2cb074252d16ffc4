"""OTLP/JSON that would lose data silently is refused with the reason: unknown enum names (read
as the default kind/status before) and NaN/Infinity literals (not JSON)."""

from __future__ import annotations

import json

import pytest

from chainotel_analyzer.ingest.otlp_json import InvalidRequest, parse_request
from tests.processes import serve

SPAN = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "GET /",
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000"}  # fmt: skip


def body(**span_fields) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "j"}}]},
                               "scopeSpans": [{"spans": [{**SPAN, **span_fields}]}]}]}  # fmt: skip


@pytest.mark.parametrize("fields, reason", [
    ({"kind": "SPAN_KIND_BOGUS"}, "kind 'SPAN_KIND_BOGUS' is not a SpanKind"),
    ({"status": {"code": "STATUS_CODE_FINE"}}, "status.code 'STATUS_CODE_FINE' is not a StatusCode"),
    ({"kind": 2.5}, "kind 2.5 is not a SpanKind"),  # read as 2 before
    ({"kind": True}, "kind True is not a SpanKind"),
    ({"status": {"code": "NaN"}}, "status.code 'NaN' is not a StatusCode"),
])  # fmt: skip
def test_unknown_enum_names_are_refused(fields, reason):
    with pytest.raises(InvalidRequest, match=reason):
        parse_request(json.dumps(body(**fields)))


def test_enum_names_and_numbers_of_the_proto_pass():
    req = parse_request(json.dumps(body(kind="SPAN_KIND_SERVER", status={"code": "STATUS_CODE_ERROR"})))
    span = req.resource_spans[0].scope_spans[0].spans[0]
    assert (span.kind, span.status.code) == (2, 2)
    assert parse_request(json.dumps(body(kind=3, status={"code": 1}))).resource_spans[0].scope_spans[0].spans[0].kind == 3


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_literals_are_refused_even_in_ignored_fields(literal):
    text = json.dumps(body(kind="SPAN_KIND_SERVER"))[:-1] + f', "extra": {literal}}}'
    with pytest.raises(InvalidRequest, match=f"{literal.lstrip('-')}|{literal} is not a JSON number"):
        parse_request(text)
    # the OTLP/JSON spelling of a non-finite double is a string, and is fine
    ok = body(attributes=[{"key": "ratio", "value": {"doubleValue": "NaN"}}])
    assert parse_request(json.dumps(ok)).resource_spans[0].scope_spans[0].spans[0].attributes[0].value.double_value != 0


@pytest.mark.parametrize("fields, field", [
    ({"startTimeUnixNano": "NaN"}, "startTimeUnixNano"),
    ({"droppedAttributesCount": "NaN"}, "droppedAttributesCount"),
    ({"attributes": [{"key": "n", "value": {"intValue": "NaN"}}]}, "intValue"),
    ({"events": [{"name": "e", "timeUnixNano": "Infinity"}]}, "timeUnixNano"),
])  # fmt: skip
def test_nan_where_an_integer_is_required_names_the_field(fields, field):
    with pytest.raises(InvalidRequest, match=field):
        parse_request(json.dumps(body(**fields)))


def test_receiver_answers_400_with_the_reason(tmp_path):
    with serve(tmp_path / "db") as http:
        r = http.post("/v1/traces", content=json.dumps(body(kind="SPAN_KIND_BOGUS")),
                      headers={"Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 400 and "SPAN_KIND_BOGUS" in r.json()["message"]
        r = http.post("/v1/traces", content=json.dumps(body(startTimeUnixNano="NaN")),
                      headers={"Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 400 and "startTimeUnixNano" in r.json()["message"]
        r = http.post("/v1/traces", content=json.dumps(body(kind="SPAN_KIND_SERVER")),
                      headers={"Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 200
