"""run_campaign(): validate -> plan -> golden run -> execute tasks with an executor -> store -> summary -> exports.

Everything that could make a campaign fail is checked before any compute (model id, weights,
fault list against the model, data against the model, what the executor needs). Results are
committed to the store task by task as they arrive, by this process only; an interrupted campaign
is resumed by running the same call again, with any executor, and ends with results identical to
an uninterrupted run.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from faultzoo._files import ensure_writable_dir
from faultzoo.campaign.engines import engine_entry, make_engine
from faultzoo.campaign.executors import Executor, make_executor
from faultzoo.campaign.exports import export_all, remove_exports
from faultzoo.campaign.golden import GoldenRun, golden_run
from faultzoo.campaign.numerics import numerics_settings, torch_threads, versions
from faultzoo.campaign.plan import CampaignPlan, build_plan, make_tasks, plan_tasks, subset
from faultzoo.campaign.spec import CampaignSpec, identity_token
from faultzoo.campaign.store import ResultStore
from faultzoo.campaign.summary import CampaignSummary, summarize
from faultzoo.campaign.worker import Inputs, Recipe, TaskOutput, WorkerSetup, logits_sha256
from faultzoo.exceptions import FaultzooError, OutputError
from faultzoo.faults import FaultList
from faultzoo.inference import batch_slices

__all__ = ["STORE_NAME", "CampaignResult", "Progress", "ProgressCallback", "execute_campaign", "plan_tasks",
           "run_campaign", "subset", "versions"]

_logger = logging.getLogger(__name__)

STORE_NAME = "campaign.sqlite"


@dataclass
class Progress:
    """What a callback sees after each committed task."""

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


def run_campaign(
    model: str | torch.nn.Module,
    faults: str | os.PathLike | FaultList,
    *,
    output: str | os.PathLike,
    weights: str | os.PathLike | None = "default",
    data: object = None,
    transform: str | None = None,
    num_classes: int | None = None,
    model_name: str | None = None,
    data_root: str | os.PathLike | None = None,
    limit: int | None = None,
    per_class: int | None = None,
    fault_limit: int | None = None,
    fault_sample: int | None = None,
    fault_seed: int = 0,
    engine: str = "fast",
    workers: int = 1,
    dask: str | None = None,
    batch_size: int = 128,
    task_size: int | None = None,
    keep_outcomes: bool = False,
    device: str = "cpu",
    tf32: bool = False,
    threads: int | None = None,
    download: bool = False,
    callbacks: Sequence[ProgressCallback] = (),
    engine_options: dict | None = None,
    executor: Executor | None = None,
    framework: str = "torch",
) -> CampaignResult:
    """Run (or resume) a fault-injection campaign and export its results.

    Args:
        model: a zoo id (``"cifar10/resnet20"``), ``"torchvision:NAME"`` (a torchvision classification
            builder), ``"package.module:function"`` or ``"path/to/file.py:function"`` (a function of yours
            returning the module), or a ``torch.nn.Module`` object (put in eval mode).
        faults: a fault list (any format read_fault_list accepts) or a FaultList.
        output: folder for ``campaign.sqlite`` and the exports; an existing store there is resumed.
        weights: "default" (the zoo's checkpoint; untrained for torchvision and factories), None (untrained)
            or a checkpoint path (loaded strictly: every key and shape must fit).
        data: a dataset name or ``.npz`` path (default: a zoo model's dataset, test split),
            ``"imagefolder:PATH"`` (with ``transform``), a :class:`~faultzoo.data.DataSelection`, a pair of
            tensors ``(x, y)`` (N×C×H×W float images as the model takes them, integer labels), or a
            ``torch.utils.data.Dataset`` of transformed ``(image, label)`` pairs (read once, in index order).
        transform: for ``imagefolder:`` data: a torchvision weights member (``ResNet18_Weights.IMAGENET1K_V1``)
            or steps such as ``"resize=72,crop=64,mean=0.5:0.5:0.5,std=0.25:0.25:0.25"``.
        num_classes: the classifier size of a torchvision builder (default: the builder's).
        model_name: the name a model object is recorded under (default: its class name).
        limit, per_class: image selection (first N / first N per class).
        fault_limit: only the first N faults of the list.
        fault_sample: a seeded random subset of N faults of the list (``fault_seed``), in list order,
            keeping their Injection ids.
        engine: "fast" or "reference" (identical outcomes), or another registered engine.
        framework: "torch" injects into the PyTorch model; "keras" into its Keras 3 twin (same weights, same
            fault list: each fault lands on the twin's copy of the same tensor element), with the Keras
            engines of the same names; needs the ``tf`` extra.
        workers: 1 runs in this process; N > 1 in N local processes of one thread each.
        dask: run on a Dask cluster instead: ``"local:N"`` (N processes here), ``"tcp://HOST:PORT"`` or
            a scheduler file; every worker must see the weights and data at the same paths.
        batch_size: images per forward pass; also the fast engine's packed batch.
        task_size: faults per task (default: planned from their estimated cost).
        keep_outcomes: store the per-image outcome of every fault.
        device: "cpu" or "cuda[:i]"; tf32: allow TF32 convolutions/matmuls on GPUs (off: strict FP32).
        threads: torch intra-op threads of this process (default: leave as set).
        callbacks: called with a :class:`Progress` after each committed task.
        engine_options: engine-specific options (see the engine's class).
        executor: an executor object instead of ``workers``/``dask``.

    Raises:
        FaultzooError subclasses for every bad input, before any compute.
    """
    model_fields = _model_fields(model, model_name)
    data_fields = _data_fields(data, limit=limit, per_class=per_class)
    if "selection" in data_fields:
        limit = per_class = None  # applied while the data was read
    spec = CampaignSpec(faults=faults, **model_fields, weights=weights, num_classes=num_classes,
                        fault_limit=fault_limit, fault_sample=fault_sample, fault_seed=fault_seed, **data_fields,
                        transform=transform, data_root=data_root, limit=limit, per_class=per_class,
                        download=download, framework=framework, device=device, tf32=tf32, threads=threads,
                        batch_size=batch_size, engine=engine, engine_options=tuple(sorted((engine_options or {}).items())),
                        task_size=task_size, keep_outcomes=keep_outcomes)
    engine_entry(spec.engine_name)  # an unknown engine is refused before the executor is even chosen
    return execute_campaign(spec, output=output, executor=executor or make_executor(workers=workers, dask=dask),
                            callbacks=callbacks)


def _model_fields(model: object, name: str | None) -> dict:
    if isinstance(model, torch.nn.Module):
        return {"model_id": name or type(model).__name__, "module": model}
    if isinstance(model, (str, os.PathLike)):
        if name is not None:
            raise FaultzooError("model_name names a model object; a zoo id or recipe names itself.")
        return {"model_id": str(model)}
    raise FaultzooError(f"model must be a zoo id, a recipe string (torchvision:NAME, module:function, file.py:function) "
                        f"or a torch.nn.Module; found a {type(model).__name__}.")


def _data_fields(data: object, *, limit: int | None, per_class: int | None) -> dict:
    """``data`` as the spec holds it: a name or path as text, anything else as a DataSelection read now."""
    from faultzoo.data import DataSelection
    from faultzoo.data.custom import selection_from_dataset, selection_from_tensors

    if data is None or isinstance(data, (str, os.PathLike)):
        return {"data": None if data is None else str(data)}
    if isinstance(data, DataSelection):
        if limit is not None or per_class is not None:
            raise FaultzooError("limit/per_class choose images of a named dataset; select the images of a "
                                "DataSelection before passing it.")
        return {"selection": data}
    if per_class is not None:
        raise FaultzooError("per_class chooses images of a named dataset; pass the images you want as data.")
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        return {"selection": selection_from_tensors(x[:limit], y[:limit])}
    if hasattr(data, "__getitem__"):
        return {"selection": _read_dataset(data, limit, selection_from_dataset)}
    raise FaultzooError(f"data must be a dataset name, an .npz path, imagefolder:PATH, a DataSelection, a pair of "
                        f"tensors (x, y) or a torch Dataset; found a {type(data).__name__}.")


def _read_dataset(dataset, limit: int | None, read):
    """A Dataset read into memory once, with a progress bar on the terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("reading images"), BarColumn(), MofNCompleteColumn(), console=Console(stderr=True),
                  transient=True) as bar:
        task = bar.add_task("read", total=None)
        return read(dataset, limit=limit, progress=lambda done, total: bar.update(task, completed=done, total=total))


def execute_campaign(spec: CampaignSpec, *, output: str | os.PathLike, executor: Executor,
                     callbacks: Sequence[ProgressCallback] = ()) -> CampaignResult:
    """Run (or resume) the campaign ``spec`` with ``executor``; see :func:`run_campaign`."""
    engine_entry(spec.engine_name)
    output = Path(output)
    finished = _finished_read_only(output)
    if finished is not None:
        return finished
    ensure_writable_dir(output, what="output folder (-o)", create=False)  # created once all is valid
    try:
        device = torch.device(spec.device)
    except RuntimeError:
        raise FaultzooError(f"--device {spec.device!r} is not a device torch knows; use cpu or cuda[:i].") from None
    if device.type not in ("cpu", "cuda"):
        raise FaultzooError(f"--device {spec.device!r}: campaigns run on cpu or cuda[:i].")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FaultzooError(f"--device {spec.device}: CUDA is not available on this machine "
                            f"(torch {torch.__version__}).")
    numerics = numerics_settings(device, tf32=spec.tf32, threads=spec.threads)
    if executor.single_threaded:
        # Every computation of such a campaign runs on one thread: the workers, and the driver's golden
        # run and engine preparation (which then leave the other cores to the workers' start-up).
        numerics["threads"] = 1
    if spec.framework == "keras":
        numerics["keras"] = _keras_numerics(spec)
    plan = build_plan(spec, numerics=numerics)
    executor.check(plan)
    store_path = output / STORE_NAME
    store = ResultStore.open(store_path, plan.identity, plan.provenance, fault_list=plan.fault_list)
    with store, executor, torch_threads(1 if executor.single_threaded else None):
        _check_outcomes_kept(store, spec)
        remove_exports(output)  # an export must never describe a different state of the store
        done = store.done_ids()
        pending = [i for i in range(len(plan.fault_list)) if i not in done]
        if pending:
            executor.start()  # workers start now, so that their start-up overlaps the golden run
        model = plan.model.to(device)
        x, y = plan.selection.x.to(device), plan.selection.y.to(device)
        golden_started = time.perf_counter()
        if plan.twin is not None:
            from faultzoo.keras.campaign import keras_golden_run

            golden = keras_golden_run(plan.twin, x, y, batch_size=spec.batch_size)
        else:
            golden = _golden(model, x, y, spec.batch_size, threads=_idle_cores(executor, device))
        golden_seconds = time.perf_counter() - golden_started
        engine_info: dict = {"engine": spec.engine_name, "note": "nothing left to compute in this run"}
        store.begin_run({**plan.provenance, "engine": spec.engine_name, "executor": executor.describe(),
                         "workers": executor.workers, "golden_top1": golden.accuracy})
        for callback in callbacks if pending else ():  # inputs valid, golden run done: work starts
            callback(Progress(len(done), len(plan.fault_list), 0, 0.0))
        status = "interrupted"
        try:
            if pending:
                engine_info = _execute(store, plan, Inputs(model, x, golden, plan.twin), pending, executor, callbacks)
                engine_info["timing"]["golden_s"] = golden_seconds
            status = "complete"
        finally:
            store.end_run(status)
        results = store.results()
    complete = len(results) == len(plan.fault_list)
    summary = summarize(plan.fault_list, results, golden)
    exports = export_all(output, plan.fault_list, results, model=plan.model, provenance={
        **plan.provenance, "identity": plan.identity, "golden_top1": golden.accuracy, "engine": engine_info,
        "summary": summary.to_dict()}) if complete else {}
    return CampaignResult(output, store_path, summary, complete, exports, engine_info, plan.provenance)


def _keras_numerics(spec: CampaignSpec) -> dict:
    """Pin TensorFlow's intra-op threads for a Keras campaign and record the twin's numerics.

    TensorFlow's convolutions round differently on another number of threads, so the count is part of
    the campaign's identity; it is the same (one, unless ``threads`` says otherwise) whichever executor
    runs the campaign, so that a campaign can be resumed with any of them. Use workers for more cores."""
    from faultzoo.keras._tf import require_keras
    from faultzoo.keras.campaign import keras_numerics, pin_keras_threads

    require_keras()  # a missing TensorFlow is reported before anything is loaded
    pin_keras_threads(spec.threads or 1)
    return keras_numerics()


def _idle_cores(executor: Executor, device: torch.device) -> int:
    """Python threads for the driver's golden run: the workers' cores are idle until their first task."""
    if not executor.single_threaded or device.type != "cpu":
        return 1
    return max(1, min(executor.workers, os.cpu_count() or 1))


def _golden(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, threads: int) -> GoldenRun:
    """The golden run. On ``threads`` > 1 Python threads its batches run side by side, each op on this
    process's single intra-op thread: the very batches and bits of a one-thread run (which the workers
    check: a worker reproduces the driver's golden logits before it computes anything)."""
    if threads <= 1:
        return golden_run(model, x, y, batch_size=batch_size)

    def forward(batch: slice) -> torch.Tensor:
        with torch.inference_mode():  # thread-local: entered in each thread
            return model(x[batch])

    with ThreadPoolExecutor(threads) as pool:
        logits = torch.cat(list(pool.map(forward, batch_slices(len(x), batch_size))))
    return GoldenRun(logits.contiguous(), y.to(torch.int64), batch_size)


def _check_outcomes_kept(store: ResultStore, spec: CampaignSpec) -> None:
    """--keep-outcomes added on a resume cannot give per-image outcomes of faults already stored without
    them: refuse, with the reason, rather than export a matrix with holes."""
    if not spec.keep_outcomes:
        return
    without = sum(r.outcomes is None for r in store.results())
    if without:
        raise FaultzooError(f"--keep-outcomes: {without} faults of {store.path} were stored without per-image "
                            "outcomes by an earlier run; resume without --keep-outcomes, or start a new campaign "
                            "(another -o folder) with it.")


def _finished_read_only(output: Path) -> CampaignResult | None:
    """A complete campaign in a folder this process cannot write: its stored results, nothing run.

    (Its exports were written when it finished.) None when the folder can be written or holds no
    complete campaign: the normal path then opens the store for writing and reports any problem."""
    store_path = output / STORE_NAME
    if not store_path.is_file() or _writable(output):
        return None
    with ResultStore.open_readonly(store_path) as store:
        identity, meta, results = store.identity, store.meta, store.results()
    if len(results) != identity.get("faults"):
        raise OutputError(f"{output} holds an unfinished campaign ({len(results)} of {identity.get('faults')} faults) "
                          "and cannot be written: make the folder writable to resume it.")
    import json

    from faultzoo.campaign.exports import PROVENANCE

    provenance = json.loads((output / PROVENANCE).read_text()) if (output / PROVENANCE).is_file() else dict(meta)
    summary = CampaignSummary.from_dict(provenance["summary"]) if "summary" in provenance else None
    exports = {name: output / file for name, file in (("upstream", "results_upstream.csv"), ("results", "results.csv"),
                                                      ("provenance", PROVENANCE)) if (output / file).is_file()}
    return CampaignResult(output, store_path, summary, True, exports, provenance.get("engine", {}), dict(meta))


def _writable(folder: Path) -> bool:
    try:
        ensure_writable_dir(folder, what="output folder (-o)", create=False)
    except OutputError:
        return False
    return True


def _execute(store: ResultStore, plan: CampaignPlan, inputs: Inputs, pending: list[int], executor: Executor,
             callbacks: Sequence[ProgressCallback]) -> dict:
    """Engine -> worker preparation -> tasks -> results streamed into the store."""
    spec, fault_list = plan.spec, plan.fault_list
    defaults = engine_entry(spec.engine_name).default_options(executor.workers)
    params = tuple(dict.fromkeys(fault_list[i].param for i in pending))
    engine = make_engine(spec.engine_name, inputs.model, inputs.x, inputs.golden, batch_size=spec.batch_size,
                         params=params, **{**defaults, **spec.options, **inputs.engine_inputs()})
    setup = WorkerSetup(identity_token(plan.identity, spec), spec.engine_name, spec.batch_size, params, spec.options,
                        defaults, spec.keep_outcomes, threads=None, inputs=inputs,
                        recipe=_recipe(plan, inputs.golden), keras_threads=plan.identity.get("keras_threads"))
    prepare_started = time.perf_counter()
    executor.prepare(setup, engine)
    prepare_seconds = time.perf_counter() - prepare_started
    tasks = make_tasks(fault_list, pending, engine.cost, parallel=executor.workers, size=spec.task_size)
    committer = _Committer(store, len(fault_list), len(fault_list) - len(pending), callbacks)
    description = executor.run(tasks, committer)
    return {**description, "timing": {**committer.timing(executor.workers), "prepare_s": prepare_seconds}}


def _recipe(plan: CampaignPlan, golden: GoldenRun) -> Recipe:
    """How a worker elsewhere loads this campaign's inputs (the fault list travels with the tasks)."""
    spec = plan.spec.portable()
    return Recipe(replace(spec, faults=""), plan.identity, logits_sha256(golden.logits),
                  plan.model.state_dict() if _no_file_holds_the_weights(spec) else None)


def _no_file_holds_the_weights(spec: CampaignSpec) -> bool:
    """An untrained model or a model object: its state must travel with the recipe."""
    recipe = spec.recipe
    return recipe is None or recipe.weights is None  # a zoo model with weights=None has recipe.weights None too


class _Committer:
    """Writes each arriving task's results to the store (one transaction per task) and reports progress.

    A task can arrive twice (run again after its worker died, and the first run finished after all):
    faults already stored are skipped, so none is ever stored twice."""

    def __init__(self, store: ResultStore, total: int, already: int, callbacks: Sequence[ProgressCallback]):
        self.store, self.total, self.done_count, self.callbacks = store, total, already, callbacks
        self.stored = store.done_ids()
        self.evaluations = 0
        self.start = time.perf_counter()
        self.started = time.time()
        self.first_task: float | None = None  # epoch seconds when the first task started on a worker
        self.busy = 0.0  # seconds workers spent computing tasks whose results arrived

    def timing(self, workers: int) -> dict:
        """When the workers started computing, and which share of the run's wall time they computed (the
        runner adds the driver's golden run and the executor's preparation of the workers, in seconds)."""
        wall = time.perf_counter() - self.start
        return {"first_task_started": self.first_task, "first_task_after_s": None if self.first_task is None
                else self.first_task - self.started, "busy_s": self.busy, "wall_s": wall,
                "busy_share": self.busy / (workers * wall) if wall > 0 else None}

    def __call__(self, output: TaskOutput) -> None:
        self.first_task = min(output.started, self.first_task or output.started)
        self.busy += output.seconds
        fresh = [r for r in output.results if r.fault_id not in self.stored]
        if len(fresh) < len(output.results):
            _logger.info("task %d arrived again: %d of its faults are already stored", output.task,
                         len(output.results) - len(fresh))
        if not fresh:
            return
        self.store.record(fresh)
        self.stored.update(r.fault_id for r in fresh)
        self.evaluations += sum(r.n for r in fresh)
        self.done_count += len(fresh)
        progress = Progress(self.done_count, self.total, self.evaluations, time.perf_counter() - self.start)
        for callback in self.callbacks:
            callback(progress)

