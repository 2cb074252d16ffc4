"""The running analyzer's parts, started and stopped in order: store → schema → writer → decoder processes → gRPC.

:func:`start_runtime` opens the store (locking a chDB directory), applies migrations and retention,
seeds the chain registry, starts the span writer, the decoder processes and (unless ``grpc_port < 0``) the OTLP/gRPC server.
The HTTP side (:mod:`chainotel_analyzer.api.app`) is served :meth:`Runtime.services`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc

from chainotel_analyzer.api.deps import Services
from chainotel_analyzer.ingest.grpc import start_grpc_server
from chainotel_analyzer.ingest.receive import DecodePool, Intake
from chainotel_analyzer.monitoring.probes import Prober
from chainotel_analyzer.monitoring.service import Monitoring, build_monitoring
from chainotel_analyzer.security.policy import load_tokens
from chainotel_analyzer.security.tls import check_files as check_tls_files
from chainotel_analyzer.security.tokens import TokenSet
from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.catalog import configured_catalog, seed_definitions
from chainotel_analyzer.store.client import Store, open_store
from chainotel_analyzer.store.migrations import apply_retention, migrate, store_layout
from chainotel_analyzer.store.monitoring import ClickHouseMonitorStore
from chainotel_analyzer.store.queries import ClickHouseChainRegistry, ClickHouseTraceReader
from chainotel_analyzer.store.writer import SpanWriter

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Store, writer, decoder pool and gRPC server of one analyzer process; ``grpc_port`` is the bound port (or None)."""

    settings: AnalyzerSettings
    store: Store
    writer: SpanWriter
    decoders: DecodePool
    tokens: TokenSet | None = None
    grpc_server: grpc.Server | None = None
    grpc_port: int | None = None
    monitoring: Monitoring | None = None

    def services(self) -> Services:
        """What the HTTP app serves (:class:`chainotel_analyzer.api.deps.Services`)."""
        return Services(
            settings=self.settings,
            reader=ClickHouseTraceReader(self.store.client, self.store.new_client),
            registry=ClickHouseChainRegistry(self.store.client),
            intake=Intake(self.settings, self.decoders, self.writer),
            store=self.store,
            grpc_port=self.grpc_port,
            monitoring=self.monitoring,
            tokens=self.tokens,
        )

    def close(self) -> None:
        """Stop accepting gRPC, stop the decoders, flush the writer, close the store (releases the chDB
        lock). Idempotent."""
        if self.monitoring is not None:
            self.monitoring.stop()
            self.monitoring = None
        if self.grpc_server is not None:
            self.grpc_server.stop(grace=2).wait(5)
            self.grpc_server = None
        self.decoders.close()
        self.writer.stop()
        self.store.close()


def start_runtime(settings: AnalyzerSettings) -> Runtime:
    """Open and prepare everything (see module docstring).

    Raises :class:`~chainotel_analyzer.store.client.StoreLockedError` when another process owns the chDB
    directory, :class:`~chainotel_analyzer.store.client.StoreConfigError` for a cluster on chDB,
    clickhouse-connect errors when a server is unreachable, RuntimeError when the gRPC port cannot
    be bound; :class:`~chainotel_analyzer.security.tokens.AuthFileError` for a bad token file and
    :class:`~chainotel_analyzer.security.policy.ExposureError` for a non-loopback interface without
    one, :class:`~chainotel_analyzer.security.tls.TLSConfigError` for unusable TLS files (all
    before anything is opened).
    """
    tokens = load_tokens(settings.auth_file, settings.allow_unauthenticated, settings.host)
    check_tls_files(settings)
    store = open_store(settings)
    writer: SpanWriter | None = None
    decoders: DecodePool | None = None
    runtime: Runtime | None = None
    try:
        layout = store_layout(store.client, settings.clickhouse_cluster)
        migrate(store.client, layout)
        apply_retention(store.client, settings.retention_days, layout)
        seed_definitions(store.client, configured_catalog(settings.catalog))
        writer = SpanWriter(store, settings)
        writer.start()
        decoders = DecodePool(
            settings.decode_workers, settings.decode_max_pending_bytes, settings.queue_max_spans,
            settings.max_decoded_request_bytes,
        )
        runtime = Runtime(settings=settings, store=store, writer=writer, decoders=decoders, tokens=tokens)
        if settings.grpc_port >= 0:
            runtime.grpc_server, runtime.grpc_port = start_grpc_server(writer, decoders, settings, tokens)
        runtime.monitoring = start_monitoring(settings, store, writer)
        return runtime
    except BaseException:
        if runtime is not None and runtime.monitoring is not None:
            runtime.monitoring.stop()
        if runtime is not None and runtime.grpc_server is not None:
            runtime.grpc_server.stop(0)
        # stop what did start, in reverse order: no decoder process, writer thread or chDB lock
        # outlives a failed start
        if decoders is not None:
            decoders.close()
        if writer is not None:
            writer.stop()
        store.close()
        raise


def start_monitoring(settings: AnalyzerSettings, store: Store, writer: SpanWriter) -> Monitoring:
    """Alert evaluation, notification, metrics and probes on their own store session (so that an
    evaluation never waits for an API query, nor the other way round)."""
    client = store.new_client()
    monitor_store = ClickHouseMonitorStore(client)
    registry = ClickHouseChainRegistry(client)
    reader = ClickHouseTraceReader(client)
    prober = Prober(settings, registry, monitor_store, reader.trace_spans) if settings.probes_enabled else None
    monitoring = build_monitoring(settings, reader, registry, monitor_store, writer, prober)
    monitoring.start()
    return monitoring
