"""Names of the span attributes, baggage keys and HTTP headers chainotel reads and writes.

Every part of chainotel (the distro, the analyzer, the CLI) takes these names from here, and
docs/distro.md lists them. Values are plain strings so that any OpenTelemetry backend (Jaeger's tag
search, a ClickHouse ``Map(String, String)`` column) can filter on them.
"""

# --- span attributes -------------------------------------------------------------------------
CHAIN_ID = "chain.id"
"""Chain definition the trace belongs to, e.g. ``"B3"`` (pattern ``^[A-E][1-9][0-9]*$``)."""

CHAIN_CATEGORY = "chain.category"
"""Category of that definition: ``data_flow``, ``service_communication``, ``user_experience``,
``ai_ml_processing`` or ``infrastructure``."""

CHAIN_NAME = "chain.name"
"""Human-readable name of the definition, e.g. ``"Trading API request"``."""

CHAIN_INSTANCE_ID = "chain.instance_id"
"""The chain instance: the span's trace ID written as a lowercase UUID (8-4-4-4-12)."""

CHAIN_INSTANCE_CONFLICT = "chain.instance.conflict"
"""On a server span: the ``X-Chain-ID`` value received together with a ``traceparent`` naming
another trace (``traceparent`` wins)."""

CHAIN_INSTANCE_INVALID = "chain.instance.invalid"
"""On a server span: an ``X-Chain-ID`` value that is not a valid chain instance ID (truncated to
:data:`INVALID_VALUE_MAX_CHARS` characters); a new trace was started instead."""

INVALID_VALUE_MAX_CHARS = 128

CHAIN_PARENT_INSTANCE_ID = "chain.parent_instance_id"
"""On a server span and on its span link: the chain instance named by ``X-Parent-Chain-ID`` (the
trace that caused this one), as a lowercase UUID. The link has span ID zero (the causing span is
not known), which the OpenTelemetry spec allows for links that carry attributes."""

# --- HTTP headers ------------------------------------------------------------------------------
HEADER_CHAIN_ID = "x-chain-id"
"""Carries the chain instance ID (a UUID) between services and back to clients."""

HEADER_PARENT_CHAIN_ID = "x-parent-chain-id"
"""Names the chain instance that caused this one; becomes a span link to that trace."""

# --- W3C baggage keys ------------------------------------------------------------------------------
BAGGAGE_CHAIN_ID = "chain.id"
"""Baggage entry that carries the chain decided at the trace's entry span to downstream services."""

BAGGAGE_SYNTHETIC = "chain.synthetic"
"""Baggage entry ``chain.synthetic=true`` sent by the analyzer's synthetic probes; the processor then
writes :data:`CHAIN_SYNTHETIC` on every span of that trace."""

CHAIN_SYNTHETIC = "chain.synthetic"
"""``True`` on every span of a synthetic probe's trace (absent on real traffic)."""
