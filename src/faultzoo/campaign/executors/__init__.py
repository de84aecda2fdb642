"""Executors: where a campaign's tasks run (in-process, local worker processes, a Dask cluster).

All of them give identical results; choose with :func:`make_executor` (``--workers`` / ``--dask``).
"""

from __future__ import annotations

from faultzoo.campaign.executors.base import Commit, Executor
from faultzoo.campaign.executors.dask import DaskExecutor, local_cluster, parse_dask_target
from faultzoo.campaign.executors.inline import InlineExecutor
from faultzoo.campaign.executors.processes import ProcessesExecutor
from faultzoo.exceptions import OptionError

__all__ = ["Commit", "DaskExecutor", "Executor", "InlineExecutor", "ProcessesExecutor", "local_cluster",
           "make_executor", "parse_dask_target"]


def make_executor(*, workers: int = 1, dask: str | None = None) -> Executor:
    """The executor for ``--workers N`` (1: inline, more: local processes) or ``--dask TARGET``.

    Raises:
        FaultzooError: both given, or a bad value (before anything starts).
    """
    if workers < 1:
        raise OptionError("workers", workers, "expected an integer >= 1.")
    if dask is not None:
        if workers > 1:
            raise OptionError("dask", dask, f"choose workers or dask, not both: the Dask cluster decides the workers "
                              f"(e.g. dask='local:{workers}').", usage=True)
        return DaskExecutor(dask)
    return ProcessesExecutor(workers) if workers > 1 else InlineExecutor()
