"""Environment variables that change how faultzoo talks (not what it computes)."""

from __future__ import annotations

import os

VERBOSE = "FAULTZOO_VERBOSE"  # set (the CLI's --verbose): start-up messages of TensorFlow and Dask are shown


def verbose() -> bool:
    return bool(os.environ.get(VERBOSE))
