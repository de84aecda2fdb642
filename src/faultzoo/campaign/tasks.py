"""A campaign's pending faults as tasks: faults computed and committed together, of about equal work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from faultzoo.faults import Fault, FaultList
from faultzoo.faults.target_kinds import target_kind_of

__all__ = ["Task", "make_tasks", "plan_tasks"]


@dataclass(frozen=True)
class Task:
    """Faults computed and committed together: (fault id, fault) pairs, mostly of one layer."""

    index: int
    faults: tuple[tuple[int, Fault], ...]
    cost: float  # estimated work, in the engine's units

    @property
    def fault_ids(self) -> tuple[int, ...]:
        return tuple(fid for fid, _ in self.faults)


_TASK_MAX_FAULTS = 128  # a task is committed as a whole: keep what an interruption loses small


def make_tasks(fault_list: FaultList, pending: list[int], cost: Callable[[Fault], float], *, parallel: int,
               size: int | None = None, key: Callable[[Fault], str] | None = None) -> list[Task]:
    """The pending faults as tasks (see :func:`plan_tasks`), each with its estimated cost."""
    groups = [ids for ids in plan_tasks(fault_list, pending, cost, parallel=parallel, size=size, key=key) if ids]
    return [Task(k, tuple((i, fault_list[i]) for i in ids), sum(cost(fault_list[i]) for i in ids))
            for k, ids in enumerate(groups)]


def plan_tasks(fault_list: FaultList, pending: list[int], cost: Callable[[Fault], float], *, parallel: int,
               size: int | None = None, key: Callable[[Fault], str] | None = None) -> list[list[int]]:
    """Group pending faults into tasks: the faults of one group together (``key``: the list's target kind's
    :attr:`~faultzoo.faults.target_kinds.TargetKind.task_key`, whose groups the fast engines stack), tasks
    of about equal estimated work (``cost`` per fault), the heaviest first and the last ones halved, so
    that no worker is left alone with a long task at the end. ``size`` fixes the number of faults per
    task instead."""
    key = key or target_kind_of(fault_list).task_key
    ordered = sorted(pending, key=lambda i: (key(fault_list[i]), i))
    weights = {i: cost(fault_list[i]) for i in ordered}
    if size:
        tasks = [ordered[s: s + size] for s in range(0, len(ordered), size)]
    else:
        # Enough tasks per worker to balance and to commit often.
        target = sum(weights.values()) / max(1, 6 * parallel)
        tasks, load = [[]], 0.0
        for i in ordered:
            if tasks[-1] and (load + weights[i] > target or len(tasks[-1]) >= _TASK_MAX_FAULTS):
                tasks.append([])
                load = 0.0
            tasks[-1].append(i)
            load += weights[i]
    if parallel > 1:
        def load_of(task: list[int]) -> float:
            return sum(weights[i] for i in task)

        tasks.sort(key=load_of, reverse=True)
        # At the end one worker runs alone for about half a task: halve the last tasks to shorten that.
        head, tail = tasks[: -2 * parallel], tasks[-2 * parallel:]
        tasks = head + sorted((half for task in tail for half in _halves(task, weights) if half), key=load_of,
                              reverse=True)
    return tasks


def _halves(task: list[int], weights: dict[int, float]) -> tuple[list[int], list[int]]:
    """Split a task where its cumulative work first reaches half of the total."""
    total, running = sum(weights[i] for i in task), 0.0
    for k, i in enumerate(task):
        running += weights[i]
        if running >= total / 2:
            return task[: k + 1], task[k + 1:]
    return task, []
