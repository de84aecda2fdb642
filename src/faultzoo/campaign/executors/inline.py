"""The inline executor: tasks run one after the other in the driver's own process (the default)."""

from __future__ import annotations

from collections.abc import Sequence

from faultzoo.backends.engines import Engine
from faultzoo.campaign.executors.base import Commit, Executor
from faultzoo.campaign.tasks import Task
from faultzoo.campaign.worker import WorkerSetup, evaluate

__all__ = ["InlineExecutor"]


class InlineExecutor(Executor):
    """One worker: the driver itself, with the intra-op threads torch is set to."""

    name = "inline"

    def __init__(self) -> None:
        self.workers = 1
        self._engine: Engine | None = None
        self._setup: WorkerSetup | None = None

    def prepare(self, setup: WorkerSetup, engine: Engine) -> None:
        engine.start()  # the driver's engine is the worker's
        self._engine, self._setup = engine, setup

    def run(self, tasks: Sequence[Task], commit: Commit) -> dict:
        if self._engine is None or self._setup is None or self._setup.inputs is None:
            raise RuntimeError("prepare() before run()")
        labels = self._setup.inputs.golden.labels.cpu().numpy().copy()
        for task in tasks:
            commit(evaluate(self._engine, task, labels, keep_outcomes=self._setup.keep_outcomes))
        return {**self._engine.describe(), **self.describe()}

    def close(self) -> None:
        self._engine = None
