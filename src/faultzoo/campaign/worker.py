"""The worker side of every executor: build a campaign's engine once per process, then run tasks on it.

A :class:`WorkerSetup` says how to build the engine. Its inputs are either live tensors (the driver's
own, or shared-memory handles for local worker processes) or a :class:`Recipe` with which a process
elsewhere (a Dask worker) loads the model and the images itself, checks them against the campaign's
identity, and reproduces the driver's golden run bit for bit before it computes anything.
A worker returns finished :class:`~faultzoo.campaign.store.FaultResult` rows; only the driver writes
the store.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from faultzoo import _sharedmem as sharedmem
from faultzoo._sharedmem import SharedFile
from faultzoo.backends import Engine, GoldenRun, engine_entry, get_backend, make_engine
from faultzoo.campaign.loading import load_images, load_model
from faultzoo.campaign.spec import CampaignSpec
from faultzoo.campaign.store import FaultResult
from faultzoo.campaign.tasks import Task
from faultzoo.exceptions import CampaignMismatchError, ExactnessError
from faultzoo.faults.bits import same_bits
from faultzoo.inference import batch_slices
from faultzoo.outcome import Outcome
from faultzoo.backends.classify import Classified
from faultzoo.zoo import state_sha256

__all__ = ["Inputs", "ModelFromRecipe", "Recipe", "TaskOutput", "WorkerSetup", "evaluate", "logits_sha256", "memory_sharers", "prepare",
           "run_task", "worker_name"]


@dataclass(frozen=True)
class Inputs:
    """The model, images and golden run themselves."""

    model: nn.Module
    x: torch.Tensor
    golden: GoldenRun
    # what the backend's engine takes besides the model, images and golden run (the driver's; a worker
    # process builds its own where this is empty)
    engine_inputs: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ModelFromRecipe:
    """A model outside the zoo on its way to a worker process: rebuilt there from its recipe (the factory
    imported again, the torchvision builder called), given the driver's state (tensors in shared memory),
    and checked to hash to the driver's state before any task. Classes of a factory file are not
    importable by name in another process, so the module object itself cannot travel."""

    recipe: object  # faultzoo.zoo.recipes.ModelRecipe
    state: dict = field(repr=False)
    state_sha256: str

    @classmethod
    def ship(cls, model: nn.Module, recipe, state_hash: str) -> ModelFromRecipe:
        return cls(recipe, model.state_dict(), state_hash)

    def build(self) -> nn.Module:
        from faultzoo.zoo.recipes import build_model

        model = build_model(replace(self.recipe, weights=None))  # the architecture; the state comes next
        try:
            model.load_state_dict(self.state, strict=True)
        except RuntimeError as exc:
            raise CampaignMismatchError(f"worker {worker_name()}: {self.recipe.label} built here does not take the "
                                        f"driver's state: {str(exc).splitlines()[0]}") from None
        if state_sha256(model) != self.state_sha256:
            raise CampaignMismatchError(f"worker {worker_name()} rebuilt {self.recipe.label} with another state than "
                                        "the driver's (buffers set by the factory differ?): outcomes would not be "
                                        "comparable.")
        return model.eval()


@dataclass(frozen=True)
class Recipe:
    """How a process elsewhere gets the campaign's inputs: the spec (paths made absolute), the identity
    they must match, and the driver's golden logits (as a hash) that it must reproduce."""

    spec: CampaignSpec
    identity: dict
    golden_sha256: str
    state: dict | None = field(default=None, repr=False)  # weights no file holds (an untrained model)
    golden_file: SharedFile | None = None  # the driver's golden logits, mapped by workers on its machine

    def load(self) -> Inputs:
        spec, where, backend = self.spec, f"worker {worker_name()}", self.spec.backend
        numerics = backend.worker_numerics(self.identity)

        if self.state is not None:  # weights no file holds: the architecture, then the driver's state
            model = load_model(replace(spec, weights=None))
            model.load_state_dict(self.state)
        else:
            model = load_model(spec)

        if state_sha256(model) != self.identity["weights_state_sha256"]:
            raise CampaignMismatchError(
                f"{where} loaded other weights for {spec.model_id} (weights={spec.weights!r}) than the driver: "
                f"put the checkpoint and FAULTZOO_HOME (the weights cache) on storage every node sees.")
        selection = load_images(spec)
        if selection.fingerprint() != self.identity["data_sha256"]:
            raise CampaignMismatchError(
                f"{where} loaded other images than the driver (data={spec.data!r}, root={spec.data_root!r}): "
                f"put the data on storage every node sees, at the same path.")
        device = torch.device(spec.device)
        model, x, y = model.to(device), selection.x.to(device), selection.y.to(device)
        runnable = backend.runnable(model, selection)
        golden = self._driver_golden(runnable, model, x, y) or \
            backend.golden_run(runnable, model, x, y, batch_size=spec.batch_size)
        if logits_sha256(golden.logits) != self.golden_sha256:
            raise ExactnessError(
                f"{where} computes other fault-free logits than the driver ({numerics}): outcomes would not be "
                f"comparable. Run every worker with the driver's versions on the same kind of CPU.")
        return Inputs(model, x, golden, runnable.engine_inputs)

    def _driver_golden(self, runnable, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> GoldenRun | None:
        """The driver's golden run, mapped from its shared-memory file, once this process has reproduced its
        first batch bit for bit (the check local worker processes make); None where the file is not here."""
        logits = self.golden_file.open() if self.golden_file is not None else None
        if logits is None or logits.device != x.device or len(logits) != len(x):
            return None
        first = batch_slices(len(x), self.spec.batch_size)[0]
        mine = self.spec.backend.golden_run(runnable, model, x[first], y[first], batch_size=self.spec.batch_size)
        if not same_bits(mine.logits, logits[first]):
            return None  # the full golden run decides (and refuses the worker if it differs)
        return GoldenRun(logits, y.to(torch.int64), self.spec.batch_size)


@dataclass(frozen=True)
class WorkerSetup:
    """Everything a worker needs to build the engine of one campaign (``token`` names it)."""

    token: str
    framework: str  # the backend whose engine runs
    engine: str  # the engine's name in that backend
    batch_size: int
    params: tuple[str, ...]
    options: dict  # engine options set by the caller, and a twin's ``prepared`` state where one was exported
    defaults: dict | None  # the engine's default options as the driver derived them; None: from this worker's memory
    keep_outcomes: bool
    threads: int | None  # intra-op threads in the worker (None: leave the process's setting)
    identity: dict = field(default_factory=dict, repr=False)  # the campaign's (its numerics apply in the worker)
    inputs: Inputs | None = field(default=None, repr=False)  # live tensors (this machine)
    recipe: Recipe | None = field(default=None, repr=False)  # or how to load them (any machine)

    def load(self) -> Inputs:
        if self.inputs is not None:
            return self.inputs
        if self.recipe is None:
            raise ValueError("a WorkerSetup needs inputs or a recipe")
        return self.recipe.load()


@dataclass
class TaskOutput:
    """A finished task: one result row per fault, when it started (epoch seconds) and how long it computed,
    the engine's description, where it ran."""

    task: int
    results: list[FaultResult]
    started: float
    seconds: float
    engine: dict
    worker: str


def logits_sha256(logits: torch.Tensor) -> str:
    """sha256 of the exact bytes of a logits tensor."""
    return hashlib.sha256(logits.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def memory_sharers(workers: int = 1) -> int:
    """How many engines share this machine's memory: ``workers``, or inside a Dask worker as many as its
    memory limit fits into the machine's memory (its engine then sizes its caches to that limit)."""
    try:
        from distributed import get_worker

        limit = get_worker().memory_manager.memory_limit
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if limit:
            return max(1, round(physical / limit))
    except (ImportError, ValueError, AttributeError, OSError):  # not in a Dask worker, or no limit known
        pass
    return max(1, workers)


# ---------------------------------------------------------------------------- in the worker process
_ENGINES: dict[str, tuple[Engine, np.ndarray]] = {}  # token -> (engine, labels); one campaign at a time
_LOCK = threading.Lock()  # a Dask worker with several threads prepares once


def _engine_for(setup: WorkerSetup) -> tuple[Engine, np.ndarray]:
    with _LOCK:
        if setup.token not in _ENGINES:
            _ENGINES.clear()  # another campaign's engine: free it
            _undo_malloc_trimming()
            if setup.threads:
                torch.set_num_threads(setup.threads)
            if setup.identity:
                get_backend(setup.framework).worker_numerics(setup.identity)
            inputs = setup.load()
            if isinstance(inputs.model, ModelFromRecipe):
                inputs = replace(inputs, model=inputs.model.build())
            defaults = setup.defaults if setup.defaults is not None else \
                engine_entry(setup.framework, setup.engine).default_options(memory_sharers())
            options = {**defaults, **_opened(setup.options), **inputs.engine_inputs}
            engine = make_engine(setup.framework, setup.engine, inputs.model, inputs.x, inputs.golden,
                                 batch_size=setup.batch_size, params=setup.params, **options)
            engine.start()
            _ENGINES[setup.token] = (engine, inputs.golden.labels.cpu().numpy().copy())
        return _ENGINES[setup.token]


def _opened(options: dict) -> dict:
    """Engine options with a twin's exported state mapped from shared-memory files where it came so; without
    it where they are not on this machine (the engine then checks and computes everything itself)."""
    if "prepared" not in options:
        return options
    prepared = sharedmem.open_shared(options["prepared"])
    return {**options, "prepared": prepared} if prepared is not None else \
        {k: v for k, v in options.items() if k != "prepared"}


def _undo_malloc_trimming() -> None:
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_ set (64 KiB): glibc then hands memory back to
    the system on every free of a large tensor and takes page faults on the next allocation (the fast
    engine ran 3.5x slower so here). Give glibc back thresholds like those it adapts to by itself."""
    if not os.environ.get("MALLOC_TRIM_THRESHOLD_") or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's own ceiling for its adaptive threshold
    libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)


def prepare(setup: WorkerSetup) -> str:
    """Build this process's engine for the campaign now (model, images, golden maps, checks)."""
    _engine_for(setup)
    return worker_name()


def run_task(setup: WorkerSetup, task: Task) -> TaskOutput:
    """Run one task in this process (building the campaign's engine on first use)."""
    engine, labels = _engine_for(setup)
    return evaluate(engine, task, labels, keep_outcomes=setup.keep_outcomes)


def evaluate(engine: Engine, task: Task, labels: np.ndarray, *, keep_outcomes: bool) -> TaskOutput:
    """Run one task on an engine and turn its outcomes into result rows."""
    started, start = time.time(), time.perf_counter()
    outcomes = engine.run(task.faults)
    seconds = time.perf_counter() - start
    per_fault = seconds / max(1, len(outcomes))
    results = [_to_result(fid, outcomes[fid], labels, per_fault, keep_outcomes) for fid in sorted(outcomes)]
    return TaskOutput(task.index, results, started, seconds, engine.describe(), worker_name())


def _to_result(fid: int, c: Classified, labels: np.ndarray, seconds: float, keep: bool) -> FaultResult:
    counts = np.bincount(c.codes, minlength=3)
    return FaultResult(fid, len(c.codes), int(counts[Outcome.MASKED]), int(counts[Outcome.NON_CRITICAL]),
                       int(counts[Outcome.CRITICAL]), int(c.nonfinite.sum()), int((c.top1 == labels).sum()),
                       seconds, c.codes.copy() if keep else None)
