"""run_campaign(): model + data -> golden run -> faults -> outcomes -> store -> exports.

Everything that could make a campaign fail is checked before any compute (model id, weights,
fault list against the model, data against the model). Results are committed to the store in
small batches as they are computed; an interrupted campaign is resumed by running the same call
again, and ends with results identical to an uninterrupted run.
"""

from __future__ import annotations

import logging
import os
import random
import platform
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from faultzoo.campaign.engines import ENGINES, make_engine
from faultzoo.campaign.exports import export_all, remove_exports
from faultzoo.campaign.golden import GoldenRun, golden_run
from faultzoo.campaign.outcome import Classified, Outcome
from faultzoo.campaign import parallel as processes  # (a local 'parallel' flag exists below)
from faultzoo.campaign.parallel import WorkerPool, share
from faultzoo.campaign.store import FaultResult, ResultStore
from faultzoo.campaign.summary import CampaignSummary, summarize
from faultzoo.exceptions import DatasetError, FaultzooError
from faultzoo.faults import Fault, FaultList, read_fault_list, validate

_logger = logging.getLogger(__name__)

STORE_NAME = "campaign.sqlite"


@dataclass
class Progress:
    """What a callback sees after each committed batch of faults."""

    faults_done: int
    faults_total: int
    evaluations: int  # (fault x image) outcomes computed in this run
    seconds: float  # wall time of this run so far

    @property
    def evaluations_per_second(self) -> float:
        return self.evaluations / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[Progress], None]


@dataclass
class CampaignResult:
    output: Path
    store_path: Path
    summary: CampaignSummary
    complete: bool
    exports: dict[str, Path] = field(default_factory=dict)
    engine: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)


def numerics_settings(device: torch.device, *, tf32: bool, threads: int | None) -> dict:
    """Apply and record the settings that decide the bits of every logit."""
    if threads:
        torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        or platform.machine(),
        "dtype": "float32",
        "tf32": tf32,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "mkldnn": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
        "threads": torch.get_num_threads(),
    }


@contextmanager
def torch_threads(count: int | None):
    """Use ``count`` intra-op threads inside the block (None: leave as is), then restore the caller's."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def versions() -> dict:
    import numpy
    import torchvision

    from faultzoo import __version__

    return {"faultzoo": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def run_campaign(
    model_id: str,
    faults: str | os.PathLike | FaultList,
    *,
    output: str | os.PathLike,
    weights: str | os.PathLike | None = "default",
    data: str | None = None,
    data_root: str | os.PathLike | None = None,
    limit: int | None = None,
    per_class: int | None = None,
    fault_limit: int | None = None,
    fault_sample: int | None = None,
    fault_seed: int = 0,
    engine: str = "fast",
    workers: int = 1,
    batch_size: int = 128,
    task_size: int | None = None,
    keep_outcomes: bool = False,
    device: str = "cpu",
    tf32: bool = False,
    threads: int | None = None,
    download: bool = False,
    callbacks: Sequence[ProgressCallback] = (),
    engine_options: dict | None = None,
) -> CampaignResult:
    """Run (or resume) a fault-injection campaign and export its results.

    Args:
        model_id: zoo id, e.g. ``"cifar10/resnet20"``.
        faults: a fault list (any format read_fault_list accepts) or a FaultList.
        output: folder for ``campaign.sqlite`` and the exports; an existing store there is resumed.
        weights: "default", None (untrained) or a checkpoint path.
        data: dataset name or ``.npz`` path (default: the model's dataset, test split).
        limit, per_class: image selection (first N / first N per class).
        fault_limit: only the first N faults of the list.
        fault_sample: a seeded random subset of N faults of the list (``fault_seed``), in list order,
            keeping their Injection ids.
        engine: "fast" or "reference" (identical outcomes).
        workers: processes (each with one thread) for the fast engine.
        batch_size: images per forward pass; also the fast engine's packed batch.
        keep_outcomes: store the per-image outcome of every fault.
        device: "cpu" or "cuda[:i]"; tf32: allow TF32 convolutions/matmuls on GPUs (off: strict FP32).
        callbacks: called with a :class:`Progress` after each committed batch.

    Raises:
        FaultzooError subclasses for every bad input, before any compute.
    """
    from faultzoo.data import load_selection
    from faultzoo.zoo import get_model, model_info

    if engine not in ENGINES:
        raise FaultzooError(f"Unknown engine {engine!r}; choose one of {', '.join(ENGINES)} (--engine).")
    if workers < 1 or batch_size < 2:
        raise FaultzooError(f"workers must be >= 1 and batch_size >= 2, got workers={workers}, batch_size={batch_size}.")
    output = Path(output)
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FaultzooError(f"--device {device}: CUDA is not available on this machine (torch {torch.__version__}).")
    if dev.type != "cpu" and workers > 1:
        raise FaultzooError(f"--workers {workers} is for CPUs; on {device} use --workers 1 (one process drives the GPU).")
    numerics = numerics_settings(dev, tf32=tf32, threads=threads)
    parallel = workers > 1 and engine == "fast"
    if parallel:
        # Every computation of such a campaign runs on one thread: the workers, and the parent's golden
        # run and engine preparation (which then leave the other cores to the workers' start-up).
        numerics["threads"] = 1
    info = model_info(model_id)
    model = get_model(model_id, weights=weights, progress=True)
    if isinstance(faults, FaultList):
        fault_list = faults
        validate(fault_list, model)
    else:
        fault_list = read_fault_list(faults, model, model_id=model_id)  # validates against the model
    if fault_limit is not None:
        fault_list = fault_list[:fault_limit]
    if fault_sample is not None and fault_sample < len(fault_list):
        fault_list = subset(fault_list, sorted(random.Random(fault_seed).sample(range(len(fault_list)), fault_sample)))
    selection = load_selection(data or info.dataset, dataset=info.dataset, limit=limit, per_class=per_class,
                               root=data_root, download=download)
    if parallel:
        _check_shared_memory(model, selection.x, workers)
    if int(selection.y.max()) >= info.num_classes:
        raise DatasetError(f"Data {selection.source} has label {int(selection.y.max())}; model {model_id} has "
                           f"{info.num_classes} classes.")
    identity = {
        "model_id": model_id,
        "weights_state_sha256": model.faultzoo.state_sha256,
        "fault_list_sha256": fault_list.fingerprint(),
        "faults": len(fault_list),
        "data_sha256": selection.fingerprint(),
        "images": len(selection.y),
        "batch_size": batch_size,
        "device": dev.type,
        "dtype": "float32",
        "tf32": tf32,
        "torch": torch.__version__,
    }
    provenance = {
        "model": {**info.to_dict(), "provenance": model.faultzoo.to_dict()},
        "fault_list": {"sha256": fault_list.fingerprint(), "source": fault_list.meta.source_file,
                       "meta": fault_list.meta.to_dict(), "faults": len(fault_list)},
        "data": selection.describe(),
        "numerics": numerics,
        "versions": versions(),
        "platform": platform.platform(),
    }
    store_path = output / STORE_NAME
    with ResultStore.open(store_path, identity, provenance) as store, ExitStack() as stack:
        remove_exports(output)  # an export must never describe a different state of the store
        done = store.done_ids()
        pending = [i for i in range(len(fault_list)) if i not in done]
        # Workers start now, so that their start-up overlaps the golden run.
        pool = stack.enter_context(WorkerPool(workers)) if parallel and pending else None
        model = model.to(dev)
        x, y = selection.x.to(dev), selection.y.to(dev)
        stack.enter_context(torch_threads(1 if parallel else None))
        golden = golden_run(model, x, y, batch_size=batch_size)
        engine_info: dict = {"engine": engine, "note": "nothing left to compute in this run"}
        run_provenance = {**provenance, "engine": engine, "workers": workers, "golden_top1": golden.accuracy}
        store.begin_run(run_provenance)
        status = "interrupted"
        try:
            if pending:
                engine_info = _execute(store, model, x, golden, fault_list, pending, engine=engine, pool=pool,
                                       batch_size=batch_size, task_size=task_size, keep_outcomes=keep_outcomes,
                                       callbacks=callbacks, engine_options=engine_options or {})
            status = "complete"
        finally:
            store.end_run(status)
        results = store.results()
    complete = len(results) == len(fault_list)
    summary = summarize(fault_list, results, golden)
    exports = export_all(output, fault_list, results, {**provenance, "identity": identity,
                                                       "golden_top1": golden.accuracy, "engine": engine_info,
                                                       "summary": summary.to_dict()}) if complete else {}
    return CampaignResult(output, store_path, summary, complete, exports, engine_info, provenance)


def subset(fault_list: FaultList, positions: Sequence[int]) -> FaultList:
    """The faults at ``positions``, keeping their Injection ids and extra columns."""
    return FaultList(tuple(fault_list[i] for i in positions), fault_list.meta,
                     tuple(fault_list.id_of(i) for i in positions),
                     {k: tuple(v[i] for i in positions) for k, v in fault_list.extra.items()},
                     tuple(fault_list.lines[i] for i in positions) if fault_list.lines is not None else None)


_TASK_MAX_FAULTS = 128  # a task is committed as a whole: keep what an interruption loses small


def plan_tasks(fault_list: FaultList, pending: list[int], cost: Callable[[Fault], float], *, parallel: int,
               size: int | None = None) -> list[list[int]]:
    """Group pending faults into tasks: a layer's faults together (the fast engine stacks them), tasks of
    about equal estimated work (``cost`` per fault), the heaviest first and the last ones halved, so
    that no worker is left alone with a long task at the end. ``size`` fixes the number of faults per
    task instead."""
    ordered = sorted(pending, key=lambda i: (fault_list[i].param, i))
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
        def load(task: list[int]) -> float:
            return sum(weights[i] for i in task)

        tasks.sort(key=load, reverse=True)
        # At the end one worker runs alone for about half a task: halve the last tasks to shorten that.
        head, tail = tasks[: -2 * parallel], tasks[-2 * parallel:]
        tasks = head + sorted((half for task in tail for half in _halves(task, weights) if half), key=load,
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


def _check_shared_memory(model: torch.nn.Module, x: torch.Tensor, workers: int) -> None:
    """Workers read the model and the images from shared memory: refuse, before any compute, a
    machine whose shared memory cannot hold them (writing past its end is a SIGBUS, not an error)."""
    needed = x.nbytes + sum(p.nbytes for p in model.state_dict().values())
    if not processes.fits_in_shared_memory(needed):
        raise FaultzooError(
            f"--workers {workers} shares the images and the model with its worker processes ({needed >> 20} MB), "
            f"but /dev/shm has only {(processes.shared_memory_free() or 0) >> 20} MB free: use --workers 1, fewer "
            f"images (--limit), or give the machine more shared memory (e.g. docker run --shm-size=2g).")


def _memory_budget(workers: int) -> int:
    """Bytes of golden maps one engine may cache: a quarter of the machine's memory, split between
    workers (each caches its own chunk when the selection does not fit in one)."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = 8 << 30
    return max(1 << 30, physical // (4 * workers))


def _to_result(fid: int, c: Classified, labels: np.ndarray, seconds: float, keep: bool) -> FaultResult:
    counts = np.bincount(c.codes, minlength=3)
    return FaultResult(fid, len(c.codes), int(counts[Outcome.MASKED]), int(counts[Outcome.NON_CRITICAL]),
                       int(counts[Outcome.CRITICAL]), int(c.nonfinite.sum()), int((c.top1 == labels).sum()),
                       seconds, c.codes.copy() if keep else None)


def _execute(store, model, x, golden: GoldenRun, fault_list: FaultList, pending: list[int], *, engine: str,
             pool: WorkerPool | None, batch_size: int, task_size: int | None, keep_outcomes: bool,
             callbacks: Sequence[ProgressCallback], engine_options: dict) -> dict:
    labels = golden.labels.cpu().numpy().copy()
    params = list(dict.fromkeys(fault_list[i].param for i in pending))
    total, already = len(fault_list), len(fault_list) - len(pending)
    if engine == "fast":
        engine_options = {"memory_budget": _memory_budget(pool.workers if pool else 1), **engine_options}
    # With workers, this engine only prepares theirs: start-up checks and golden maps, done once, on as
    # many threads as there are workers (their cores are idle until the first task) and straight
    # into shared memory.
    preparing = {"prep_threads": pool.workers, "share_golden": True} if pool is not None else {}
    eng = make_engine(engine, model, x, golden, batch_size=batch_size, params=params, **engine_options, **preparing)
    tasks = [[(i, fault_list[i]) for i in task]
             for task in plan_tasks(fault_list, pending, eng.cost, parallel=pool.workers if pool else 1,
                                    size=task_size)]
    start = time.perf_counter()
    evaluations = 0

    def commit(outcomes: dict[int, Classified], seconds: float) -> None:
        nonlocal evaluations, already
        per_fault = seconds / max(1, len(outcomes))
        store.record([_to_result(fid, c, labels, per_fault, keep_outcomes) for fid, c in sorted(outcomes.items())])
        evaluations += sum(len(c.codes) for c in outcomes.values())
        already += len(outcomes)
        progress = Progress(already, total, evaluations, time.perf_counter() - start)
        for callback in callbacks:
            callback(progress)

    if pool is None:
        for task in tasks:
            t0 = time.perf_counter()
            commit(eng.run(task), time.perf_counter() - t0)
        return eng.describe()
    # Shared copies: moving a tensor's storage to shared memory in place would leave dangling any
    # numpy view of it (the parent keeps using x and the golden run).
    golden = GoldenRun(share(golden.logits.cpu().clone()), share(golden.labels.cpu().clone()), golden.batch_size)
    payload = {"model": model.cpu().share_memory(), "x": share(x.cpu().clone()), "golden": golden, "engine": engine,
               "batch_size": batch_size, "params": params,
               "options": {**engine_options, "prepared": eng.prepared_state()}}
    del eng
    return pool.run(payload, tasks, commit)
