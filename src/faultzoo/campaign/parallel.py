"""Worker processes for campaigns: one process per core, one thread each.

Workers are spawned, not forked (a fork after torch's thread pools have started can deadlock), as
soon as a campaign knows it has work, so that their interpreter and torch start-up overlaps the
parent's golden run. The parent then prepares the engine once (start-up checks, and the golden
maps of the selection in shared memory); every task carries that payload by reference (shared
tensors travel as handles, not copies), and a worker builds its engine from it on its first task.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import torch

from faultzoo.campaign.outcome import Classified
from faultzoo.faults import Fault

Task = Sequence[tuple[int, Fault]]
Commit = Callable[[dict[int, Classified], float], None]


class WorkerPool:
    """A pool of single-threaded worker processes, started at construction."""

    def __init__(self, workers: int):
        self.workers = workers
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker)
        # The executor starts a process per submitted call while none is idle: start them all now.
        self._warm_up = [self._pool.submit(_warm_up) for _ in range(workers)]

    def run(self, payload: dict, tasks: list[Task], commit: Commit) -> dict:
        """Run every task on the workers; ``commit`` receives each task's outcomes as it finishes.

        ``payload`` holds what make_engine needs (model, x, golden, engine name, batch_size, params,
        options, prepared); its tensors should already be in shared memory.
        """
        payload = {**payload, "token": uuid.uuid4().hex}
        for future in self._warm_up:
            future.result()  # surfaces a worker that could not start
        queue, running, description = list(tasks), {}, {}
        try:
            while queue or running:
                while queue and len(running) < 2 * self.workers:
                    task = queue.pop(0)
                    running[self._pool.submit(_run_task, payload, task)] = task
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    running.pop(future)
                    outcomes, seconds, description = future.result()
                    commit(outcomes, seconds)
        except BaseException:
            for future in running:
                future.cancel()
            raise
        return {**description, "workers": self.workers}

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def share(tensor: torch.Tensor) -> torch.Tensor:
    """Move a CPU tensor's storage to shared memory (in place), so workers map it instead of copying it.

    Any numpy array viewing the old storage is left dangling: share fresh tensors only."""
    return tensor.share_memory_() if tensor.device.type == "cpu" else tensor


# ---------------------------------------------------------------- in the worker processes
_STATE: dict = {}


def _start_worker() -> None:
    torch.set_num_threads(1)  # one process per core beats threads on small convolutions (measured)
    # A parent killed with SIGKILL cannot stop its workers, and they would wait for tasks forever
    # (each holds the task queue's write end, so it never reads end-of-file): leave when orphaned.
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _warm_up() -> int:
    from faultzoo.campaign.engines import fast  # noqa: F401  (import torch.fx and the engines now)

    return os.getpid()


def _run_task(payload: dict, task: Task) -> tuple[dict[int, Classified], float, dict]:
    from faultzoo.campaign.engines import make_engine

    if _STATE.get("token") != payload["token"]:
        _STATE.clear()
        _STATE["engine"] = make_engine(payload["engine"], payload["model"], payload["x"], payload["golden"],
                                       batch_size=payload["batch_size"], params=payload["params"],
                                       **payload["options"])
        _STATE["token"] = payload["token"]
    engine = _STATE["engine"]
    start = time.perf_counter()
    outcomes = engine.run(task)
    return outcomes, time.perf_counter() - start, engine.describe()
