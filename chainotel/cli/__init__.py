"""``chainotel`` command line (console script ``chainotel = chainotel.cli:app``).

- ``chainotel catalog validate FILE`` / ``chainotel catalog list`` (:mod:`chainotel.cli.catalog`)
- ``chainotel trace|health|monitor|anomalies|impact|bottlenecks`` — the analyzer client
  (:mod:`chainotel.cli.client`)
- ``chainotel alerts`` / ``chainotel alerts resolve ID --note TEXT`` (:mod:`chainotel.cli.alerts`)
- ``chainotel demo`` (:mod:`chainotel.cli.demo`)
- ``chainotel discover`` (:mod:`chainotel.cli.discover`)

Each sub-module defines its commands; this module only assembles them. Importing it loads typer
and httpx, nothing of the OpenTelemetry SDK, pydantic or the analyzer: commands import what they
need when they run.
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
