"""``chainotel catalog …``: validate a catalog file, list the catalog in use."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Chain catalog: validate a YAML file, list the catalog in use.", no_args_is_help=True)


@app.command("validate")
def validate(file: Path = typer.Argument(..., help="Catalog YAML file.")) -> None:
    """Validate FILE; print every error (file, chain, field) and exit 1 if there is one."""
    from rich.console import Console  # noqa: PLC0415

    from chainotel.catalog import CatalogError, load_catalog  # noqa: PLC0415

    out, err = Console(), Console(stderr=True)
    try:
        catalog = load_catalog(file)
    except CatalogError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}", highlight=False, soft_wrap=True)
        err.print(f"{file}: invalid ({len(exc.problems)} error(s))", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    for suggestion in catalog.suggestions():
        out.print(f"[yellow]suggestion[/yellow] {suggestion}", highlight=False, soft_wrap=True)
    out.print(f"{file}: valid, {len(catalog)} chains", highlight=False, soft_wrap=True)


@app.command("list")
def list_chains(
    file: Path | None = typer.Option(
        None, "--file", "-f", help="Catalog file (default: $CHAINOTEL_CATALOG, else built-in)."
    ),
) -> None:
    """Print the catalog in use: CHAINOTEL_CATALOG if set, else the built-in one."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from chainotel.catalog import CatalogError, default_catalog, load_catalog  # noqa: PLC0415
    from chainotel.settings import DistroSettings, SettingsError  # noqa: PLC0415

    try:
        file = file or DistroSettings.from_env().catalog
    except SettingsError as exc:
        Console(stderr=True).print(str(exc), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    try:
        catalog = load_catalog(file) if file and str(file).strip() else default_catalog()
    except CatalogError as exc:
        Console(stderr=True).print(str(exc), highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    table = Table(title=f"chain catalog: {catalog.source} ({len(catalog)} chains)")
    for column in ("id", "category", "name", "SLA ms", "enabled", "services", "match"):
        table.add_column(column)
    for chain in catalog.chains:
        rules = "; ".join(
            " ".join(f"{k}={v}" for k, v in rule.model_dump(exclude_none=True).items()) for rule in chain.match
        )
        table.add_row(
            chain.id, chain.category.value, chain.name, f"{chain.max_duration_ms:g}",
            "yes" if chain.enabled else "no", ", ".join(chain.expected_services), rules,
        )
    Console(width=200).print(table)
