"""``chainotel`` command line (console script ``chainotel = chainotel.cli:main``).

- ``chainotel catalog validate FILE`` / ``chainotel catalog list`` (:mod:`chainotel.cli.catalog`)
- ``chainotel trace|health|monitor|anomalies|impact|bottlenecks`` — the analyzer client
  (:mod:`chainotel.cli.client`)
- ``chainotel alerts`` / ``chainotel alerts resolve ID --note TEXT`` (:mod:`chainotel.cli.alerts`)
- ``chainotel demo`` (:mod:`chainotel.cli.demo`)
- ``chainotel discover`` (:mod:`chainotel.cli.discover`)

The commands need the ``cli`` extra (typer, rich, httpx), which a service running the distro
does not: ``pip install "chainotel[cli]"``. Importing this package imports nothing;
:func:`main` says which extra to install when it is missing. The commands are assembled in
:mod:`chainotel.cli.app`.
"""

from __future__ import annotations

import sys

__all__ = ["CLI_MODULES", "main"]

CLI_MODULES = ("typer", "rich", "httpx", "click")
"""Third-party modules of the ``cli`` extra (``click`` comes with typer)."""


def main() -> None:
    """Run the ``chainotel`` command; exit 1 with ``pip install "chainotel[cli]"`` advice when the
    ``cli`` extra is not installed."""
    try:
        from chainotel.cli.app import app  # noqa: PLC0415
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in CLI_MODULES:
            raise
        print(
            f"chainotel: the command line needs the 'cli' extra ({exc.name} is not installed): "
            'pip install "chainotel[cli]"',
            file=sys.stderr,
        )
        sys.exit(1)
    app()
