"""The executor interface: where a campaign's tasks run. Executors never change a result.

Lifecycle, driven by the runner::

    executor.check(plan)          # refuse, before any compute, what this executor cannot run
    with executor:                # close() always ends workers, clusters and connections
        executor.start()          # begin starting workers (their start-up overlaps the golden run)
        executor.prepare(setup, engine)   # explicit worker preparation: what each worker needs
        executor.run(tasks, commit)       # results stream back to commit(), in the driver

``commit`` receives each finished task's result rows; it is the only place results are written
(the driver alone writes the store), and it may receive a task again after a worker died: it
must skip faults it has already stored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from faultzoo.backends.engines import Engine
from faultzoo.campaign.loading import LoadedCampaign
from faultzoo.campaign.tasks import Task
from faultzoo.campaign.worker import TaskOutput, WorkerSetup

__all__ = ["Commit", "Executor", "MAX_ATTEMPTS"]

Commit = Callable[[TaskOutput], None]

MAX_ATTEMPTS = 4  # runs of one task on workers that died before it finished, before the campaign gives up


class Executor(ABC):
    """Runs tasks on ``workers`` workers and streams their results back to the driver."""

    name: str = "executor"
    workers: int = 1
    single_threaded: bool = False  # each worker computes on one intra-op thread (so does the driver's golden run)

    def check(self, plan: LoadedCampaign) -> None:
        """Refuse, before any compute, a campaign this executor cannot run here (raise FaultzooError)."""

    def start(self) -> None:
        """Begin starting the workers; may return before they are up."""

    @abstractmethod
    def prepare(self, setup: WorkerSetup, engine: Engine) -> None:
        """Make ready what every worker needs to build its engine: ``setup`` holds the driver's own inputs,
        ``engine`` is the driver's engine for them (an executor may start it, share what it computed
        with the workers, or leave the workers to load everything themselves)."""

    @abstractmethod
    def run(self, tasks: Sequence[Task], commit: Commit) -> dict:
        """Run every task; call ``commit`` in this thread with each finished task's output as it arrives.
        Returns the engine's description (as a worker reported it) plus the executor's."""

    def close(self) -> None:
        """Stop every worker this executor started (idempotent)."""

    def describe(self) -> dict:
        return {"executor": self.name, "workers": self.workers}

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
