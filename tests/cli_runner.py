"""The one way tests run the ``faultzoo`` command in-process: its exit status and what it printed."""

from __future__ import annotations

from faultzoo.cli import main


def run_faultzoo(capsys, *args) -> tuple[int, str, str]:
    """Run ``faultzoo ARGS`` through its entry point (errors and exit codes as a user sees them):
    (exit status, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def flat(text: str) -> str:
    """Text without whitespace: rich wraps long lines and paths at the terminal width."""
    return "".join(text.split())
