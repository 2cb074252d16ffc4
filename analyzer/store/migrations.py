"""Versioned, idempotent schema migrations: ``migrations/NNNN_<name>.sql`` applied in order at start.

Each file holds one or more statements separated by a ``;`` at the end of a line (``--`` comments
allowed). Applied versions are recorded in ``schema_migrations``; every statement is written to be
re-runnable (``IF NOT EXISTS``), so a start interrupted mid-file simply re-applies that file.
After the files, :func:`apply_retention` sets the TTL of the span tables from the configuration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from clickhouse_connect.driver.client import Client

TTL_TABLES = ("chain_history", "chain_traces", "chain_metrics")
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


def load_migrations() -> list[Migration]:
    """All migration files shipped in ``analyzer/store/migrations``, sorted by version."""
    found = []
    for entry in resources.files("analyzer.store").joinpath("migrations").iterdir():
        m = _FILE_RE.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), tuple(split_statements(entry.read_text("utf-8")))))
    found.sort(key=lambda mig: mig.version)
    return found


def migrate(client: Client) -> list[int]:
    """Apply every migration not yet recorded in ``schema_migrations``; return the versions applied."""
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    applied = []
    for mig in load_migrations():
        if mig.version in done:
            continue
        for stmt in mig.statements:
            client.command(stmt)
        client.insert("schema_migrations", [[mig.version, mig.name]], column_names=["version", "name"])
        applied.append(mig.version)
    return applied


def apply_retention(client: Client, retention_days: int) -> None:
    """Make the TTL of :data:`TTL_TABLES` ``ingested_at + retention_days`` (0: remove the TTL).

    Only tables whose TTL differs are altered (a MODIFY TTL rewrites TTL info of existing parts).
    """
    for table in TTL_TABLES:
        engine_full = client.command(
            "SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
            parameters={"t": table},
        )
        current = re.search(r"TTL ingested_at \+ toIntervalDay\((\d+)\)", str(engine_full))
        if retention_days == 0:
            if current:
                client.command(f"ALTER TABLE {table} REMOVE TTL")
        elif not current or int(current.group(1)) != retention_days:
            client.command(f"ALTER TABLE {table} MODIFY TTL ingested_at + toIntervalDay({int(retention_days)})")
