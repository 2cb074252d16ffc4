"""The migrations' cluster form (``migrate --cluster``, :mod:`chainotel_analyzer.store.layout`) and their
unchanged single-node form.

No ClickHouse cluster runs here: the cluster DDL is parsed by ClickHouse's own parser (chDB,
``formatQuerySingleLine``, which also normalises it) and the normalised statements are checked by
:func:`cluster_problems`. Each check is shown to fail on a deliberately wrong statement.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import clickhouse_connect
import pytest
from typer.testing import CliRunner

from chainotel_analyzer.cli import app
from chainotel_analyzer.settings import AnalyzerSettings
from chainotel_analyzer.store.client import server_session_settings
from chainotel_analyzer.store.layout import SINGLE_NODE, Layout
from chainotel_analyzer.store.migrations import TTL_TABLES, apply_retention, migrate, retention_sql, schema_statements
from tests.ingest.conftest import open_db

CLUSTER, DB = "chainotel_cluster", "otel"

# sha256 (first 16 hex digits) of each DDL statement that migrate(), apply_retention(7) and
# apply_retention(0) ran on a new chDB database at commit 40f1286, before the migration files had
# cluster markers: the single-node schema of versions 1-4 must stay byte-for-byte what it was
# (databases that applied these versions never re-run them). Later versions come between the
# CREATEs and the TTL statements, and their tables get TTL statements of their own.
SINGLE_NODE_DDL_BEFORE_MARKERS = [
    "c9272ab0cf58edfa",  # schema_migrations
    "24d64c6b457d50fe",  # 0001 chain_history
    "dc8cf7698e66ff44",  # 0002 chain_traces
    "ce8dd02f5ea5f954",  # 0002 chain_traces_mv
    "cd8888451cfae9d3",  # 0003 chain_metrics
    "0beb56c750e240f5",  # 0003 chain_metrics_mv
    "edc635a3ddf83ac1",  # 0004 chain_definitions
    "7205e051f934fe28",  # MODIFY TTL chain_history
    "34d3cbcf85e57dba",  # MODIFY TTL chain_traces
    "53d1e317012c8e6e",  # MODIFY TTL chain_metrics
    "a0681e4d4b009846",  # REMOVE TTL chain_history
    "8e7a5e4ba002b8dc",  # REMOVE TTL chain_traces
    "05d2b69cd2bd5b0e",  # REMOVE TTL chain_metrics
]


def _digest(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()[:16]


# --- the checks, on statements as formatQuerySingleLine prints them --------------------------------

_NAME = r"(?:`[^`]*`|[\w.{}-]+)"
_HEAD = re.compile(rf"^(CREATE TABLE IF NOT EXISTS|CREATE MATERIALIZED VIEW IF NOT EXISTS|ALTER TABLE|DROP VIEW IF EXISTS) ({_NAME}) ON CLUSTER ({_NAME})(?: |$)")
_MERGE_TREE = re.compile(r"ENGINE = (\w*MergeTree)(?:\(([^()]*)\))?")
_DISTRIBUTED = re.compile(rf"AS ({_NAME}) ENGINE = Distributed\('([^']*)', '([^']*)', (\w+), (.*)\)$")
_COPY = re.compile(rf"^INSERT INTO ({_NAME}) \(.*\) SELECT .* FROM ({_NAME})(?: |$)")
_MV = re.compile(rf"TO ({_NAME}) AS SELECT .* FROM ({_NAME})(?: |$)")
_RENAMED = re.compile(r"RENAME COLUMN (?:IF EXISTS )?`?(\w+)`? TO ")


def _unquote(name: str) -> str:
    return name[1:-1] if name.startswith("`") else name


def cluster_problems(statements: list[str], cluster: str, database: str) -> list[str]:
    """Readable problems of normalised cluster DDL (empty when it is the documented mapping):
    every statement ON CLUSTER ``cluster``; every MergeTree-family engine Replicated, with the
    ``{shard}``/``{replica}`` macros and a ZooKeeper path of its own ending in the table's name —
    per shard for ``T_local`` tables, one replica set over all nodes for the others; every ``T_local``
    has one Distributed twin ``T`` over ``database.T_local``, sharded by ``cityHash64(trace_id)``
    when the table has a ``trace_id`` column (else ``rand()``); materialized views read
    ``database.chain_history_local`` and write a ``_local`` table; ALTERs change ``_local`` tables, a
    table replicated on every node, or a Distributed table exactly as its ``_local`` table; a column change
    (``… COLUMN``) of a ``_local`` table is made to its Distributed twin too; no column that a live
    materialized view reads is renamed (the view is dropped before and created again after), and no view is
    created while it exists (``IF NOT EXISTS`` would keep its old query)."""
    problems, paths, locals_, twins, with_trace_id, everywhere = [], {}, set(), {}, set(), set()
    live_views: dict[str, tuple[str, str]] = {}  # view -> (the table it reads, its query)
    distributed_names = {_unquote(m.group(2)) for sql in statements if "ENGINE = Distributed" in sql
                         for m in [_HEAD.match(sql)] if m}  # fmt: skip
    for sql in statements:
        copy = _COPY.match(sql)
        if copy is not None:  # a one-off copy between tables on every node: runs on one node, replicated from there
            if not {_unquote(copy.group(1)), _unquote(copy.group(2))} <= everywhere:
                problems.append(f"INSERT into {copy.group(1)} from {copy.group(2)}: not both replicated on every node")
            continue
        head = _HEAD.match(sql)
        if head is None or _unquote(head.group(3)) != cluster:
            problems.append(f"not ON CLUSTER {cluster}: {sql[:120]}")
            continue
        kind, name = head.group(1), _unquote(head.group(2))
        table = name.rsplit(".", 1)[-1]
        if kind.startswith("DROP"):
            live_views.pop(table, None)
            continue  # ON CLUSTER is all a DROP needs
        engine = _MERGE_TREE.search(sql)
        if kind.startswith("CREATE TABLE") and engine:
            args = [a.strip() for a in (engine.group(2) or "").split(",")]
            if not engine.group(1).startswith("Replicated") or len(args) < 2:
                problems.append(f"{table}: engine {engine.group(1)} is not Replicated with a path and a replica name")
                continue
            path, replica = args[0].strip("'"), args[1].strip("'")
            sharded = table.endswith("_local")
            if "{replica}" not in replica:
                problems.append(f"{table}: replica name {replica!r} lacks {{replica}}")
            if sharded and "{shard}" not in path:
                problems.append(f"{table}: path {path!r} lacks {{shard}} (a per-shard table)")
            if not sharded and ("{shard}" in path or "{shard}" not in replica):
                problems.append(f"{table}: path {path!r}, replica {replica!r}: one replica set over all nodes needs "
                                "{shard} in the replica name, not in the path")  # fmt: skip
            if not path.endswith("/" + table):
                problems.append(f"{table}: path {path!r} does not end with the table's name")
            if path in paths:
                problems.append(f"{table}: path {path!r} already used by {paths[path]}")
            paths[path] = table
            if sharded:
                if name != f"{database}.{table}":
                    problems.append(f"{table}: created as {name}, not {database}.{table}")
                locals_.add(table)
                if re.search(r"[(,] `trace_id` ", sql.replace("(`", "( `")):
                    with_trace_id.add(table)
            else:
                everywhere.add(name)
        elif kind.startswith("CREATE TABLE"):
            dist = _DISTRIBUTED.search(sql)
            if dist is None:
                problems.append(f"{table}: neither a MergeTree-family nor a Distributed table")
                continue
            source, d_cluster, d_database, d_table, key = dist.groups()
            twins.setdefault(d_table, []).append((table, key))
            if (_unquote(source), d_cluster, d_database, d_table) != (f"{database}.{table}_local", cluster, database, f"{table}_local"):
                problems.append(f"{table}: Distributed over {source} / ({d_cluster}, {d_database}, {d_table}), "
                                f"expected {database}.{table}_local on {cluster}")  # fmt: skip
        elif kind.startswith("CREATE MATERIALIZED VIEW"):
            mv = _MV.search(sql)
            target, source = (_unquote(mv.group(1)), _unquote(mv.group(2))) if mv else ("?", "?")
            if source in everywhere:  # a view between tables on every node (the registry's version log)
                if target not in everywhere:
                    problems.append(f"{table}: reads {source} (on every node) but writes {target}, which is not")
            elif not (target.startswith(database + ".") and target.endswith("_local")):
                problems.append(f"{table}: writes {target}, not a {database}.*_local table")
            if source not in everywhere and source != f"{database}.chain_history_local":
                problems.append(f"{table}: reads {source}, not {database}.chain_history_local")
            if table in live_views:
                problems.append(f"{table}: created while it exists (IF NOT EXISTS keeps its old query)")
            live_views[table] = (source, sql.split(" AS SELECT ", 1)[-1])
        elif kind.startswith("DROP VIEW"):
            if not table.endswith("_mv"):
                problems.append(f"DROP VIEW {name}: not a materialized view of the migrations")
        elif name in distributed_names:
            # a Distributed table gets the columns its _local table got, in the same words (the _local ALTER
            # may go on to change its sorting key: a Distributed table has none)
            local = sql.replace(f"ALTER TABLE {name} ", f"ALTER TABLE {database}.{name}_local ", 1)
            if not any(s == local or s.startswith(local + ", (MODIFY ORDER BY ") for s in statements):
                problems.append(f"ALTER of Distributed {name} without the same ALTER of {database}.{name}_local")
        elif not (name.startswith(database + ".") and name.endswith("_local")) and name not in paths.values():
            problems.append(f"ALTER of {name}, not of a {database}.*_local table")
        else:  # an ALTER of a _local table (or of a table on every node)
            for column in _RENAMED.findall(sql):
                problems.extend(f"{view}: reads {column}, which ALTER of {name} renames (drop the view before, create it again after)"
                                for view, (source, query) in sorted(live_views.items())
                                if source == name and re.search(rf"\b{column}\b", query))  # fmt: skip
            twin = table.removesuffix("_local")
            same = re.sub(r", \(MODIFY ORDER BY .*\)$", "", sql.replace(f"ALTER TABLE {name} ", f"ALTER TABLE {twin} ", 1))
            if " COLUMN " in sql and twin in distributed_names and same not in statements:
                problems.append(f"ALTER of {name} without the same column change of Distributed {twin}")
    for table in sorted(locals_):
        found = twins.get(table, [])
        expected = "cityHash64(trace_id)" if table in with_trace_id else "rand()"
        if [key for _, key in found] != [expected]:
            problems.append(f"{table}: Distributed twins {found}, expected one sharded by {expected}")
    return problems


def _normaliser(tmp_path: Path) -> tuple[Callable[[str], str], Callable[[], None]]:
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp_path / 'parser'}")

    def normalise(sql: str) -> str:
        return client.query("SELECT formatQuerySingleLine({q:String})", parameters={"q": sql}).result_rows[0][0]

    return normalise, client.close


@pytest.fixture
def cluster_ddl(tmp_path) -> list[str]:
    """The cluster DDL (cluster ``chainotel_cluster``, database ``otel``) as ClickHouse parses it."""
    normalise, close = _normaliser(tmp_path)
    try:
        return [normalise(sql) for sql in schema_statements(Layout(CLUSTER, DB), retention_days=7)]
    finally:
        close()


# --- single node -------------------------------------------------------------------------------


def test_single_node_ddl_is_byte_for_byte_what_it_was(tmp_path, monkeypatch):
    with open_db(tmp_path / "db") as db:
        ran: list[str] = []
        command = db.command

        def recording(sql, *args, **kwargs):
            ran.append(sql)
            return command(sql, *args, **kwargs)

        monkeypatch.setattr(db, "command", recording)
        migrate(db)
        apply_retention(db, 7)
        apply_retention(db, 0)
    ddl = [sql for sql in ran if not sql.startswith("SELECT")]
    old_tables = ("chain_history", "chain_traces", "chain_metrics")
    n = len(ddl) - 2 * len(TTL_TABLES)  # CREATE/ALTER of the migrations, then MODIFY TTL and REMOVE TTL per table
    kept = ddl[:7] + [sql for sql in ddl[n:] if any(sql.startswith(f"ALTER TABLE {t} ") for t in old_tables)]
    assert [_digest(sql) for sql in kept] == SINGLE_NODE_DDL_BEFORE_MARKERS, "\n;\n".join(ddl)
    # --print-sql lists exactly what a new database gets
    assert ddl[: n + len(TTL_TABLES)] == schema_statements(SINGLE_NODE, retention_days=7)
    assert [retention_sql(t, 0) for t in TTL_TABLES] == ddl[n + len(TTL_TABLES) :]


# --- cluster -----------------------------------------------------------------------------------


def test_cluster_ddl_maps_every_table(cluster_ddl):
    assert cluster_problems(cluster_ddl, CLUSTER, DB) == []
    # a materialized view dropped and created again by a later migration counts once
    created = {_unquote(_HEAD.match(sql).group(2)).rsplit(".", 1)[-1] for sql in cluster_ddl if sql.startswith("CREATE")}
    assert sorted(created) == sorted([
        "schema_migrations", "chain_definitions", "chain_alerts", "probe_results",  # on every node, read locally
        "chain_definition_versions", "chain_definition_versions_mv",
        "chain_history_local", "chain_history", "chain_traces_local", "chain_traces", "chain_traces_mv",
        "chain_metrics_local", "chain_metrics", "chain_metrics_mv",
        "chain_requests_local", "chain_requests", "chain_requests_mv", "chain_request_log",
    ])  # fmt: skip
    # the names the analyzer's queries read exist on a cluster as on one node
    single = {re.search(r"EXISTS (\w+)", sql).group(1) for sql in schema_statements(SINGLE_NODE) if "CREATE" in sql}
    assert sorted(single) == sorted(t for t in created if not t.endswith("_local"))
    assert sum(sql.startswith("ALTER TABLE") and " TTL " in sql for sql in cluster_ddl) == len(TTL_TABLES)


def _swap(old: str, new: str, where: str = "") -> Callable[[list[str]], list[str]]:
    def mutate(statements: list[str]) -> list[str]:
        out = [sql.replace(old, new, 1) if where in sql else sql for sql in statements]
        assert out != statements, f"mutation {old!r} → {new!r} changed nothing"
        return out

    return mutate


def _keep_the_view_over_a_rename(statements: list[str]) -> list[str]:
    """Without the DROP VIEW that precedes the rename of a column the view reads (0022)."""
    return [sql for i, sql in enumerate(statements)
            if not (sql.startswith("DROP VIEW IF EXISTS chain_traces_mv ") and "RENAME COLUMN IF EXISTS chain_id" in statements[i + 1])]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (_swap(f"chain_traces_mv ON CLUSTER {CLUSTER} ", "chain_traces_mv "), "not ON CLUSTER"),
        (_swap(f"ON CLUSTER {CLUSTER} (MODIFY", "ON CLUSTER other (MODIFY"), "not ON CLUSTER"),
        (_swap("ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/chain_history_local', '{replica}')",
               "ENGINE = MergeTree"), "chain_history_local: engine MergeTree is not Replicated"),
        (_swap("{shard}/{database}/chain_traces_local", "{database}/chain_traces_local"), "lacks {shard}"),
        (_swap("'{replica}'", "'r1'", "chain_metrics_local ON"), "lacks {replica}"),
        (_swap("'{shard}-{replica}'", "'{replica}'", "chain_definitions"), "one replica set over all nodes"),
        (_swap("{database}/chain_metrics_local'", "{database}/chain_traces_local'"), "already used by chain_traces_local"),
        (_swap("{database}/chain_metrics_local'", "{database}/metrics'"), "does not end with the table's name"),
        (_swap("cityHash64(trace_id))", "rand())", "AS otel.chain_history_local"), "expected one sharded by cityHash64"),
        (_swap("AS otel.chain_traces_local", "AS chain_traces_local"), "chain_traces: Distributed over"),
        (_swap("Distributed('chainotel_cluster', 'otel', chain_history_local", "Distributed('chainotel_cluster', 'default', chain_history_local"),
         "chain_history: Distributed over"),
        (lambda s: [sql for sql in s if "ENGINE = Distributed" not in sql or "chain_traces_local" not in sql],
         "chain_traces_local: Distributed twins []"),
        (_swap("FROM otel.chain_history_local", "FROM chain_history", "chain_traces_mv"), "reads chain_history,"),
        (_swap("TO otel.chain_metrics_local", "TO otel.chain_metrics"), "writes otel.chain_metrics,"),
        (_swap("TO chain_definition_versions", "TO otel.chain_history"), "but writes otel.chain_history, which is not"),
        (_swap("INSERT INTO chain_definition_versions", "INSERT INTO otel.chain_history"), "not both replicated on every node"),
        (_swap("ALTER TABLE otel.chain_history_local", "ALTER TABLE otel.chain_history"), "ALTER of otel.chain_history,"),
        (_swap("IF NOT EXISTS otel.chain_traces_local", "IF NOT EXISTS chain_traces_local"), "created as chain_traces_local"),
        (lambda s: [sql for sql in s if not (sql.startswith("ALTER TABLE chain_history ") and "RENAME COLUMN" in sql)],
         "ALTER of otel.chain_history_local without the same column change of Distributed chain_history"),
        (_keep_the_view_over_a_rename, "chain_traces_mv: reads chain_id, which ALTER of otel.chain_history_local renames"),
        (_keep_the_view_over_a_rename, "chain_traces_mv: created while it exists"),
    ],
)  # fmt: skip
def test_each_cluster_check_fails_on_a_wrong_statement(cluster_ddl, mutate, problem):
    problems = cluster_problems(mutate(cluster_ddl), CLUSTER, DB)
    assert any(problem in p for p in problems), problems


def test_clickhouse_parser_rejects_a_broken_statement(tmp_path):
    normalise, close = _normaliser(tmp_path)
    try:
        good = schema_statements(Layout(CLUSTER, DB))[1]
        assert normalise(good).startswith(f"CREATE TABLE IF NOT EXISTS {DB}.chain_history_local ON CLUSTER {CLUSTER} (")
        with pytest.raises(Exception, match="SYNTAX_ERROR"):
            normalise(good.replace(" ON CLUSTER ", " ON CLUSTERS "))
        with pytest.raises(Exception, match="SYNTAX_ERROR"):
            normalise(good.replace("'{replica}')", "'{replica}'"))
    finally:
        close()


def test_markers_are_strict():
    cluster = Layout(CLUSTER, DB)
    with pytest.raises(ValueError, match="unknown marker"):
        cluster.render("CREATE TABLE {local:t}{on_clustre} (a String) ENGINE = MergeTree ORDER BY a")
    with pytest.raises(ValueError, match="unknown marker"):
        SINGLE_NODE.render("SELECT {trace_id:String}")  # query parameters are no marker
    with pytest.raises(ValueError, match="outside a CREATE TABLE"):
        cluster.render("ALTER TABLE t MODIFY SETTING x = {replicated:MergeTree}")
    with pytest.raises(ValueError, match="not a MergeTree-family engine"):
        cluster.render("CREATE TABLE t (a String) ENGINE = {replicated:Log}")
    with pytest.raises(ValueError, match="statement of its own"):
        cluster.render("CREATE TABLE t AS u; {distributed:t BY rand()}")
    with pytest.raises(ValueError, match="expected \\{distributed"):
        cluster.render("{distributed:t}")
    with pytest.raises(ValueError, match="cluster name"):
        Layout("c' SETTINGS x", DB)
    assert SINGLE_NODE.render("-- {anything:goes} in comments\n{distributed:t BY rand()}") == "-- {anything:goes} in comments\n"
    assert Layout("{cluster}", "my-db").render("{distributed:t BY rand()}") == (
        "CREATE TABLE IF NOT EXISTS t ON CLUSTER '{cluster}' AS `my-db`.t_local\n"
        "ENGINE = Distributed('{cluster}', 'my-db', t_local, rand())"
    )


# --- CLI and settings ----------------------------------------------------------------------------


def test_migrate_print_sql_connects_to_nothing(monkeypatch):
    monkeypatch.delenv("CHAINOTEL_CLICKHOUSE_CLUSTER", raising=False)
    runner = CliRunner()
    # port 9 (discard) on loopback: a connection attempt would fail the command
    url = "http://user:secret@127.0.0.1:9/otel"
    result = runner.invoke(app, ["migrate", "--print-sql", "--cluster", CLUSTER, "--clickhouse-url", url])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"-- chainotel schema for cluster '{CLUSTER}', database 'otel', retention 7 days")
    assert result.output.count(";\n") == len(schema_statements(Layout(CLUSTER, DB), 7))
    assert all(sql + ";\n" in result.output for sql in schema_statements(Layout(CLUSTER, DB), 7))
    assert "secret" not in result.output

    result = runner.invoke(app, ["migrate", "--print-sql", "--retention-days", "0"], env={"CHAINOTEL_CLICKHOUSE_CLUSTER": "from_env"})
    assert result.exit_code == 0, result.output
    expected = schema_statements(Layout("from_env", "default"), retention_days=0)
    assert "database 'default'" in result.output and not any(" TTL" in sql for sql in _code(expected))
    assert result.output.count(";\n") == len(expected) and all(sql + ";\n" in result.output for sql in expected)

    result = runner.invoke(app, ["migrate", "--print-sql", "--cluster", "bad'name"])
    assert result.exit_code == 2 and "cluster name" in result.output

    result = runner.invoke(app, ["migrate", "--print-sql"])
    assert result.exit_code == 0 and "ON CLUSTER" not in result.output and "Distributed" not in result.output
    assert all(sql + ";\n" in result.output for sql in schema_statements(SINGLE_NODE, 7))


def test_migrate_command_on_chdb_and_cluster_needs_a_server(tmp_path, monkeypatch):
    monkeypatch.delenv("CHAINOTEL_CLICKHOUSE_CLUSTER", raising=False)
    runner = CliRunner()
    url = f"chdb://{tmp_path / 'db'}"
    result = runner.invoke(app, ["migrate", "--clickhouse-url", url])
    assert result.exit_code == 0 and "applied: 0001, 0002, 0003, 0004" in result.output, result.output
    result = runner.invoke(app, ["migrate", "--clickhouse-url", url, "--retention-days", "3"])
    assert result.exit_code == 0 and "none (schema already current)" in result.output, result.output
    with open_db(tmp_path / "db") as db:
        ttl = db.command("SELECT engine_full FROM system.tables WHERE name = 'chain_metrics'")
        assert "toIntervalDay(3)" in ttl
    for command in (["migrate", "--cluster", CLUSTER], ["serve", "--cluster", CLUSTER, "--grpc-port", "-1"]):
        result = runner.invoke(app, [*command, "--clickhouse-url", url])
        assert result.exit_code == 2 and "needs a ClickHouse server URL" in result.output, result.output


def test_cluster_setting_and_server_session(monkeypatch):
    monkeypatch.setenv("CHAINOTEL_CLICKHOUSE_CLUSTER", "{cluster}")
    settings = AnalyzerSettings()
    assert settings.clickhouse_cluster == "{cluster}"
    # an acknowledged OTLP request must be on its shard, not queued on the node that received it
    assert server_session_settings(settings)["insert_distributed_sync"] == 1
    monkeypatch.delenv("CHAINOTEL_CLICKHOUSE_CLUSTER")
    assert "insert_distributed_sync" not in server_session_settings(AnalyzerSettings())


def _code(statements: list[str]) -> list[str]:
    """The statements without their comment lines."""
    return ["\n".join(ln for ln in sql.splitlines() if not ln.lstrip().startswith("--")) for sql in statements]
