"""``python -m faultzoo``: the same as the ``faultzoo`` command."""

from faultzoo.cli import main

main()
