"""``chainotel-analyzer``: ``serve`` (OTLP/gRPC + OTLP/HTTP + JSON API over ClickHouse) and ``import``.

Flags override the ``CHAINOTEL_*`` environment (see :class:`analyzer.settings.AnalyzerSettings`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

app = typer.Typer(help="chainotel analyzer: OTLP intake into ClickHouse and chain analysis.", no_args_is_help=True)


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to bind [env CHAINOTEL_HOST, default 0.0.0.0]."),
    grpc_port: int = typer.Option(None, help="OTLP/gRPC port; -1 disables [env CHAINOTEL_GRPC_PORT, default 4317]."),
    http_port: int = typer.Option(None, help="OTLP/HTTP + API port [env CHAINOTEL_HTTP_PORT, default 4318]."),
    clickhouse_url: str = typer.Option(
        None, help="chdb:///abs/dir or http(s)://user:pass@host:8123/db [env CHAINOTEL_CLICKHOUSE_URL]."
    ),
    data_dir: Path = typer.Option(
        None, help="chDB data directory when no URL is given [env CHAINOTEL_DATA_DIR, default ~/.local/share/chainotel]."
    ),
    retention_days: int = typer.Option(None, help="Days kept after ingest, 0 = forever [env CHAINOTEL_RETENTION_DAYS, default 7]."),
    log_level: str = typer.Option("info", help="uvicorn/analyzer log level."),
) -> None:
    """Run the analyzer: OTLP/gRPC, OTLP/HTTP ``/v1/traces``, ``/health`` and the analysis API."""
    import uvicorn

    from analyzer.api.app import create_app
    from analyzer.runtime import start_runtime
    from analyzer.settings import AnalyzerSettings
    from analyzer.store.client import StoreLockedError

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {
        "host": host, "grpc_port": grpc_port, "http_port": http_port, "clickhouse_url": clickhouse_url,
        "data_dir": data_dir, "retention_days": retention_days,
    }  # fmt: skip
    settings = AnalyzerSettings(**{k: v for k, v in overrides.items() if v is not None})
    try:
        runtime = start_runtime(settings)
    except StoreLockedError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        typer.echo(
            f"chainotel analyzer: store {settings.resolved_clickhouse_url()}, "
            f"OTLP/gRPC on {settings.host}:{runtime.grpc_port}, OTLP/HTTP on {settings.host}:{settings.http_port}",
            err=True,
        )
        uvicorn.run(
            create_app(runtime=runtime), host=settings.host, port=settings.http_port, workers=1,
            log_level=log_level.lower(), access_log=False, limit_concurrency=settings.http_max_concurrency,
        )  # fmt: skip
    finally:
        runtime.close()


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

    from analyzer.ingest.importer import ImportFailed, import_file

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
