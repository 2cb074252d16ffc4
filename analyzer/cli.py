"""``chainotel-analyzer``: ``serve`` (OTLP/gRPC + OTLP/HTTP + JSON API over ClickHouse), ``migrate``
(the ClickHouse schema, on one node or a cluster) and ``import``.

Flags override the ``CHAINOTEL_*`` environment; both come from the fields of
:class:`chainotel_analyzer.settings.AnalyzerSettings` (``serve`` has a flag for every setting).
"""

from __future__ import annotations

import functools
import inspect
import logging
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import typer

from chainotel_analyzer.settings import AnalyzerSettings, default_text, env_name

app = typer.Typer(help="chainotel analyzer: OTLP intake into ClickHouse and chain analysis.", no_args_is_help=True)

_FLAGS = {"clickhouse_cluster": "cluster"}
"""Flags named otherwise than their setting."""

SERVE_SETTINGS = tuple(AnalyzerSettings.model_fields)
"""``serve`` takes a flag for every setting."""

MIGRATE_SETTINGS = ("clickhouse_url", "data_dir", "clickhouse_cluster", "retention_days")


def _flag(field: str) -> str:
    return _FLAGS.get(field, field)


def _option(field: str) -> inspect.Parameter:
    """The typer option of one :class:`AnalyzerSettings` field: its type, description, variable and default."""
    info = AnalyzerSettings.model_fields[field]
    annotation = info.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # X | None
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    option = typer.Option(
        None, "--" + _flag(field).replace("_", "-"),
        help=f"{info.description} (env {env_name(field)}; default {default_text(field)})",
        show_default=False,
    )  # fmt: skip
    return inspect.Parameter(_flag(field), inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation | None)


def settings_options(fields: tuple[str, ...]) -> Callable:
    """Decorate a command taking ``settings: AnalyzerSettings``: it gets one ``--flag`` per setting in
    ``fields`` (from the field's type and description) and is called with the settings from the
    environment overridden by the flags given; invalid values exit 2 naming the setting."""

    def decorate(command: Callable) -> Callable:
        signature = inspect.signature(command)

        @functools.wraps(command)
        def run(**kwargs: Any) -> Any:
            overrides = {field: kwargs.pop(_flag(field)) for field in fields}
            return command(settings=_settings(**overrides), **kwargs)

        own = [p for p in signature.parameters.values() if p.name != "settings"]
        run.__signature__ = signature.replace(parameters=own + [_option(f) for f in fields])
        return run

    return decorate


def _settings(**overrides: Any) -> AnalyzerSettings:
    """Settings from the environment with the flags given (None = not given); exit 2 with the reason if invalid."""
    from pydantic import ValidationError

    try:
        return AnalyzerSettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(map(str, err["loc"]))
            typer.echo(f"error: {loc} (--{_flag(loc).replace('_', '-')}, {env_name(loc)}): {err['msg']}", err=True)
        raise typer.Exit(2) from None


def _open_or_exit(opener: Callable[[AnalyzerSettings], Any], settings: AnalyzerSettings) -> Any:
    """``opener(settings)``; a locked data directory or a store setting that cannot work exits 2 saying why."""
    from chainotel_analyzer.store.client import StoreConfigError, StoreLockedError

    try:
        return opener(settings)
    except (StoreLockedError, StoreConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
@settings_options(SERVE_SETTINGS)
def serve(
    settings: AnalyzerSettings,
    log_level: str = typer.Option("info", help="uvicorn/analyzer log level."),
) -> None:
    """Run the analyzer: OTLP/gRPC, OTLP/HTTP ``/v1/traces``, ``/health`` and the analysis API."""
    import uvicorn

    from chainotel_analyzer.api.app import create_app
    from chainotel_analyzer.runtime import start_runtime

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = _open_or_exit(start_runtime, settings)
    try:
        typer.echo(
            f"chainotel analyzer: store {settings.resolved_clickhouse_url()}, "
            f"OTLP/gRPC on {settings.host}:{runtime.grpc_port}, OTLP/HTTP on {settings.host}:{settings.http_port}",
            err=True,
        )
        uvicorn.run(
            create_app(runtime), host=settings.host, port=settings.http_port, workers=1,
            log_level=log_level.lower(), access_log=False, limit_concurrency=settings.http_max_concurrency,
        )  # fmt: skip
    finally:
        runtime.close()


@app.command("migrate")
@settings_options(MIGRATE_SETTINGS)
def migrate_schema(
    settings: AnalyzerSettings,
    print_sql: bool = typer.Option(
        False, "--print-sql", help="Print the DDL a new database gets, then exit; connects to nothing."
    ),
) -> None:
    """Create or update the ClickHouse schema, as ``serve`` does at start: the migration files, then the
    retention TTL. With ``--cluster`` every statement runs ON CLUSTER (see deploy/clickhouse-cluster.md)."""
    from chainotel_analyzer.store import migrations
    from chainotel_analyzer.store.client import open_store
    from chainotel_analyzer.store.layout import SINGLE_NODE, Layout

    url = settings.resolved_clickhouse_url()
    if print_sql:
        # no server to ask: the database is the one the URL names (http://host:8123/<db>), else ClickHouse's default
        database = (urlparse(url).path.strip("/") if not url.startswith("chdb:") else "") or "default"
        layout = Layout(settings.clickhouse_cluster, database) if settings.clickhouse_cluster else SINGLE_NODE
        typer.echo(f"-- chainotel schema for {layout.describe()}, retention {settings.retention_days} days (chainotel-analyzer migrate --print-sql)\n")
        for statement in migrations.schema_statements(layout, settings.retention_days):
            typer.echo(statement + ";\n")
        return
    store = _open_or_exit(open_store, settings)
    try:
        layout = migrations.store_layout(store.client, settings.clickhouse_cluster)
        applied = migrations.migrate(store.client, layout)
        migrations.apply_retention(store.client, settings.retention_days, layout)
    finally:
        store.close()
    done = ", ".join(f"{v:04d}" for v in applied) or "none (schema already current)"
    typer.echo(f"schema on {layout.describe()}: migrations applied: {done}; retention {settings.retention_days} days")


@app.command("import")
def import_files(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="OTLP/JSON (.json, .json.gz) or Jaeger JSON files."),
    endpoint: str = typer.Option("http://127.0.0.1:4318", help="The analyzer's OTLP/HTTP base URL."),
    chunk_spans: int = typer.Option(2000, min=1, help="Spans per request."),
    concurrency: int = typer.Option(4, min=1, help="Requests in flight at once."),
) -> None:
    """Send trace files to a running analyzer and print what was stored and rejected."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from chainotel_analyzer.ingest.importer import ImportFailed, import_file

    console = Console(stderr=True)
    stored = rejected = 0
    failed = False
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("spans"),
        TimeElapsedColumn(), console=console,
    ) as progress:  # fmt: skip
        for path in files:
            task = progress.add_task(path.name, total=None)
            try:
                result = import_file(
                    path, endpoint, chunk_spans,
                    lambda done, total, t=task: progress.update(t, completed=done, total=total),
                    concurrency=concurrency,
                )  # fmt: skip
            except ImportFailed as exc:
                progress.console.print(f"[red]error[/red] {exc}")
                failed = True
                continue
            stored += result.stored
            rejected += result.rejected
            progress.console.print(
                f"{path}: {result.format}, {result.stored} stored, {result.rejected} rejected"
                + (f" ({result.messages[0]})" if result.messages else "")
            )
    typer.echo(f"stored {stored} spans, rejected {rejected} spans")
    if failed:
        raise typer.Exit(1)
