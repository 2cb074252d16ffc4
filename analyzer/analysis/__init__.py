"""The analysis core: pure functions over plain data (no I/O).

- the :class:`~chainotel_analyzer.model.span.Span` the core works on (times in ns) is in :mod:`chainotel_analyzer.model.span`;
- :mod:`.critical_path` — critical path and self time of one trace (Jaeger UI's semantics);
- :mod:`.attribution` — which (service, operation) a piece of critical path is charged to;
- :mod:`.aggregate` — critical path aggregated over a chain's traces (CRISP);
- :mod:`.bottlenecks` — bottleneck ranking, with or without a baseline window;
- :mod:`.health`, :mod:`.anomalies`, :mod:`.graph`, :mod:`.impact`, :mod:`.recommendations`;
- :mod:`.stats` — percentiles.
"""
