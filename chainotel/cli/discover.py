"""``chainotel discover``: proposed chains as a catalog file, from the analyzer's traffic
(``POST /api/v1/discovery/scan``) or from Python source code (``--source DIR``).

    chainotel discover --since 1h > proposals.yaml
    chainotel catalog validate proposals.yaml
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from chainotel.cli.client import AnalyzerClient, AnalyzerError, AnalyzerOpt, relative_to_unix_seconds

SCAN_PATH = "/api/v1/discovery/scan"


def discover(
    since: str = typer.Option("1h", "--since", help="Window start: 15m / 2h / 1d ago, RFC 3339 or Unix seconds."),
    until: str = typer.Option(None, "--until", help="Window end (default now)."),
    min_traces: int = typer.Option(5, "--min-traces", min=1, help="Fewest traces of a proposed chain."),
    min_share: float = typer.Option(0.5, "--min-share", min=0.01, max=1.0,
                                    help="Share of a group's traces a service needs to be expected."),
    source: Path = typer.Option(None, "--source", exists=True, file_okay=False,
                                help="Scan the Python services under DIR (ast) instead of asking the analyzer."),
    analyzer: str = AnalyzerOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the proposals as JSON instead of catalog YAML."),
) -> None:
    """Propose chains for the flows no chain covers; prints a catalog (YAML) of proposals."""
    from rich.console import Console  # noqa: PLC0415
    from rich.markup import escape  # noqa: PLC0415

    from chainotel.discovery.render import proposals_yaml  # noqa: PLC0415

    if source is not None:
        from chainotel.discovery.code import scan_source  # noqa: PLC0415

        client = AnalyzerClient(analyzer, timeout_s=5)
        try:  # IDs the registry holds are not proposed (POST /api/v1/chains would answer 409)
            taken = [c["id"] for c in client.get("/api/v1/chains").get("chains", [])]
            note = f"chain IDs registered at {analyzer} are skipped"
        except AnalyzerError:
            taken, note = [], f"analyzer {analyzer} not reachable: IDs may collide with registered chains"
        finally:
            client.close()
        doc = scan_source(source, taken)
        header = [f"chainotel discover --source {source}: chains proposed from the code "
                  f"({doc['files']} files, {doc['routes']} routes, compose file {doc['compose'] or 'none'})", note]
    else:
        client = AnalyzerClient(analyzer, timeout_s=120)
        body = {"since": relative_to_unix_seconds(since), "until": relative_to_unix_seconds(until),
                "min_traces": min_traces, "min_share": min_share}  # fmt: skip
        try:
            doc = client.send("POST", SCAN_PATH, body={k: v for k, v in body.items() if v is not None})
        except AnalyzerError as exc:
            Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from exc
        finally:
            client.close()
        w = doc["window"]
        header = [f"chainotel discover: chains proposed from traffic {w['since']} .. {w['until']} ({analyzer})",
                  f"{doc['untagged_traces']} of {doc['analysed_traces']} analysed traces carry no chain"]
        for shape in doc.get("shapes", []):
            parts = "; ".join(f"{', '.join(s['services'])} ({s['share']:.0%})" for s in shape["shapes"])
            header.append(f"chain {shape['chain']} has {len(shape['shapes'])} different shapes: {parts}")
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
    else:
        typer.echo(proposals_yaml(doc["proposals"], header), nl=False)


def register(app: typer.Typer) -> None:
    """Add ``discover`` to ``app``."""
    app.command("discover")(discover)
