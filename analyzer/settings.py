"""All analyzer configuration, read in one place.

Every value comes from a ``CHAINOTEL_*`` environment variable (or the matching ``serve`` flag, which
:mod:`chainotel_analyzer.cli` derives from these fields and passes in as an override). The configuration
reference ``docs/configuration.md`` is generated from the field descriptions (``make docs``). Nothing
here touches the network or the disk.

Example::

    >>> from chainotel_analyzer.settings import AnalyzerSettings
    >>> AnalyzerSettings(http_port=0).grpc_port
    4317
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CLUSTER_NAME_PATTERN = r"^[A-Za-z0-9_.{}-]+$"
"""A cluster name as ``<remote_servers>`` spells it, or a macro such as ``{cluster}`` (quoted as a literal)."""


def check_cluster_name(name: str) -> str:
    """Return ``name`` if it matches :data:`CLUSTER_NAME_PATTERN`; raises ``ValueError`` naming the allowed characters."""
    if not re.fullmatch(CLUSTER_NAME_PATTERN, name):
        raise ValueError(f"cluster name {name!r}: use letters, digits, '_', '.', '-' or a {{macro}}")
    return name


def env_name(field: str) -> str:
    """The environment variable of an :class:`AnalyzerSettings` field: ``CHAINOTEL_<FIELD>``."""
    return "CHAINOTEL_" + field.upper()


def default_text(field: str) -> str:
    """The default of an :class:`AnalyzerSettings` field as the docs and ``--help`` show it."""
    info = AnalyzerSettings.model_fields[field]
    extra = info.json_schema_extra or {}
    if "default_text" in extra:
        return str(extra["default_text"])
    return "(empty)" if info.default in ("", None) else str(info.default)


def default_data_dir() -> Path:
    """The default chDB data directory: ``$XDG_DATA_HOME/chainotel`` (``~/.local/share/chainotel``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "chainotel"


class AnalyzerSettings(BaseSettings):
    """Configuration of ``chainotel-analyzer serve``; each field is ``CHAINOTEL_<FIELD>`` in the environment.

    Sizes are in bytes, durations in seconds unless the name says otherwise.
    """

    model_config = SettingsConfigDict(env_prefix="CHAINOTEL_", extra="ignore")

    host: str = Field(
        "127.0.0.1",
        description="Interface both receivers bind to; containers set 0.0.0.0 explicitly. A non-loopback "
        "interface needs auth_file (or allow_unauthenticated).",
    )
    grpc_port: int = Field(4317, description="OTLP/gRPC port (OTLP default 4317); -1 disables gRPC.")
    http_port: int = Field(4318, description="OTLP/HTTP + JSON API port (OTLP default 4318).")
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="chDB data directory when no URL is given.",
        json_schema_extra={"default_text": "$XDG_DATA_HOME/chainotel (~/.local/share/chainotel)"},
    )
    clickhouse_url: str = Field(
        "",
        description="chdb:///abs/dir (embedded, default chdb://<data_dir>) or http(s)://user:pass@host:8123/db.",
    )
    retention_days: int = Field(7, ge=0, description="Keep rows this many days after ingest; 0 keeps them forever.")
    clickhouse_cluster: str = Field(
        "",
        description="ClickHouse cluster (a <remote_servers> name, or a {macro}) to create the tables on: "
        "Replicated*MergeTree tables T_local per shard and Distributed tables T sharded by trace ID "
        "(deploy/clickhouse-cluster.md). Needs a server URL. Empty: one node.",
    )

    # --- security (docs/security.md) ---------------------------------------------------------
    auth_file: Path | None = Field(
        None,
        description="YAML token file ([{name, token_sha256, scopes: [ingest|read|admin]}]); unset: no "
        "authentication, which is allowed on loopback only (see allow_unauthenticated).",
    )
    allow_unauthenticated: bool = Field(
        False, description="Serve a non-loopback interface without auth_file (anyone reaching the port is admin)."
    )
    cors_allow_origins: str = Field(
        "", description="Comma-separated origins allowed by CORS (e.g. https://ui.example.com); empty: CORS off."
    )
    docs_enabled: bool = Field(True, description="Serve /docs, /redoc and /openapi.json (no token needed).")
    tls_cert_file: Path | None = Field(
        None, description="PEM server certificate (chain) for OTLP/HTTP + API and OTLP/gRPC; unset: plain text."
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_client_ca_file: Path | None = Field(
        None, description="PEM CA bundle; when set, clients must present a certificate it signed (mTLS)."
    )

    # --- request limits (OTLP receivers) -----------------------------------------------------
    max_request_bytes: int = Field(16 * 1024 * 1024, gt=0, description="Largest request body as sent (compressed).")
    max_decompressed_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest request body after gzip decompression (no gzip bombs)."
    )
    http_max_concurrency: int = Field(
        1024, gt=0, description="HTTP requests in progress (/health not counted) before 503 + Retry-After."
    )
    http_max_body_bytes: int = Field(
        256 * 1024 * 1024, gt=0, description="Bytes of request bodies the HTTP requests in progress announced "
        "(Content-Length) or sent so far; a request that would pass it gets 503 + Retry-After before its body is read.",
    )
    http_max_connections: int = Field(
        4096, gt=0, description="Open HTTP connections; a new one past this is closed at once."
    )
    http_header_timeout_s: float = Field(
        10.0, gt=0, description="Seconds a client has to send a request's headers (else 408 and disconnect)."
    )
    http_body_timeout_s: float = Field(
        60.0, gt=0, description="Seconds a client has to send a request's body after its headers (else disconnect)."
    )
    http_keep_alive_timeout_s: float = Field(
        5.0, gt=0, description="Seconds an idle keep-alive connection stays open (uvicorn timeout_keep_alive)."
    )
    grpc_max_concurrent_rpcs: int = Field(
        64, gt=0, description="OTLP/gRPC calls in progress before UNAVAILABLE + RetryInfo (retried by exporters); "
        "grpcio refuses calls past twice this with RESOURCE_EXHAUSTED.",
    )
    decode_workers: int = Field(
        default_factory=lambda: min(4, os.cpu_count() or 1),
        json_schema_extra={"default_text": "CPU count, at most 4"},
        ge=0,
        description="Processes that decode OTLP bodies (default: CPU count, at most 4); 0 decodes in-process.",
    )

    decode_max_pending_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Request bytes waiting for a decoder before 503/UNAVAILABLE."
    )

    # --- writer ----------------------------------------------------------------------------------
    queue_max_spans: int = Field(
        100_000, gt=0, description="Spans waiting for insert before 503/UNAVAILABLE; a request with more "
        "spans is refused (413/INVALID_ARGUMENT) before it is decoded.",
    )
    queue_max_bytes: int = Field(
        256 * 1024**2, gt=0, description="Bytes of decoded spans (Arrow, resource attributes counted per span) "
        "waiting for insert before 503/UNAVAILABLE.",
    )
    max_decoded_request_bytes: int = Field(
        128 * 1024**2, gt=0, description="Largest request once decoded (Arrow columns, resource attributes "
        "copied onto each span): estimated before decoding and checked after; larger → 413/INVALID_ARGUMENT.",
    )
    batch_max_spans: int = Field(10_000, gt=0, description="Most spans per INSERT (each INSERT writes one part).")
    batch_min_spans: int = Field(
        1000, gt=0, description="An INSERT starts once this many spans wait and no request is being decoded."
    )
    batch_max_wait_s: float = Field(
        0.2, ge=0, le=1.0, description="Longest (s) the oldest waiting request waits for its INSERT to start."
    )
    commit_timeout_s: float = Field(30.0, gt=0, description="A request not committed after this (s) gets 503.")
    retry_after_s: int = Field(1, ge=0, description="Retry-After (s) sent with 503.")
    dedup_window_s: float = Field(
        3600.0, ge=0,
        description="Seconds after ingest within which a retried request is recognised (chain_request_log, "
        "at most its 7 days), answered as already stored and not stored again; 0: no look-up, a retry is "
        "stored again.",
    )

    # --- chDB engine limits ------------------------------------------------------------------
    chdb_max_server_memory_bytes: int = Field(
        2 * 1024**3, gt=0, description="chDB engine-wide memory cap (server setting max_server_memory_usage)."
    )
    chdb_max_query_memory_bytes: int = Field(
        1024**3, gt=0, description="Per-query memory cap (session setting max_memory_usage)."
    )
    chdb_max_threads: int = Field(2, gt=0, description="Threads per query (session setting max_threads).")

    catalog: str = Field(
        "",
        description="Chain catalog YAML file the chain registry is seeded from at every start — the same "
        "variable and format as the services' distribution reads. Empty: the built-in catalog. An invalid "
        "file stops the start.",
    )

    # --- analysis API ----------------------------------------------------------------------------
    jaeger_ui_url: str | None = Field(
        None,
        pattern=r"^(https?://\S+)?$",
        description="Jaeger UI base URL as users' browsers reach it (http://localhost:16686, with any base path); "
        "per-trace responses then carry jaeger_url = <ui>/trace/<trace_id>. Unset or empty: no links.",
    )

    # --- monitoring ---------------------------------------------------------------------------------
    alert_eval_interval_s: float = Field(
        30.0, gt=0, description="Seconds between two evaluations of every chain's alert rules (and /metrics refreshes)."
    )
    alert_default_rules: bool = Field(
        True, description="Chains without an 'alerts:' key get the documented default rules; false: they never alert."
    )
    alert_anomalies: bool = Field(
        False, description="Also alert (ChainAnomaly) when the anomaly detector finds a chain's latency, error rate "
        "or throughput off its baseline (5-minute windows against the 12 before; one more query per evaluation).",
    )
    alertmanager_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        json_schema_extra={"default_text": "(empty)"},
        description="Comma-separated Alertmanager base URLs (http://alertmanager:9093); alerts are POSTed to "
        "<url>/api/v2/alerts. Empty: no Alertmanager.",
    )
    alert_webhook_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        json_schema_extra={"default_text": "(empty)"},
        description="Comma-separated URLs that receive alerts as Alertmanager's webhook JSON (for users without Alertmanager).",
    )
    alert_resend_interval_s: float = Field(
        60.0, gt=0, description="Firing alerts are sent again this often (Prometheus' --rules.alert.resend-delay)."
    )
    alert_notify_timeout_s: float = Field(5.0, gt=0, description="Timeout (s) of one delivery to Alertmanager or a webhook.")
    alert_notify_max_retries: int = Field(
        5, ge=0, description="Retries (exponential backoff from 0.5 s, at most 30 s apart) of a failed delivery."
    )
    console_url: str | None = Field(
        None,
        pattern=r"^(https?://\S+)?$",
        description="The analyzer's base URL as users reach it; alerts then carry console_url = <url>/api/v1/alerts?chain=<chain>. "
        "Unset: links relative to this analyzer's bound address.",
    )
    probes_enabled: bool = Field(True, description="Send the synthetic probes of chains that have a 'probe:' key.")
    probe_trace_wait_s: float = Field(
        15.0, gt=0, le=300,
        description="How long (s) a probe waits for its trace to arrive complete (services export in batches).",
    )

    @field_validator("alertmanager_urls", "alert_webhook_urls", mode="before")
    @classmethod
    def _url_list(cls, value):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        for url in value:
            if not re.fullmatch(r"https?://\S+", url):
                raise ValueError(f"{url!r} is not an http(s):// URL")
        return [url.rstrip("/") for url in value]

    @field_validator("auth_file", "tls_cert_file", "tls_key_file", "tls_client_ca_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        return None if value == "" else value

    @model_validator(mode="after")
    def _tls_files_together(self):
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file (mTLS) needs tls_cert_file and tls_key_file")
        return self

    def cors_origins(self) -> list[str]:
        """``cors_allow_origins`` as a list (empty: CORS off)."""
        return [o.strip() for o in self.cors_allow_origins.split(",") if o.strip()]

    @field_validator("clickhouse_cluster")
    @classmethod
    def _cluster_name(cls, value: str) -> str:
        return check_cluster_name(value) if value else value

    def resolved_clickhouse_url(self) -> str:
        """The store URL: ``clickhouse_url`` if set, else ``chdb://<absolute data_dir>``."""
        if self.clickhouse_url:
            return self.clickhouse_url
        return "chdb://" + str(self.data_dir.expanduser().resolve())
