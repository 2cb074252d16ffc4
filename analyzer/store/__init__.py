"""ClickHouse storage of spans: client and data-dir lock (:mod:`.client`), versioned schema
(:mod:`.migrations`, ``migrations/NNNN_*.sql``), the batching writer (:mod:`.writer`) and the
catalog seed (:mod:`.catalog`)."""

MAX_TIMESTAMP_NS = 2**63 - 1
"""The last Unix time, in **ns**, that the store's ``DateTime64(9)`` columns (and Arrow's signed 64-bit
``timestamp[ns]``) hold: 2262-04-11T23:47:16.854775807Z."""
