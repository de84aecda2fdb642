"""Preloaded into the worker processes of a local Dask cluster (``--dask local:N``): the terminal's Ctrl-C
reaches every process of its group, but only the driver answers it (it stops the cluster and keeps every
stored result), so a worker ignores SIGINT instead of printing its own KeyboardInterrupt traceback."""

from __future__ import annotations

import signal


def dask_setup(worker) -> None:  # called by Dask in the worker process's main thread, as it starts
    signal.signal(signal.SIGINT, signal.SIG_IGN)
