"""Where the schema's tables live — one ClickHouse node, or a sharded and replicated cluster — and the
markers that let one set of migration files (``migrations/NNNN_*.sql``) describe both.

The migration files are the only copy of the schema. A few markers in them say what changes on a
cluster; :meth:`Layout.render` replaces them. On a single node each marker becomes exactly the text it
stands for, so the statements are byte-for-byte those the files held before markers existed. On
cluster ``NAME`` with database ``DB`` (the ClickHouse convention: a ``Replicated*MergeTree`` table per
shard, named ``T_local``, and a ``Distributed`` table ``T`` over all shards):

=====================================  ===============  ===========================================================
marker (in a statement, on one line)   single node      cluster ``NAME``, database ``DB``
=====================================  ===============  ===========================================================
``{on_cluster}``                       (nothing)        `` ON CLUSTER 'NAME'``
``{local:T}``                          ``T``            ``DB.T_local`` (the table that holds a shard's rows)
``{replicated:E(args)}``               ``E(args)``      ``ReplicatedE('/clickhouse/tables/{shard}/{database}/X',
                                                        '{replica}', args)``: one replica set per shard; ``X`` is the
                                                        table the statement creates
``{replicated_everywhere:E(args)}``    ``E(args)``      ``ReplicatedE('/clickhouse/tables/all/{database}/X',
                                                        '{shard}-{replica}', args)``: one replica set over every node,
                                                        so each node holds all rows (small tables, read locally)
``{distributed:T BY key}``             (no statement)   ``CREATE TABLE IF NOT EXISTS T ON CLUSTER 'NAME' AS DB.T_local
                                                        ENGINE = Distributed('NAME', 'DB', T_local, key)``
=====================================  ===============  ===========================================================

``{shard}``, ``{replica}`` and ``{database}`` in the output are ClickHouse macros, expanded by each
server (``<macros>`` in its configuration; ``{database}`` is built in). ``E`` must be a MergeTree-family
engine. ``{distributed:…}`` is a statement of its own (nothing else but comments around it).

Tables that a cluster DDL *refers to* (``AS``, ``TO``, the ``FROM`` of a materialized view,
``Distributed``'s arguments) carry the database explicitly: ``ON CLUSTER`` qualifies only the name of
the object being created with the initiator's database, the others resolve against each host's own
default database (ClickHouse issues #6104, #37318, #39500).

Example::

    >>> Layout().render("CREATE TABLE IF NOT EXISTS {local:t}{on_cluster} (trace_id String) ENGINE = {replicated:MergeTree} ORDER BY trace_id")
    'CREATE TABLE IF NOT EXISTS t (trace_id String) ENGINE = MergeTree ORDER BY trace_id'
    >>> Layout("main", "otel").render("CREATE TABLE {local:t}{on_cluster} (trace_id String) ENGINE = {replicated:MergeTree} ORDER BY trace_id")
    "CREATE TABLE otel.t_local ON CLUSTER 'main' (trace_id String) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/t_local', '{replica}') ORDER BY trace_id"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chainotel_analyzer.settings import check_cluster_name

MARKERS = ("on_cluster", "local", "replicated", "replicated_everywhere", "distributed")

_MARKER = re.compile(r"\{([a-z_]+)(?::([^{}\n]*))?\}")
_ENGINE = re.compile(r"(\w*MergeTree)(?:\((.*)\))?", re.S)
_CREATED_TABLE = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:\{local:(\w+)\}|(\w+))", re.I)
_DISTRIBUTED = re.compile(r"(\w+)\s+BY\s+(.+)", re.S)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("--")


def _string_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _identifier(text: str) -> str:
    return text if _IDENTIFIER.fullmatch(text) else "`" + text.replace("\\", "\\\\").replace("`", "\\`") + "`"


@dataclass(frozen=True)
class Layout:
    """One ClickHouse node (``cluster=None``, the default) or cluster ``cluster`` with the tables in ``database``.

    Raises ValueError for a cluster name outside :data:`chainotel_analyzer.settings.CLUSTER_NAME_PATTERN` or an empty database.
    """

    cluster: str | None = None
    database: str = "default"

    def __post_init__(self) -> None:
        if self.cluster is not None:
            check_cluster_name(self.cluster)
        if not self.database:
            raise ValueError("database name is empty")

    def describe(self) -> str:
        """For people: ``cluster 'NAME', database 'DB'`` or ``a single node``."""
        return f"cluster {self.cluster!r}, database {self.database!r}" if self.cluster else "a single node"

    def local_name(self, table: str) -> str:
        """The table that holds the rows of ``table`` on this node: ``table`` or ``table_local``."""
        return f"{table}_local" if self.cluster else table

    def render(self, statement: str) -> str:
        """``statement`` with the module's markers replaced, comment lines untouched.

        Returns a statement of comments only when the statement exists on a cluster alone
        (``{distributed:…}`` on a single node). Raises ValueError for an unknown marker, an engine
        marker outside ``CREATE TABLE`` or around a non-MergeTree engine, and a ``{distributed:…}``
        that is not ``T BY key`` or shares its statement with other SQL.
        """
        code = "\n".join(line for line in statement.splitlines() if not _is_comment(line))
        created = _CREATED_TABLE.search(code)
        table = None if created is None else created.group(2) or self.local_name(created.group(1))
        if "{distributed:" in code and _MARKER.sub("", code).strip():
            raise ValueError(f"{{distributed:…}} must be a statement of its own: {code.strip()!r}")

        def replace(m: re.Match) -> str:
            name, arg = m.group(1), m.group(2)
            if name not in MARKERS:
                raise ValueError(f"unknown marker {m.group(0)} (known: {', '.join(MARKERS)})")
            if (name == "on_cluster") != (arg is None):
                raise ValueError(f"marker {m.group(0)}: " + ("takes no argument" if arg is not None else "needs ':<argument>'"))
            if name == "on_cluster":
                return f" ON CLUSTER {_string_literal(self.cluster)}" if self.cluster else ""
            if name == "local":
                if not _IDENTIFIER.fullmatch(arg):
                    raise ValueError(f"marker {m.group(0)}: not a table name")
                return f"{_identifier(self.database)}.{arg}_local" if self.cluster else arg
            if name == "distributed":
                return self._distributed(m.group(0), arg)
            return self._replicated(m.group(0), arg, table, everywhere=name == "replicated_everywhere")

        return "\n".join(line if _is_comment(line) else _MARKER.sub(replace, line) for line in statement.splitlines())

    def _replicated(self, marker: str, engine: str, table: str | None, everywhere: bool) -> str:
        m = _ENGINE.fullmatch(engine.strip())
        if m is None:
            raise ValueError(f"{marker}: not a MergeTree-family engine")
        if table is None:
            raise ValueError(f"{marker} outside a CREATE TABLE statement")
        if not self.cluster:
            return engine
        if everywhere:
            path, replica = "/clickhouse/tables/all/{database}/" + table, "{shard}-{replica}"
        else:
            path, replica = "/clickhouse/tables/{shard}/{database}/" + table, "{replica}"
        args = [_string_literal(path), _string_literal(replica)] + ([m.group(2)] if m.group(2) else [])
        return f"Replicated{m.group(1)}({', '.join(args)})"

    def _distributed(self, marker: str, arg: str) -> str:
        m = _DISTRIBUTED.fullmatch(arg.strip())
        if m is None:
            raise ValueError(f"{marker}: expected {{distributed:<table> BY <sharding key>}}")
        if not self.cluster:
            return ""
        table, key = m.groups()
        cluster = _string_literal(self.cluster)
        return (
            f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER {cluster} AS {_identifier(self.database)}.{table}_local\n"
            f"ENGINE = Distributed({cluster}, {_string_literal(self.database)}, {table}_local, {key})"
        )


SINGLE_NODE = Layout()
"""Today's default: plain MergeTree-family tables on one server or chDB."""
