"""The ``tickguard`` command.

Each sub-command lives in its own module and imports its heavy dependencies inside the
command body, so ``tickguard --help`` stays fast and a broken optional path cannot stop
the others from starting.
"""

from __future__ import annotations

import logging

import typer

from tickguard import __version__

app = typer.Typer(
    name="tickguard",
    help="Keep a Korean market-data feed whole, and prove it every day.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tickguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    log_level: str = typer.Option("INFO", "--log-level", envvar="TICKGUARD_LOG_LEVEL"),
) -> None:
    """tickguard."""
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Console-script entry point."""
    app()


# Sub-commands register themselves on ``app`` when imported (one line each).
from tickguard.cli import automations as _automations  # noqa: E402, F401
from tickguard.cli import backfill as _backfill  # noqa: E402, F401
from tickguard.cli import bench as _bench  # noqa: E402, F401
from tickguard.cli import check as _check  # noqa: E402, F401
from tickguard.cli import collect as _collect  # noqa: E402, F401
from tickguard.cli import db as _db  # noqa: E402, F401
from tickguard.cli import decode as _decode  # noqa: E402, F401
from tickguard.cli import drill as _drill  # noqa: E402, F401
from tickguard.cli import persist as _persist  # noqa: E402, F401
from tickguard.cli import preflight as _preflight  # noqa: E402, F401
from tickguard.cli import replay as _replay  # noqa: E402, F401
from tickguard.cli import report as _report  # noqa: E402, F401
from tickguard.cli import sim as _sim  # noqa: E402, F401
from tickguard.cli import stack as _stack  # noqa: E402, F401
from tickguard.cli import up as _up  # noqa: E402, F401
