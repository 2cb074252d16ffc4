"""``chainotel`` command line: ``chainotel catalog validate FILE``, ``chainotel catalog list``.

Sub-apps live in their own modules and are added here; nothing heavy is imported until a
command runs.
"""

import typer

from chainotel.cli.catalog import app as catalog_app

app = typer.Typer(name="chainotel", help="chainotel: chain tracing for OpenTelemetry.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")

__all__ = ["app"]
