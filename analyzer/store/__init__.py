"""ClickHouse storage of spans: client and data-dir lock (:mod:`.client`), versioned schema
(:mod:`.migrations`, ``migrations/NNNN_*.sql``), the batching writer (:mod:`.writer`), the read-side
SQL (:mod:`.queries`) and the catalog seed (:mod:`.catalog`). The row formats are owned by
:mod:`chainotel_analyzer.model.rows`."""
