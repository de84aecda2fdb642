"""The Dask executor (``--dask``): tasks on the workers of a Dask cluster, from one machine to a SLURM allocation.

``--dask local:N`` starts a LocalCluster on this machine (loopback only, N worker processes of one
thread each) and closes it at the end; ``--dask tcp://HOST:PORT`` or ``--dask scheduler.json``
uses a scheduler that is already running (e.g. one started by dask-jobqueue, see docs/cluster.md).
Each worker process builds the campaign's engine once (keyed by the campaign's identity): it loads
the model and the images itself, checks them against the campaign's identity, and reproduces the
driver's golden logits bit for bit before it computes a fault. Workers of a local cluster instead
map the driver's golden logits and golden maps from shared-memory files (computed while the cluster
starts) after reproducing their first golden batch bit for bit, as local worker processes do.
Finished tasks stream back as they complete; the driver alone writes the store. A task whose worker
dies is run again on another (Dask's own rescheduling, up to ``distributed.scheduler.allowed-failures``
times).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import torch

from faultzoo import _sharedmem as sharedmem
from faultzoo.backends import Engine, get_backend
from faultzoo.campaign.executors.base import MAX_ATTEMPTS, Commit, Executor
from faultzoo.campaign.loading import LoadedCampaign
from faultzoo.campaign.tasks import Task
from faultzoo.campaign.worker import WorkerSetup, prepare, run_task
from faultzoo.exceptions import FaultzooError, OptionError

__all__ = ["DaskExecutor", "DaskTarget", "local_cluster", "parse_dask_target"]

_logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 30.0  # seconds to reach a scheduler, and for a local cluster's workers to come up
CLOSE_TIMEOUT = 30.0


@dataclass(frozen=True)
class DaskTarget:
    """Where ``--dask`` points: a local cluster of ``workers`` processes, or an existing scheduler."""

    text: str
    workers: int | None = None  # local:N
    address: str | None = None  # tcp://HOST:PORT
    scheduler_file: Path | None = None

    @property
    def local(self) -> bool:
        return self.workers is not None


def parse_dask_target(text: str) -> DaskTarget:
    """``local:N``, ``tcp://HOST:PORT`` (or another Dask protocol) or the path of a scheduler file (JSON).

    Raises:
        OptionError: none of these (the message shows each form).
    """
    forms = "local:N (a cluster of N processes here), tcp://HOST:PORT or the path of a scheduler file (JSON)"
    if text.startswith("local:"):
        count = text.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise OptionError("dask", text, "N of local:N must be a whole number >= 1, e.g. local:2.", usage=True)
        return DaskTarget(text, workers=int(count))
    if "://" in text:
        parts = urlsplit(text)
        if not parts.hostname or parts.port is None:
            raise OptionError("dask", text, "a scheduler address needs a host and a port, e.g. "
                              "tcp://10.0.0.5:8786.", usage=True)
        return DaskTarget(text, address=text)
    path = Path(text).expanduser()
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise OptionError("dask", text, f"scheduler file {path} does not exist. Start the scheduler first "
                              f"(dask scheduler --scheduler-file {path}, or a SLURMCluster; see docs/cluster.md).",
                              usage=True)
        return DaskTarget(text, scheduler_file=path.resolve())
    raise OptionError("dask", text, f"expected {forms}.", usage=True)


@contextmanager
def local_cluster(workers: int, **kwargs) -> Iterator:
    """A LocalCluster on loopback only (``workers`` processes of one thread each, no dashboard), closed at
    the end of the block. Its worker processes, restarted ones included, fork from a fork server that
    imported torch and faultzoo once (where the platform has one), instead of importing them each."""
    import dask
    from distributed import LocalCluster

    options = dict(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                   dashboard_address=None, silence_logs=logging.ERROR,
                   preload=["faultzoo.campaign.executors.dask_worker_setup"],  # Ctrl-C is the driver's
                   # No dashboard; the scheduler's HTTP server (health checks) on a free loopback port.
                   scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    environ = dict(os.environ)  # the nanny writes its workers' variables into this process's environment
    settings = {"distributed.worker.multiprocessing-method": _start_method(),
                # glibc's adaptive thresholds instead of trimming on every free (3.5x faster engine here)
                "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    try:
        with dask.config.set(settings):
            cluster = LocalCluster(**{**options, **kwargs})
            try:
                yield cluster
            finally:
                cluster.close(timeout=CLOSE_TIMEOUT)
    finally:
        os.environ.clear()
        os.environ.update(environ)


_WORKER_PRELOAD = ["distributed", "torch", "faultzoo.data", "faultzoo.zoo", "faultzoo.campaign.worker"]


def _start_method() -> str:
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    import dask
    from distributed.utils import get_mp_context

    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        get_mp_context()  # distributed sets its preload list once per process: add ours after it
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_WORKER_PRELOAD)  # no effect once this process's fork server runs
    return "forkserver"


class DaskExecutor(Executor):
    """Tasks on the workers of a Dask cluster (started here for ``local:N``, else an existing one)."""

    name = "dask"
    single_threaded = True

    def __init__(self, target: str | DaskTarget, *, timeout: float = CONNECT_TIMEOUT):
        self.target = target if isinstance(target, DaskTarget) else parse_dask_target(target)
        self.workers = self.target.workers or 1
        self.timeout = timeout
        self._cluster = None
        self._client = None
        self._resources = ExitStack()
        self._files: sharedmem.FileShare | None = None  # the driver's golden run and maps, for local workers
        self._starter: threading.Thread | None = None
        self._start_error: BaseException | None = None
        self._setup: WorkerSetup | None = None
        self._warm_ups: list = []
        self._engine_description: dict = {}
        self._run_id = uuid.uuid4().hex[:12]
        self.resubmitted = 0

    # ---------------------------------------------------------------- lifecycle
    def check(self, plan: LoadedCampaign) -> None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise OptionError("dask", self.target.text, "needs the dist extra: pip install 'faultzoo[dist]' (dask, distributed, "
                                "dask-jobqueue).") from None
        if not self.target.local:
            _check_reachable(self._scheduler_address())

    def _scheduler_address(self) -> str:
        if self.target.address:
            return self.target.address
        try:
            return json.loads(self.target.scheduler_file.read_text())["address"]
        except (OSError, ValueError, KeyError) as exc:
            raise OptionError("dask", self.target.text, "cannot read a scheduler address from "
                                f"{self.target.scheduler_file} ({exc}). Pass the file the scheduler wrote "
                                f"(--scheduler-file), or its tcp:// address.") from None

    def start(self) -> None:
        """Start the local cluster (in the background) or connect to the scheduler."""
        if self._starter is None:
            self._starter = threading.Thread(target=self._connect, name="faultzoo-dask-start", daemon=True)
            self._starter.start()

    def _connect(self) -> None:
        from distributed import Client

        try:
            if self.target.local:
                self._cluster = self._resources.enter_context(local_cluster(self.target.workers))
                self._client = Client(self._cluster, timeout=self.timeout)
            else:
                self._client = Client(self._scheduler_address(), timeout=self.timeout)
                self._client.wait_for_workers(1, timeout=self.timeout)
                self.workers = max(1, len(self._client.scheduler_info(n_workers=-1)["workers"]))
        except BaseException as exc:  # surfaced by _ready()
            self._start_error = exc

    def _ready(self):
        self.start()
        self._starter.join()
        if self._start_error is not None:
            where = self.target.text
            raise OptionError("dask", where, "could not start or reach the Dask cluster within "
                                f"{self.timeout:.0f} s ({type(self._start_error).__name__}: {self._start_error}). "
                                f"Check the scheduler and its workers (see docs/cluster.md).") from self._start_error
        return self._client

    def prepare(self, setup: WorkerSetup, engine: Engine) -> None:
        """Workers load the inputs themselves (``setup.recipe``); each one starts doing so now. Those of a
        local cluster map the driver's golden run and golden maps instead of recomputing them."""
        if setup.recipe is None:
            raise ValueError("the Dask executor needs setup.recipe: its workers load the inputs themselves")
        recipe, options = setup.recipe, setup.options
        shared = self._share(setup, engine) if self.target.local else None  # while the cluster starts
        if shared is not None:
            recipe = replace(recipe, golden_file=shared["logits"])
            options = {**options, "prepared": shared["state"]}
        # Each worker derives the engine's defaults from its own memory limit, not from the driver's machine.
        self._setup = replace(setup, inputs=None, defaults=None, threads=1, recipe=recipe, options=options)
        client = self._ready()
        for k, address in enumerate(sorted(client.scheduler_info(n_workers=-1)["workers"])):
            # Before any task (highest priority), on each worker; elsewhere if that one dies first.
            key = f"faultzoo-prepare-{self._run_id}-{k}"
            self._warm_ups.append(client.submit(prepare, self._setup, workers=[address], allow_other_workers=True,
                                                pure=False, priority=1 << 30, key=key))

    def _share(self, setup: WorkerSetup, engine: Engine) -> dict | None:
        """The driver's golden logits and its engine's exported state (golden maps, start-up checks) in
        shared-memory files, for workers on this machine (None where there is nothing to share or no room).
        A worker adopts them only after reproducing the first golden batch bit for bit, as the processes
        executor's workers do; the files are removed when the executor closes."""
        if setup.inputs is None or not get_backend(setup.framework).shares_golden_state():
            return None
        state = engine.export_state(threads=self.workers)
        if state is None or state.get("golden") is None:
            return None
        tensors = [setup.inputs.golden.logits, *(v for v in state["golden"].values() if isinstance(v, torch.Tensor))]
        if not sharedmem.fits_in_shared_memory(sum(t.nbytes for t in tensors)):
            _logger.info("golden maps do not fit in shared memory: every Dask worker computes its own")
            return None
        share = self._files = sharedmem.FileShare()
        return {"logits": share.put(setup.inputs.golden.logits), "state": share.put_all(state)}

    def run(self, tasks: Sequence[Task], commit: Commit) -> dict:
        from distributed import as_completed

        if self._setup is None:
            raise RuntimeError("prepare() before run()")
        client = self._ready()
        pending = {self._submit(client, task, len(tasks) - k): task for k, task in enumerate(tasks)}
        attempts = dict.fromkeys((task.index for task in tasks), 1)
        stream = as_completed(list(pending) + self._warm_ups)
        for future in stream:
            task = pending.pop(future, None)
            try:
                output = future.result(timeout=None)
            except Exception as exc:  # noqa: BLE001 (classified below)
                retry = self._failed(future, task, exc, attempts)
                if retry is not None:
                    again = self._submit(client, retry, 0, attempt=attempts[retry.index])
                    pending[again] = retry
                    stream.add(again)
                continue
            finally:
                future.release()
            if task is not None:
                self._engine_description = output.engine
                commit(output)
        return {**self._engine_description, **self.describe()}

    def _submit(self, client, task: Task, priority: int, *, attempt: int = 1):
        # Keys unique to this run: a key the scheduler still holds from another run would return that run's result.
        key = f"faultzoo-task-{self._run_id}-{task.index}" + (f"-again{attempt}" if attempt > 1 else "")
        return client.submit(run_task, self._setup, task, key=key, pure=False, priority=priority)

    def _failed(self, future, task: Task | None, exc: Exception, attempts: dict) -> Task | None:
        """A failed future: raise, or return the task to submit again (its result was lost with a worker)."""
        from distributed import KilledWorker

        if isinstance(exc, FaultzooError):
            raise exc  # the worker refused (other data, other golden logits): the same everywhere
        if isinstance(exc, KilledWorker):
            raise FaultzooError(
                f"Dask workers died every time they ran {'task ' + str(task.index) if task else 'a preparation'} "
                f"({exc}): too little memory per worker? Results so far are saved; re-run to resume.") from exc
        if not _lost_with_a_worker(exc):
            raise exc
        if task is None:
            return None  # a preparation lost with its worker: a worker also prepares on its first task
        if attempts[task.index] >= MAX_ATTEMPTS:
            raise FaultzooError(f"Task {task.index} was lost with its worker {attempts[task.index]} times ({exc}). "
                                f"Results so far are saved; check the cluster's workers and re-run to resume.")
        attempts[task.index] += 1
        self.resubmitted += 1
        _logger.warning("task %d: its result was lost with a worker (%s); running it again", task.index, exc)
        return task

    def close(self) -> None:
        if self._starter is not None:
            self._starter.join()
        try:
            if self._client is not None:
                self._client.close(timeout=CLOSE_TIMEOUT)
        finally:
            self._client = self._cluster = None
            try:
                self._resources.close()  # the local cluster, if this executor started one
            finally:
                if self._files is not None:
                    self._files.close()
                    self._files = None

    def describe(self) -> dict:
        return {**super().describe(), "dask": self.target.text, "resubmitted": self.resubmitted}


def _lost_with_a_worker(exc: Exception) -> bool:
    """Errors that mean a result vanished with its worker, not that the task failed."""
    from concurrent.futures import CancelledError

    from distributed.comm.core import CommClosedError

    return isinstance(exc, (CancelledError, CommClosedError, OSError))


def _check_reachable(address: str) -> None:
    """Refuse an address nothing listens on, before any compute (a typo, or a scheduler not started)."""
    parts = urlsplit(address)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=5):
            pass
    except OSError as exc:
        raise OptionError("dask", address, f"no Dask scheduler answers there ({exc}). Start it first (dask "
                            f"scheduler, or a SLURMCluster; see docs/cluster.md), or check the address.") from None
