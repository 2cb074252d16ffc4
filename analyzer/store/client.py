"""Open the ClickHouse store: a chDB data directory (locked to this process) or a ClickHouse server.

Only clickhouse-connect talks to ClickHouse. A ``chdb:///abs/dir`` URL runs the ClickHouse engine
in-process (clickhouse-connect's chdb backend); ``http(s)://user:pass@host:8123/db`` uses a server.

chDB limits handled here:

- one process owns a data directory: :func:`open_store` takes an exclusive ``fcntl.flock`` on
  ``<dir>/chainotel.lock`` (holding the owner's PID) before the engine opens, and a second process gets
  :class:`StoreLockedError` naming the lock file and that PID;
- memory is capped explicitly: the engine-wide ``max_server_memory_usage`` is passed as a chDB
  start-up option (``chdb_options``), and every session gets ``max_memory_usage`` and ``max_threads``
  as session settings (see :class:`~chainotel_analyzer.settings.AnalyzerSettings`).
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from chainotel_analyzer.settings import AnalyzerSettings

LOCK_FILE_NAME = "chainotel.lock"


class StoreLockedError(RuntimeError):
    """Another process owns the chDB data directory (chDB: one engine per directory and process)."""

    def __init__(self, lock_path: Path, pid: str):
        self.lock_path = lock_path
        self.pid = pid
        super().__init__(
            f"chDB data directory {lock_path.parent} is in use by process {pid or '?'} "
            f"(lock file {lock_path}); stop that process or pass another --clickhouse-url"
        )


class StoreConfigError(ValueError):
    """The settings name a store that cannot work as configured (a cluster on the embedded chDB store)."""


def _lock_data_dir(path: Path):
    """Take the exclusive lock on ``path/chainotel.lock``; return the open file (keep it open)."""
    path.mkdir(parents=True, exist_ok=True)
    lock_path = path / LOCK_FILE_NAME
    fh = open(lock_path, "a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        pid = fh.read().strip()
        fh.close()
        raise StoreLockedError(lock_path, pid) from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


@dataclass
class Store:
    """An open store. ``client`` is for reads (shared; clickhouse-connect serializes its calls);
    :meth:`new_client` opens another session, e.g. for the writer thread.

    Example::

        store = open_store(AnalyzerSettings(clickhouse_url="chdb:///tmp/x"))
        store.client.query("SELECT count() FROM chain_history").result_rows
    """

    url: str
    settings: AnalyzerSettings
    client: Client
    is_chdb: bool
    data_dir: Path | None = None
    _lock_file: Any = None
    _extra: list[Client] = field(default_factory=list)
    _mutex: threading.Lock = field(default_factory=threading.Lock)

    def new_client(self) -> Client:
        """Open one more session on the same store (own settings state, own serialization lock)."""
        client = _connect(self.url, self.settings)
        with self._mutex:
            self._extra.append(client)
        return client

    def ping(self) -> bool:
        """True when a trivial query succeeds."""
        try:
            return self.client.command("SELECT 1") == 1
        except Exception:  # noqa: BLE001 - health reports any failure as unreachable
            return False

    def close(self) -> None:
        """Close every session, then release the data-dir lock (the engine shuts down with its last
        session). Idempotent."""
        with self._mutex:
            clients, self._extra = [self.client, *self._extra], []
        for client in clients:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _session_settings(settings: AnalyzerSettings) -> dict[str, Any]:
    return {
        "max_memory_usage": settings.chdb_max_query_memory_bytes,
        "max_threads": settings.chdb_max_threads,
    }


def _connect(url: str, settings: AnalyzerSettings) -> Client:
    if url.startswith("chdb:"):
        return clickhouse_connect.get_client(
            dsn=url,
            settings=_session_settings(settings),
            chdb_options={"max_server_memory_usage": settings.chdb_max_server_memory_bytes},
        )
    return clickhouse_connect.get_client(dsn=url, settings=server_session_settings(settings))


def server_session_settings(settings: AnalyzerSettings) -> dict[str, Any]:
    """Session settings on a ClickHouse server. Memory is the server's business, but our queries are
    capped (``max_memory_usage``). On a cluster (``settings.clickhouse_cluster``), an INSERT into a
    Distributed table returns only once every shard has stored its rows (``insert_distributed_sync``:
    an acknowledged OTLP request is stored, as on one node), and a query filtered by trace ID reads
    only that trace's shard (``optimize_skip_unused_shards``; the sharding key is ``cityHash64(trace_id)``).
    """
    out: dict[str, Any] = {"max_memory_usage": settings.chdb_max_query_memory_bytes}
    if settings.clickhouse_cluster:
        out.update(insert_distributed_sync=1, optimize_skip_unused_shards=1)
    return out


def chdb_dir(url: str) -> Path | None:
    """The data directory of a ``chdb:///abs/dir`` URL; None for a server URL or in-memory chDB."""
    if not url.startswith("chdb:"):
        return None
    parsed = urlparse(url)
    location = parsed.netloc or parsed.path
    if parsed.netloc or location in ("", "memory", ":memory:"):
        return None
    return Path(parsed.path).resolve()


def open_store(settings: AnalyzerSettings) -> Store:
    """Lock (for chDB) and connect to the store named by ``settings``; migrations are not run here.

    Raises :class:`StoreLockedError` when another process owns the chDB directory,
    :class:`StoreConfigError` when a cluster is configured for chDB (one node by nature), and
    clickhouse-connect's errors when a server is unreachable.
    """
    url = settings.resolved_clickhouse_url()
    if settings.clickhouse_cluster and url.startswith("chdb:"):
        raise StoreConfigError(
            f"cluster {settings.clickhouse_cluster!r} needs a ClickHouse server URL (http://host:8123/db), "
            f"not the embedded chDB store {url}"
        )
    data_dir = chdb_dir(url)
    lock = _lock_data_dir(data_dir) if data_dir is not None else None
    try:
        client = _connect(url, settings)
    except Exception:
        if lock is not None:
            lock.close()
        raise
    return Store(url=url, settings=settings, client=client, is_chdb=url.startswith("chdb:"), data_dir=data_dir, _lock_file=lock)
