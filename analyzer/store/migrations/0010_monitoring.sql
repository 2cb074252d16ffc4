-- chain_alerts: the alerts of the background evaluator (analyzer/analysis/alerts.py has the lifecycle).
-- Every change of an alert inserts a new row of it with a later updated_at_unix_nano; ReplacingMergeTree
-- keeps the newest per alert_id. Read the current alerts with
--
--   SELECT * FROM chain_alerts FINAL ORDER BY active_at_unix_nano DESC
--
-- Times are Unix nanoseconds (0 = not yet). state: pending | firing | resolved | inactive (a pending alert
-- whose condition cleared before `for`). resolved_by: '' | condition | manual (then note says why);
-- cleared: after a manual resolution, 1 once the condition has been false (the rule may fire anew).
-- value: the value that crossed threshold; trace_id: an example trace of the problem.
-- Numbered 0010 so that migrations added meanwhile on other lines of work keep their numbers.
CREATE TABLE IF NOT EXISTS chain_alerts{on_cluster}
(
    alert_id                String,
    alertname               LowCardinality(String),
    chain                   LowCardinality(String),
    category                LowCardinality(String),
    severity                LowCardinality(String),
    state                   LowCardinality(String),
    active_at_unix_nano     Int64,
    fired_at_unix_nano      Int64,
    resolved_at_unix_nano   Int64,
    last_true_unix_nano     Int64,
    updated_at_unix_nano    Int64,
    value                   Float64,
    threshold               Float64,
    trace_id                String,
    service                 String,
    summary                 String,
    description             String,
    resolved_by             LowCardinality(String),
    note                    String,
    cleared                 UInt8
)
ENGINE = {replicated_everywhere:ReplacingMergeTree(updated_at_unix_nano)}
ORDER BY alert_id;

-- probe_results: one row per synthetic probe run. status: up | down; reason: why down ('' when up);
-- http_status: the entry's answer (0 without one; 101 for a WebSocket); duration_ms: the entry's answer
-- time; trace_id: the probe's trace (its X-Chain-ID). checked_at: when the probe was sent (Unix ns).
CREATE TABLE IF NOT EXISTS probe_results{on_cluster}
(
    chain                   LowCardinality(String),
    checked_at_unix_nano    Int64,
    status                  LowCardinality(String),
    reason                  String,
    http_status             UInt16,
    duration_ms             Float64,
    trace_id                String
)
ENGINE = {replicated_everywhere:MergeTree}
ORDER BY (chain, checked_at_unix_nano);
