"""Worker processes for campaigns: one process per core, one thread each.

Workers are not forked from the campaign's process (a fork after torch's thread pools have started
can deadlock) but from a fork server: a fresh interpreter that imports torch and the engines once,
before any thread pool exists, and forks every worker from there (importing torch costs ~4 s of CPU
per process here: paid once instead of once per worker). Where a platform has no fork server,
workers are spawned. They start, from a background thread, as soon as a campaign knows it has
work, so that their start-up overlaps the parent's golden run. The parent then prepares the engine
once (start-up checks, and the golden maps of the selection in shared memory); every task carries
that payload by reference (shared tensors travel as handles, not copies), and a worker builds its
engine from it on its first task.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
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
        self._pool = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_start_worker)
        # The executor starts a process per submitted call while none is idle: start them all now, from
        # a thread, since starting a process waits for the fork server's imports.
        self._warm_up: list = []
        self._starter = threading.Thread(target=self._start_all, daemon=True)
        self._starter.start()

    def _start_all(self) -> None:
        try:
            self._warm_up.extend(self._pool.submit(_warm_up) for _ in range(self.workers))
        except BaseException as exc:  # surfaced by run()
            self._warm_up.append(exc)

    def run(self, payload: dict, tasks: list[Task], commit: Commit) -> dict:
        """Run every task on the workers; ``commit`` receives each task's outcomes as it finishes.

        ``payload`` holds what make_engine needs (model, x, golden, engine name, batch_size, params,
        options, prepared); its tensors should already be in shared memory.
        """
        payload = {**payload, "token": uuid.uuid4().hex}
        self._starter.join()
        for started in self._warm_up:
            if isinstance(started, BaseException):
                raise started
            started.result()  # surfaces a worker that could not start
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
        self._starter.join()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def share(tensor: torch.Tensor) -> torch.Tensor:
    """Move a CPU tensor's storage to shared memory (in place), so workers map it instead of copying it.

    Any numpy array viewing the old storage is left dangling: share fresh tensors only."""
    return tensor.share_memory_() if tensor.device.type == "cpu" else tensor


def shared_memory_free() -> int | None:
    """Bytes free where torch puts shared tensors on Linux (/dev/shm), None where unknown. Containers
    often give it 64 MB: writing past its end kills the process with SIGBUS instead of an error."""
    try:
        stats = os.statvfs("/dev/shm")
    except (OSError, AttributeError):
        return None
    return stats.f_bavail * stats.f_frsize


def fits_in_shared_memory(nbytes: int) -> bool:
    """Whether ``nbytes`` more fit in shared memory, with a 10 % margin (True where unknown)."""
    free = shared_memory_free()
    return free is None or nbytes <= 0.9 * free


_PRELOAD = ["torch", "faultzoo.campaign.engines.fast"]


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)  # no effect once this process's fork server runs
        return context
    return multiprocessing.get_context("spawn")


# ---------------------------------------------------------------- in the worker processes
_STATE: dict = {}


def _start_worker() -> None:
    torch.set_num_threads(1)  # one process per core beats threads on small convolutions (measured)
    # A parent killed with SIGKILL cannot stop its workers, and they would wait for tasks forever
    # (each holds the task queue's write end, so it never reads end-of-file): leave when orphaned.
    # Not by watching os.getppid(): a fork server's children have the fork server as parent, and it
    # stays alive as long as they do (they hold its "alive" pipe). multiprocessing gives every child a
    # sentinel that becomes ready when the process that started it is gone.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_when_gone, args=(parent.sentinel,), daemon=True).start()


def _exit_when_gone(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
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
