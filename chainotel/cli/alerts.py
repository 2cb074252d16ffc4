"""``chainotel alerts``: the analyzer's chain alerts, and ``chainotel alerts resolve ID --note TEXT``.

Reads ``GET /api/v1/alerts`` and posts ``POST /api/v1/alerts/{alert_id}/resolve`` of the analyzer at
``--analyzer`` / ``CHAINOTEL_ANALYZER_URL`` (see docs/monitoring.md).
"""

from __future__ import annotations

import json

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from chainotel.cli.client import AnalyzerClient, AnalyzerError, AnalyzerOpt, JsonOpt, console, records_table

ALERTS_PATH = "/api/v1/alerts"
RESOLVE_PATH = "/api/v1/alerts/{alert_id}/resolve"
COLUMNS = ["alert_id", "alertname", "chain", "state", "severity", "service", "value", "fired_at", "resolved_at"]

app = typer.Typer(help="Chain alerts of the analyzer (list; resolve by hand).", invoke_without_command=True)


def _fail(exc: Exception) -> None:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    raise typer.Exit(2) from exc


@app.callback()
def alerts(ctx: typer.Context,
           state: str = typer.Option("all", "--state", help="firing, pending, resolved or all."),
           chain: str = typer.Option(None, "--chain", help="Only this chain, e.g. B3."),
           analyzer: str = AnalyzerOpt, as_json: bool = JsonOpt) -> None:  # fmt: skip
    """List alerts, newest first (default: all states)."""
    if ctx.invoked_subcommand is not None:
        return
    client = AnalyzerClient(analyzer)
    try:
        doc = client.get(ALERTS_PATH, state=state, chain=chain)
    except AnalyzerError as exc:
        _fail(exc)
    finally:
        client.close()
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
    elif not doc["alerts"]:
        console.print(f"no {state if state != 'all' else ''} alerts".replace("  ", " "))
    else:
        rows = [{k: a.get(k) for k in COLUMNS} for a in doc["alerts"]]
        console.print(records_table(f"alerts ({state})", rows, COLUMNS))


@app.command()
def resolve(alert_id: str = typer.Argument(..., help="The alert_id shown by `chainotel alerts`."),
            note: str = typer.Option(..., "--note", help="Why it is resolved (kept with the alert)."),
            analyzer: str = AnalyzerOpt, as_json: bool = JsonOpt) -> None:  # fmt: skip
    """Resolve an alert by hand: it stays resolved until its condition clears and fires anew."""
    url = analyzer.rstrip("/") + RESOLVE_PATH.format(alert_id=alert_id)
    try:
        r = httpx.post(url, json={"note": note}, timeout=10)
    except httpx.TransportError as exc:
        _fail(AnalyzerError(f"cannot reach the chainotel analyzer at {analyzer} ({type(exc).__name__}: {exc})"))
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        _fail(AnalyzerError(f"analyzer answered {r.status_code}: {detail}"))
    doc = r.json()
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
    else:
        console.print(f"alert {doc['alert_id']} ({doc['alertname']}, chain {doc['chain']}) resolved: {escape(doc['note'])}")


def register(root: typer.Typer) -> None:
    """Add the ``alerts`` command group to ``root``."""
    root.add_typer(app, name="alerts")
