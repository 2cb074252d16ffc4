"""The ``chainotel`` typer application (see :mod:`chainotel.cli`).

Each sub-module defines its commands; this module only assembles them. Importing it loads typer,
httpx and the settings' pydantic model, nothing of the OpenTelemetry SDK or the analyzer:
commands import what they need when they run.
"""

import typer

from chainotel.cli import alerts, client, demo, discover
from chainotel.cli.catalog import app as catalog_app

app = typer.Typer(name="chainotel", help="chainotel: chain tracing for OpenTelemetry.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
client.register(app)
alerts.register(app)
discover.register(app)
demo.register(app)

__all__ = ["app"]
