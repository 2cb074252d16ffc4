"""Alert rules in the catalog (validation with file/chain/field errors) and the alert lifecycle
(pure functions, no store)."""

from __future__ import annotations

import pytest

from chainotel.catalog import CatalogError, ChainDefinition, parse_catalog
from chainotel.catalog.models import DEFAULT_ALERT_RULES, AlertRules
from chainotel_analyzer.analysis.alerts import (
    DRIFT_ALERT, ERROR_ALERT, FIRING, INACTIVE, NO_TRAFFIC_ALERT, PENDING, RESOLVED, SLA_ALERT, ChainFigures, Condition,
    conditions, drift_condition, resolve_by_hand, step,
)  # fmt: skip
from chainotel_analyzer.monitoring.evaluator import alert_from_row, alert_to_row, error_services

S = 10**9
CHAIN = """chains:
  - id: B3
    name: Trading API request
    category: service_communication
    max_duration_ms: 500
"""


def test_catalog_example_parses_and_round_trips_through_the_registry_json():
    text = CHAIN + """    alerts: {window: 5m, for: 2m, sla_compliance_below: 0.95, error_rate_above: 0.05, p95_above_ms: 800,
             no_traffic_for: 10m}
    probe:
      url: http://api-gateway:8000/api/v1/trading/orders
      method: post
      json: {symbol: EURUSD, side: buy, qty: 1}
      expect_status: [200, 201]
      interval: 30s
      timeout: 5s
"""
    chain = parse_catalog(text, "c.yaml").chains[0]
    assert (chain.alerts.window_s, chain.alerts.for_s, chain.alerts.no_traffic_for_s) == (300, 120, 600)
    assert chain.probe.method == "POST" and chain.probe.json_body["symbol"] == "EURUSD" and chain.probe.timeout_s == 5
    doc = chain.model_dump(mode="json")
    assert doc["alerts"]["window"] == "5m" and doc["alerts"]["for"] == "2m" and doc["probe"]["interval"] == "30s"
    assert ChainDefinition.model_validate(doc) == chain


def test_chains_without_alerts_get_the_documented_defaults_and_keep_their_json():
    chain = parse_catalog(CHAIN, "c.yaml").chains[0]
    assert chain.alerts is None and chain.alert_rules is DEFAULT_ALERT_RULES
    assert (DEFAULT_ALERT_RULES.window_s, DEFAULT_ALERT_RULES.for_s, DEFAULT_ALERT_RULES.sla_compliance_below,
            DEFAULT_ALERT_RULES.error_rate_above, DEFAULT_ALERT_RULES.p95_above_ms) == (300, 120, 0.95, 0.05, None)
    assert "alerts" not in chain.model_dump(mode="json") and "probe" not in chain.model_dump(mode="json")


@pytest.mark.parametrize(("block", "field", "message"), [
    ("alerts: {window: 5x}", "alerts.window", "duration"),
    ("alerts: {error_rate_above: 1.5}", "alerts.error_rate_above", "less than 1"),
    ("alerts: {fro: 2m}", "alerts.fro", "Extra inputs"),
    ("alerts: {severity: page}", "alerts.severity", "critical"),
    ("probe: {url: ftp://x/y}", "probe.url", "pattern"),
    ("probe: {url: http://x/, interval: 10s, timeout: 1m}", "probe", "must not exceed interval"),
    ("probe: {url: http://x/, expect_status: [700]}", "probe.expect_status[0]", "599"),
    ("alerts: {topology_drift: true}", "B3", "expected_services, which is empty"),
])  # fmt: skip
def test_invalid_rules_name_file_chain_and_field(block, field, message):
    with pytest.raises(CatalogError) as exc:
        parse_catalog(CHAIN + "    " + block + "\n", "mine.yaml")
    text = str(exc.value)
    assert "mine.yaml" in text and "B3" in text and field in text and message in text, text


def figures(**kw) -> ChainFigures:
    return ChainFigures("B3", **kw)


def test_conditions_compare_each_rule_with_its_threshold():
    rules = AlertRules(p95_above_ms=800, no_traffic_for_s=600, min_traces=5)
    now = 1000 * S
    f = figures(traces=10, error_traces=1, within_sla=8, p95_ms=900, last_start_ns=now - 30 * S,
                slowest_trace_id="t1", error_trace_id="t2", error_service="payments")
    by_name = {c.alertname: c for c in conditions("B3", rules, 500, f, now)}
    assert by_name[SLA_ALERT].active and by_name[SLA_ALERT].value == 0.8 and by_name[SLA_ALERT].trace_id == "t1"
    assert by_name[ERROR_ALERT].active and by_name[ERROR_ALERT].service == "payments" and by_name[ERROR_ALERT].trace_id == "t2"
    assert by_name["ChainLatencyHigh"].active and by_name["ChainLatencyHigh"].value == 900
    assert not by_name[NO_TRAFFIC_ALERT].active and by_name[NO_TRAFFIC_ALERT].value == 30
    # too few traces: rate rules hold no data, and a long quiet spell is no traffic
    few = {c.alertname: c for c in conditions("B3", rules, 500, figures(traces=4, error_traces=4), now)}
    assert not few[SLA_ALERT].active and not few[ERROR_ALERT].active and few[NO_TRAFFIC_ALERT].active
    # a rule set to null is not evaluated
    assert [c.alertname for c in conditions("B3", AlertRules(sla_compliance_below=None), 500, f, now)] == [ERROR_ALERT]


def cond(active: bool, value: float = 0.5) -> Condition:
    return Condition(SLA_ALERT, "B3", active, value, 0.9, "trace", "", "s", "d")


def run(states: list[bool], for_s: float = 20, keep_s: float = 15, step_s: int = 10):
    """Evaluate the condition sequence every ``step_s``; the alert after each step."""
    alert, out = None, []
    for i, active in enumerate(states):
        alert = step(alert, cond(active), i * step_s * S, for_s, keep_s, "service_communication", "warning",
                     new_id=lambda n=i: f"{n:032x}")
        out.append(None if alert is None else (alert.alert_id[-2:], alert.state))
    return alert, out


def test_lifecycle_inactive_pending_firing_resolved():
    alert, seen = run([False, True, True, True, True, False, False, False])
    assert seen == [None, ("01", PENDING), ("01", PENDING), ("01", FIRING), ("01", FIRING), ("01", FIRING),
                    ("01", RESOLVED), ("01", RESOLVED)]  # fmt: skip
    assert alert.active_at_ns == 10 * S and alert.fired_at_ns == 30 * S and alert.resolved_at_ns == 60 * S
    assert alert.resolved_by == "condition" and alert.value == 0.5 and alert.trace_id == "trace"


def test_a_pending_alert_whose_condition_clears_never_fires():
    _, seen = run([True, False, True, True, True])
    assert seen[:2] == [("00", PENDING), ("00", INACTIVE)] and seen[2:] == [("02", PENDING), ("02", PENDING), ("02", FIRING)]


def test_no_flapping_a_firing_alert_survives_a_short_dip():
    _, seen = run([True, True, True, False, True, False, False], for_s=0, keep_s=15)
    assert [s for _, s in seen] == [FIRING, FIRING, FIRING, FIRING, FIRING, FIRING, RESOLVED]
    assert {i for i, _ in seen} == {"00"}  # one alert, never re-opened


def test_resolved_by_hand_stays_resolved_until_the_condition_clears_then_fires_anew():
    alert = step(None, cond(True), 0, 0, 0, new_id=lambda: "a" * 32)
    assert alert.state == FIRING
    resolved = resolve_by_hand(alert, "known: broker maintenance", 5 * S)
    assert (resolved.state, resolved.resolved_by, resolved.note) == (RESOLVED, "manual", "known: broker maintenance")
    with pytest.raises(ValueError):
        resolve_by_hand(resolved, "again", 6 * S)
    still = step(resolved, cond(True), 10 * S, 0, 0, new_id=lambda: "b" * 32)
    assert still is resolved  # condition still holds: no new alert
    cleared = step(still, cond(False), 20 * S, 0, 0, new_id=lambda: "b" * 32)
    assert cleared.cleared and cleared.alert_id == "a" * 32
    anew = step(cleared, cond(True), 30 * S, 0, 0, new_id=lambda: "b" * 32)
    assert anew.alert_id == "b" * 32 and anew.state == FIRING


def test_alert_rows_round_trip_and_blame_needs_a_single_service():
    alert = step(None, cond(True), 7 * S, 0, 0, new_id=lambda: "c" * 32)
    row = alert_to_row(alert)
    assert row["active_at_unix_nano"] == 7 * S and row["cleared"] == 0
    assert alert_from_row(row) == alert
    rows = [{"chain": "B3", "service": "gw", "errors": 0}, {"chain": "B3", "service": "pay", "errors": 3},
            {"chain": "B4", "service": "gw", "errors": 1}, {"chain": "B4", "service": "pay", "errors": 1}]
    assert error_services(rows) == {"B3": "pay"}


def test_anomaly_condition_from_chain_buckets():
    from chainotel_analyzer.analysis.alerts import ANOMALY_ALERT, ANOMALY_BUCKETS, anomaly_conditions

    rows = [{"chain": "B3", "bucket": i, "traces": 60, "errors": 0, "p95_ms": 100.0 + i} for i in range(ANOMALY_BUCKETS)]
    rows.append({"chain": "B3", "bucket": ANOMALY_BUCKETS, "traces": 60, "errors": 0, "p95_ms": 1000.0})
    rows += [{"chain": "B4", "bucket": i, "traces": 60, "errors": 0, "p95_ms": 100.0} for i in range(ANOMALY_BUCKETS + 1)]
    found = {c.chain: c for c in anomaly_conditions(rows, 300, ["B3", "B4", "B5"])}
    assert found["B3"].active and found["B3"].alertname == ANOMALY_ALERT and "latency_p95_ms" in found["B3"].description
    assert found["B3"].value >= 3.0
    assert not found["B4"].active and not found["B5"].active  # steady; no history at all


def test_topology_drift_counts_unexpected_and_missing_services_and_goes_through_the_lifecycle():
    rules = AlertRules(topology_drift=True, min_traces=3, for_s=60, keep_firing_for_s=30)
    expected = ["gateway", "backend", "ledger"]
    assert DEFAULT_ALERT_RULES.topology_drift is False  # documented default: off
    drifted = drift_condition("B3", rules, expected, {"gateway": 10, "backend": 10, "fraud-check": 4}, 5)
    assert drifted.alertname == DRIFT_ALERT and drifted.active and drifted.value == 2 and drifted.service == ""
    assert "fraud-check (4 spans)" in drifted.description and "expected services without spans: ledger" in drifted.description
    assert "1 unexpected, 1 missing" in drifted.summary
    one = drift_condition("B3", rules, expected, {"gateway": 10, "backend": 10}, 5)
    assert one.active and one.service == "ledger"  # one service to blame: the service label
    assert not drift_condition("B3", rules, expected, {"gateway": 1, "backend": 1}, 2).active  # below min_traces
    assert not drift_condition("B3", rules, expected, {s: 3 for s in expected}, 3).active
    now = 1000 * S
    a = step(None, drifted, now, rules.for_s, rules.keep_firing_for_s)
    assert a.state == PENDING
    a = step(a, drifted, now + 60 * S, rules.for_s, rules.keep_firing_for_s)
    assert a.state == FIRING and a.value == 2
    healthy = drift_condition("B3", rules, expected, {s: 3 for s in expected}, 3)
    a = step(a, healthy, now + 70 * S, rules.for_s, rules.keep_firing_for_s)
    assert a.state == FIRING  # keep_firing_for
    a = step(a, healthy, now + 91 * S, rules.for_s, rules.keep_firing_for_s)
    assert a.state == RESOLVED and a.resolved_by == "condition"
