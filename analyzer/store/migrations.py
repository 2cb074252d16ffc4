"""Versioned, idempotent schema migrations: ``migrations/NNNN_<name>.sql`` applied in order at start.

Each file holds one or more statements separated by a ``;`` at the end of a line (``--`` comments
allowed). Applied versions are recorded in ``schema_migrations``; every statement is written to be
re-runnable (``IF NOT EXISTS``), so a start interrupted mid-file simply re-applies that file.
After the files, :func:`apply_retention` sets the TTL of the span tables from the configuration.

The same files make the schema of a ClickHouse cluster: markers in them (``{on_cluster}``,
``{local:T}``, ``{replicated:…}``, ``{distributed:…}``, see :mod:`chainotel_analyzer.store.layout`) become
nothing on a single node — the statements run there are byte-for-byte the unmarked ones — and
``ON CLUSTER``, ``Replicated*MergeTree`` tables ``T_local`` and ``Distributed`` tables ``T`` sharded by
trace ID on a cluster. Every statement here, bookkeeping and retention included, goes through
:meth:`~chainotel_analyzer.store.layout.Layout.render`. :func:`schema_statements` lists them without a server
(``chainotel-analyzer migrate --print-sql``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from clickhouse_connect.driver.client import Client

from chainotel_analyzer.store.layout import SINGLE_NODE, Layout

TTL_TABLES = ("chain_history", "chain_traces", "chain_metrics", "chain_requests")
"""Tables whose rows expire ``retention_days`` after ``ingested_at``."""

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One migration file: ``version`` (the NNNN prefix), ``name``, and its SQL ``statements``."""

    version: int
    name: str
    statements: tuple[str, ...]


def split_statements(sql: str) -> list[str]:
    """Split a migration file into statements at ``;`` ending a line; drop comment-only chunks."""
    out, current = [], []
    for line in sql.splitlines():
        current.append(line)
        if line.rstrip().endswith(";"):
            out.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    out.append("\n".join(current))
    code = []
    for stmt in out:
        body = "\n".join(ln for ln in stmt.splitlines() if not ln.strip().startswith("--")).strip()
        if body:
            code.append(stmt.strip())
    return code


def _has_code(statement: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("--") for line in statement.splitlines())


def load_migrations(layout: Layout = SINGLE_NODE) -> list[Migration]:
    """All migration files shipped in ``analyzer/store/migrations``, sorted by version, their
    statements rendered for ``layout`` (a statement that exists only on a cluster is left out on a
    single node). Raises ValueError for a malformed marker (see :meth:`Layout.render`)."""
    found = []
    for entry in resources.files("chainotel_analyzer.store").joinpath("migrations").iterdir():
        m = _FILE_RE.match(entry.name)
        if m:
            rendered = (layout.render(stmt) for stmt in split_statements(entry.read_text("utf-8")))
            found.append(Migration(int(m.group(1)), m.group(2), tuple(stmt for stmt in rendered if _has_code(stmt))))
    found.sort(key=lambda mig: mig.version)
    return found


SCHEMA_MIGRATIONS_SQL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations{on_cluster} (version UInt32, name String, "
    "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = {replicated_everywhere:MergeTree} ORDER BY version"
)
"""The bookkeeping table. On a cluster it is replicated to every node, like ``chain_definitions``:
whichever node the analyzer connects to knows which versions were applied."""

_MODIFY_TTL_SQL = "ALTER TABLE {local:%s}{on_cluster} MODIFY TTL ingested_at + toIntervalDay(%d)"
_REMOVE_TTL_SQL = "ALTER TABLE {local:%s}{on_cluster} REMOVE TTL"


def store_layout(client: Client, cluster: str | None) -> Layout:
    """The layout of the store behind ``client``: :data:`SINGLE_NODE` without ``cluster``, else
    ``cluster`` with the tables in the client's current database (``SELECT currentDatabase()``)."""
    if not cluster:
        return SINGLE_NODE
    return Layout(cluster, str(client.command("SELECT currentDatabase()")))


def migrate(client: Client, layout: Layout = SINGLE_NODE) -> list[int]:
    """Apply every migration not yet recorded in ``schema_migrations``; return the versions applied.

    ``layout`` says where the tables go (default: one node); on a cluster every statement is sent
    ``ON CLUSTER`` through the node ``client`` is connected to.
    """
    client.command(layout.render(SCHEMA_MIGRATIONS_SQL))
    done = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    applied = []
    for mig in load_migrations(layout):
        if mig.version in done:
            continue
        for stmt in mig.statements:
            client.command(stmt)
        client.insert("schema_migrations", [[mig.version, mig.name]], column_names=["version", "name"])
        applied.append(mig.version)
    return applied


def retention_sql(table: str, retention_days: int, layout: Layout = SINGLE_NODE) -> str:
    """The ALTER that gives ``table`` (on a cluster: every shard's ``table_local``) the TTL
    ``ingested_at + retention_days`` days, or removes it when ``retention_days`` is 0."""
    if retention_days == 0:
        return layout.render(_REMOVE_TTL_SQL % table)
    return layout.render(_MODIFY_TTL_SQL % (table, int(retention_days)))


def apply_retention(client: Client, retention_days: int, layout: Layout = SINGLE_NODE) -> None:
    """Make the TTL of :data:`TTL_TABLES` ``ingested_at + retention_days`` (0: remove the TTL).

    Only tables whose TTL differs are altered (a MODIFY TTL rewrites TTL info of existing parts).
    On a cluster the ``_local`` tables carry the TTL (a Distributed table stores nothing); the
    current TTL is read on the node ``client`` is connected to and the ALTER runs ``ON CLUSTER``.
    """
    for table in TTL_TABLES:
        engine_full = client.command(
            "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
            parameters={"t": layout.local_name(table)},
        )
        current = re.search(r"TTL ingested_at \+ toIntervalDay\((\d+)\)", str(engine_full))
        if retention_days == 0:
            if current:
                client.command(retention_sql(table, 0, layout))
        elif not current or int(current.group(1)) != retention_days:
            client.command(retention_sql(table, retention_days, layout))


def schema_statements(layout: Layout = SINGLE_NODE, retention_days: int = 0) -> list[str]:
    """Every DDL statement that :func:`migrate` then :func:`apply_retention` run on a new, empty
    database, in order (the ``schema_migrations`` INSERTs are not DDL and not listed). Connects to nothing."""
    out = [layout.render(SCHEMA_MIGRATIONS_SQL)]
    for mig in load_migrations(layout):
        out.extend(mig.statements)
    if retention_days:
        out.extend(retention_sql(table, retention_days, layout) for table in TTL_TABLES)
    return out
