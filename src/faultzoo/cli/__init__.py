"""The ``faultzoo`` command: wires one module per command; one exit point maps errors to one line."""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer
from rich.console import Console

from faultzoo.exceptions import FaultzooError

app = typer.Typer(
    name="faultzoo",
    help="Fault-injection reliability studies of DNNs: model zoo, fault lists, campaigns.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines register(app) and adds its own command(s).
COMMAND_MODULES = ("models", "eval", "faultlist", "campaign")

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as exc:  # a command still being written must not break the others
        if exc.name != f"{__name__}.{_name}":
            raise
        continue
    _module.register(app)

err_console = Console(stderr=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; a FaultzooError becomes one red line and exit status 1."""
    logging.basicConfig(level=os.environ.get("FAULTZOO_LOGLEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    try:
        code = app(args=argv, standalone_mode=False)
        # In non-standalone mode typer *returns* exit codes, Ctrl-C included (130).
        if code == 130:
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            sys.exit(code)
    except FaultzooError as exc:
        if os.environ.get("FAULTZOO_DEBUG"):
            raise
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        err_console.print("(set FAULTZOO_DEBUG=1 for a traceback)", style="dim")
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted: results so far are saved; re-run the same command to resume")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        # Usage errors arrive here in non-standalone mode. typer bundles its own copy of click,
        # so recognise them by interface rather than by class.
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        if type(exc).__name__ == "Abort":
            err_console.print("interrupted: results so far are saved; re-run the same command to resume")
            sys.exit(130)
        raise
