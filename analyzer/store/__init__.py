"""ClickHouse storage of spans: client and data-dir lock (:mod:`.client`), versioned schema
(:mod:`.migrations`, ``migrations/NNNN_*.sql``), the batching writer (:mod:`.writer`) and the
catalog seed (:mod:`.catalog`)."""
