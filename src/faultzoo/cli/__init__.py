"""The ``faultzoo`` command: wires one module per command; one exit point maps errors to one line."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from faultzoo.exceptions import FaultzooError, OptionError
from faultzoo import _env

app = typer.Typer(
    name="faultzoo",
    help="Fault-injection reliability studies of DNNs: model zoo, fault lists, campaigns, analysis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags without placeholders, readable when piped
)


def _version(value: bool) -> None:
    if value:
        from faultzoo import __version__

        print(f"faultzoo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Show progress logs, and the start-up messages of "
                                          "TensorFlow and Dask (hidden by default).")] = False,
) -> None:
    """Fault-injection reliability studies of DNNs: model zoo, fault lists, campaigns, analysis."""
    if verbose:
        os.environ[_env.VERBOSE] = "1"  # read by the modules that silence TensorFlow's start-up output
        _log_level(logging.INFO)


# Each module defines register(app) and adds its own command(s).
COMMAND_MODULES = ("models", "eval", "faultlist", "campaign", "report", "plan", "compare")

for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(app)

err_console = Console(stderr=True, highlight=False)


def print_error(message: str) -> None:
    """One error line on stderr, printed as plain text (no Rich markup: '[...]' in a message stays)."""
    err_console.print(Text("error: ", style="red") + Text(message), soft_wrap=True)


def flag_of(parameter: str) -> str:
    """How the command line names a library parameter: the campaign option's declared flag, the MODEL
    argument, or the parameter's name as a flag (``per_class`` -> ``--per-class``)."""
    from faultzoo.campaign.options import flag_of as declared_flag

    if parameter == "model":
        return "MODEL"
    return declared_flag(parameter) or "--" + parameter.replace("_", "-")


def _log_level(level: int | str) -> None:
    """Log records at ``level`` and above, whatever level a library sets on its own loggers (Dask's are at
    INFO: its ~30 start-up lines per local cluster are shown with --verbose only)."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        handler.setLevel(level)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; a FaultzooError becomes one red line and exit status 1 (2 for a wrong
    option value)."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    _log_level(os.environ.get("FAULTZOO_LOGLEVEL", "WARNING"))
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
        if isinstance(exc, OptionError):
            print_error(exc.message(flag_of(exc.parameter)))
            if exc.usage:  # a wrong value whatever the inputs: a usage error, as the command line's own
                sys.exit(2)
        else:
            print_error(str(exc))
        err_console.print("(set FAULTZOO_DEBUG=1 for a traceback)", style="dim", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted: results so far are saved; re-run the same command to resume", markup=False)
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
            err_console.print("interrupted: results so far are saved; re-run the same command to resume", markup=False)
            sys.exit(130)
        raise
