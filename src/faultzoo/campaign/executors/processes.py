"""The processes executor (``--workers N``): one worker process per core, one thread each, on this machine.

Workers are not forked from the campaign's process (a fork after torch's thread pools have started
can deadlock) but from a fork server: a fresh interpreter that imports torch and the engines once,
before any thread pool exists, and forks every worker from there (importing torch costs ~4 s of CPU
per process here: paid once instead of once per worker). Where a platform has no fork server,
workers are spawned. They start, from a background thread, as soon as a campaign knows it has
work, so that their start-up overlaps the parent's golden run. Preparing them, the parent starts
its engine once (start-up checks, and the golden maps of the selection filled straight into shared
memory on one Python thread per idle worker core); every task carries that setup by reference
(shared tensors travel as handles, not copies), and a worker builds its engine from it on its first
task. A worker that dies takes the pool with it: a new pool runs the unfinished tasks again.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing import spawn
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

import torch

from faultzoo import _sharedmem as sharedmem
from faultzoo.backends.engines import Engine
from faultzoo.campaign.executors.base import MAX_ATTEMPTS, Commit, Executor
from faultzoo.backends.golden import GoldenRun
from faultzoo.campaign.loading import LoadedCampaign
from faultzoo.campaign.tasks import Task
from faultzoo.campaign.worker import Inputs, ModelFromRecipe, WorkerSetup, run_task
from faultzoo.zoo.recipes import import_user_file, user_modules
from faultzoo.exceptions import FaultzooError, OptionError

__all__ = ["ProcessesExecutor"]

_logger = logging.getLogger(__name__)


class ProcessesExecutor(Executor):
    """``workers`` single-threaded processes on this machine, reading the inputs from shared memory."""

    name = "processes"
    single_threaded = True

    def __init__(self, workers: int):
        if workers < 1:
            raise OptionError("workers", workers, "expected an integer >= 1.")
        self.workers = workers
        self._pool: _Pool | None = None
        self._setup: WorkerSetup | None = None
        self._engine_description: dict = {}
        self._needs_main = False  # whether workers must import the caller's __main__ (see check)
        self.restarts = 0  # pools replaced after a worker died

    def check(self, plan: LoadedCampaign) -> None:
        """Workers read the model and the images from shared memory: refuse, before any compute, a
        machine whose shared memory cannot hold them (writing past its end is a SIGBUS, not an error)."""
        # Worker processes need the caller's __main__ only for a model whose classes are defined there.
        self._needs_main = any(type(m).__module__ == "__main__" for m in plan.model.modules())
        if torch.device(plan.spec.device).type != "cpu":
            raise OptionError("workers", self.workers, f"worker processes are for CPUs; on {plan.spec.device} use one "
                              f"(one process drives the GPU).")
        needed = plan.selection.x.nbytes + sum(p.nbytes for p in plan.model.state_dict().values())
        if not sharedmem.fits_in_shared_memory(needed):
            raise OptionError(
                "workers", self.workers, f"worker processes share the images and the model ({needed >> 20} MB), but "
                f"/dev/shm has only {(sharedmem.shared_memory_free() or 0) >> 20} MB free: use one worker, fewer "
                f"images (limit), or give the machine more shared memory (e.g. docker run --shm-size=2g).")

    def start(self) -> None:
        if self._pool is None:
            self._pool = _Pool(self.workers, needs_main=self._needs_main)

    def prepare(self, setup: WorkerSetup, engine: Engine) -> None:
        inputs = setup.inputs
        if inputs is None:
            raise ValueError("the processes executor shares the driver's inputs: setup.inputs is required")
        _check_importable(inputs.model)
        # The workers' cores are idle until their first task: start the engine on as many threads.
        state = engine.export_state(threads=self.workers)
        # Shared copies: moving a tensor's storage to shared memory in place would leave dangling any
        # numpy view of it (the parent keeps using x and the golden run).
        golden = inputs.golden
        model = inputs.model.cpu().share_memory()
        recipe = setup.recipe.spec.recipe if setup.recipe is not None else None
        if recipe is not None and recipe.kind != "zoo":  # rebuilt from its recipe in each worker
            model = ModelFromRecipe.ship(model, recipe, setup.recipe.identity["weights_state_sha256"])
        shared = Inputs(model, sharedmem.share(inputs.x.cpu().clone()),
                        GoldenRun(sharedmem.share(golden.logits.cpu().clone()),
                                  sharedmem.share(golden.labels.cpu().clone()), golden.batch_size))
        options = {**setup.options, **({"prepared": state} if state is not None else {})}
        self._setup = replace(setup, inputs=shared, recipe=None, options=options, threads=1)

    def run(self, tasks: Sequence[Task], commit: Commit) -> dict:
        if self._setup is None:
            raise RuntimeError("prepare() before run()")
        self.start()
        queue, attempts = deque(tasks), Counter()
        while True:
            broken, lost = self._run_on_pool(queue, commit)
            if not broken:
                return {**self._engine_description, **self.describe()}
            self._restart(lost, attempts)
            queue.extendleft(reversed(lost))

    def _run_on_pool(self, queue: deque[Task], commit: Commit) -> tuple[bool, list[Task]]:
        """Run queued tasks on the current pool until none is left or the pool broke (a worker died);
        returns whether it broke and the tasks it lost."""
        pool = self._pool.ready()
        running: dict[Future, Task] = {}
        broken, lost = False, []
        try:
            while (queue and not broken) or running:
                while queue and not broken and len(running) < 2 * self.workers:
                    try:
                        running[pool.submit(run_task, self._setup, queue[0])] = queue[0]
                        queue.popleft()
                    except BrokenProcessPool:
                        broken = True
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    task = running.pop(future)
                    try:
                        output = future.result()
                    except BrokenProcessPool:  # every unfinished task of a broken pool ends so
                        broken = True
                        lost.append(task)
                        continue
                    self._engine_description = output.engine
                    commit(output)
        except BaseException:
            for future in running:
                future.cancel()
            if not isinstance(sys.exc_info()[1], Exception):  # Ctrl-C, SystemExit: stop now, not after the tasks
                self._pool.abort()
            raise
        return broken, lost

    def _restart(self, lost: list[Task], attempts: Counter) -> None:
        """Replace a broken pool, unless the same task (or the start-up itself) keeps killing workers."""
        for key in [task.index for task in lost] or ["start-up"]:
            attempts[key] += 1
            if attempts[key] >= MAX_ATTEMPTS:
                what = f"task {key}" if key != "start-up" else "their start-up"
                raise FaultzooError(
                    f"Worker processes died {attempts[key]} times while running {what}: too little memory? "
                    f"Results so far are saved; re-run with fewer --workers or fewer images (--limit) to resume.")
        self.restarts += 1
        _logger.warning("a worker process died: running %d unfinished task(s) again on a new pool", len(lost))
        self._pool.close()
        self._pool = _Pool(self.workers, needs_main=self._needs_main)

    def worker_pids(self) -> list[int]:
        """Process ids of the current pool's workers that have started (for monitoring)."""
        return self._pool.pids() if self._pool is not None else []

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def describe(self) -> dict:
        return {**super().describe(), "restarts": self.restarts}


class _Pool:
    """A ProcessPoolExecutor whose workers all start now, from a background thread."""

    def __init__(self, workers: int, *, needs_main: bool = False):
        self.workers, self.needs_main = workers, needs_main
        # Workers import the factory files this process imported by path, under the same module names,
        # so that a model object of one of their classes can be unpickled there.
        self.executor = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_start_worker,
                                            initargs=(user_modules(),))
        # The executor starts a process per submitted call while none is idle: start them all now, from
        # a thread, since starting a process waits for the fork server's imports.
        self._warm_up: list = []
        self._starter = threading.Thread(target=self._start_all, daemon=True)
        self._starter.start()

    def _start_all(self) -> None:
        try:
            with _caller_main_left_out(not self.needs_main):  # the processes start during these submits
                self._warm_up.extend(self.executor.submit(_warm_up) for _ in range(self.workers))
        except BaseException as exc:  # surfaced by ready()
            self._warm_up.append(exc)

    def ready(self) -> ProcessPoolExecutor:
        """The executor, once every worker has started (raises what kept one from starting)."""
        self._starter.join()
        for started in self._warm_up:
            if isinstance(started, BaseException):
                raise started
            try:
                started.result()
            except BrokenProcessPool:
                break  # a worker died already: the caller's first task finds out and restarts the pool
        return self.executor

    def pids(self) -> list[int]:
        return [f.result() for f in list(self._warm_up) if isinstance(f, Future) and f.done() and not f.exception()]

    def abort(self) -> None:
        """Terminate the workers at once (their unfinished tasks are lost; stored results are not)."""
        for process in list((getattr(self.executor, "_processes", None) or {}).values()):
            process.terminate()

    def close(self) -> None:
        self._starter.join()
        self.executor.shutdown(wait=True, cancel_futures=True)


_PRELOAD = ["torch", "faultzoo.campaign.worker", "faultzoo.backends.torch.fast"]


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)  # no effect once this process's fork server runs
        return context
    return multiprocessing.get_context("spawn")


@contextmanager
def _caller_main_left_out(leave_out: bool) -> Iterator[None]:
    """While worker processes start: tell them nothing of the caller's ``__main__``.

    A process that multiprocessing spawns (or forks from its fork server) first imports the parent's
    main module again, from its file: a script without an ``if __name__ == "__main__":`` guard would then
    start the whole campaign again in every worker, and ``python -`` or a notebook has no file to import.
    Workers need only faultzoo and the campaign's setup, unless the model's classes are defined in
    ``__main__`` (``leave_out`` False: then the script is imported, and must guard its campaign)."""
    if not leave_out:
        yield
        return
    original = spawn.get_preparation_data

    def without_main(name: str) -> dict:
        data = original(name)
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
        return data

    with _PREPARATION_LOCK:
        spawn.get_preparation_data = without_main
        try:
            yield
        finally:
            spawn.get_preparation_data = original


_PREPARATION_LOCK = threading.Lock()


def _check_importable(model: torch.nn.Module) -> None:
    """A model object travels to the workers by reference to its classes: refuse, before any work, classes
    that a worker process cannot import (defined in an interactive session)."""
    main = sys.modules.get("__main__")
    if getattr(main, "__file__", None):
        return
    interactive = sorted({type(m).__qualname__ for m in model.modules() if type(m).__module__ == "__main__"})
    if interactive:
        raise FaultzooError(f"The model's classes {', '.join(interactive)} are defined in an interactive session, "
                            "which worker processes cannot import: define them in a file (and pass the model, or "
                            "'file.py:function'), or run with workers=1.")


# ---------------------------------------------------------------- in the worker processes
def _start_worker(files: dict[str, str]) -> None:
    torch.set_num_threads(1)  # one process per core beats threads on small convolutions (measured)
    for name, path in files.items():
        import_user_file(name, path)
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
    from faultzoo.campaign import worker  # noqa: F401  (import torch.fx and the engines now)

    return os.getpid()
