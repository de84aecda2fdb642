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
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from faultzoo._files import ensure_writable_dir
from faultzoo.backends import GoldenRun, make_engine
from faultzoo.backends.torch.numerics import torch_threads, versions
from faultzoo.campaign.executors import Executor, make_executor
from faultzoo.campaign.exports import export_all, export_paths, remove_exports
from faultzoo.campaign.loading import LoadedCampaign, load_campaign, subset
from faultzoo.campaign.options import args_docstring, check_options
from faultzoo.campaign.spec import CampaignSpec, identity_token
from faultzoo.campaign.store import ResultStore
from faultzoo.campaign.summary import CampaignSummary, summarize
from faultzoo.campaign.tasks import make_tasks, plan_tasks
from faultzoo.campaign.worker import Inputs, Recipe, TaskOutput, WorkerSetup, logits_sha256
from faultzoo.exceptions import OptionError, OutputError
from faultzoo import layouts
from faultzoo.faults import FaultList

__all__ = ["STORE_NAME", "CampaignResult", "Progress", "ProgressCallback", "execute_campaign", "plan_tasks",
           "run_campaign", "subset", "versions"]

_logger = logging.getLogger(__name__)

STORE_NAME = layouts.STORE_NAME


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
    # a plan's predicted time (run_campaign's plan_file), and this run's time as a plan measures it: the golden
    # run, the workers' preparation and the tasks (not loading the inputs or writing the exports)
    predicted_seconds: float | None = None
    measured_seconds: float | None = None


def run_campaign(
    model: str | torch.nn.Module,
    faults: str | os.PathLike | FaultList,
    *,
    output: str | os.PathLike,
    weights: str | os.PathLike | None = "default",
    init_seed: int = 0,
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
    plan_file: str | os.PathLike | None = None,
) -> CampaignResult:
    """Run (or resume) a fault-injection campaign and export its results.

    Re-running the same call resumes an interrupted campaign, with any executor. Every option is declared,
    with its default and accepted values, in :data:`faultzoo.campaign.options.CAMPAIGN_OPTIONS` (the
    list below is generated from it; ``faultzoo campaign --help`` shows the same texts).

    Raises:
        FaultzooError subclasses for every bad input, before any compute (OptionError names the parameter).
    """
    check_options({name: value for name, value in locals().items() if name not in ("model", "faults", "data")})
    model_fields = _model_fields(model, model_name)
    data_fields = _data_fields(data, limit=limit, per_class=per_class)
    if "selection" in data_fields:
        limit = per_class = None  # applied while the data was read
    spec = CampaignSpec(faults=faults, **model_fields, weights=weights, num_classes=num_classes, init_seed=init_seed,
                        fault_limit=fault_limit, fault_sample=fault_sample, fault_seed=fault_seed, **data_fields,
                        transform=transform, data_root=data_root, limit=limit, per_class=per_class,
                        download=download, framework=framework, device=device, tf32=tf32, threads=threads,
                        batch_size=batch_size, engine=engine, engine_options=tuple(sorted((engine_options or {}).items())),
                        task_size=task_size, keep_outcomes=keep_outcomes)
    return execute_campaign(spec, output=output, executor=executor or make_executor(workers=workers, dask=dask),
                            callbacks=callbacks, predicted_seconds=_predicted_seconds(plan_file))


run_campaign.__doc__ += args_docstring()


def _model_fields(model: object, name: str | None) -> dict:
    if isinstance(model, torch.nn.Module):
        return {"model_id": name or type(model).__name__, "module": model}
    if isinstance(model, (str, os.PathLike)):
        if name is not None:
            raise OptionError("model_name", name, "names a model object; a zoo id or recipe names itself.")
        if not str(model).strip():
            raise OptionError("model", model, "expected a zoo id, a recipe string or a torch.nn.Module.")
        return {"model_id": str(model)}
    raise OptionError("model", model, "expected a zoo id, a recipe string (torchvision:NAME, module:function, "
                      f"file.py:function) or a torch.nn.Module; found a {type(model).__name__}.")


def _data_fields(data: object, *, limit: int | None, per_class: int | None) -> dict:
    """``data`` as the spec holds it: a name or path as text, anything else as a DataSelection read now."""
    from faultzoo.data import DataSelection
    from faultzoo.data.custom import selection_from_dataset, selection_from_tensors

    if data is None or isinstance(data, (str, os.PathLike)):
        return {"data": None if data is None else str(data)}
    if isinstance(data, DataSelection):
        if limit is not None or per_class is not None:
            raise OptionError("limit" if limit is not None else "per_class", limit if limit is not None else per_class,
                              "chooses images of a named dataset; select the images of a DataSelection before "
                              "passing it.")
        return {"selection": data}
    if per_class is not None:
        raise OptionError("per_class", per_class, "chooses images of a named dataset; pass the images you want as "
                          "data.")
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        return {"selection": selection_from_tensors(x[:limit], y[:limit])}
    if hasattr(data, "__getitem__"):
        return {"selection": _read_dataset(data, limit, selection_from_dataset)}
    raise OptionError("data", data, "expected a dataset name, an .npz path, imagefolder:PATH, a DataSelection, a pair "
                      f"of tensors (x, y) or a torch Dataset; found a {type(data).__name__}.")


def _read_dataset(dataset, limit: int | None, read):
    """A Dataset read into memory once, with a progress bar on the terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("reading images"), BarColumn(), MofNCompleteColumn(), console=Console(stderr=True),
                  transient=True) as bar:
        task = bar.add_task("read", total=None)
        return read(dataset, limit=limit, progress=lambda done, total: bar.update(task, completed=done, total=total))


def _predicted_seconds(plan_file: str | os.PathLike | None) -> float | None:
    """The predicted time of the design a plan recommends (``faultzoo plan --json``), or None without a plan."""
    if plan_file is None:
        return None
    import json

    try:
        seconds = json.loads(Path(plan_file).read_text())["prediction"]["seconds"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OptionError("plan_file", str(plan_file), f"expected a plan written by `faultzoo plan --json`, with its "
                          f"prediction ({type(exc).__name__}: {exc}).") from None
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not seconds >= 0:
        raise OptionError("plan_file", str(plan_file), f"its prediction holds no time in seconds (found {seconds!r}).")
    return float(seconds)


def execute_campaign(spec: CampaignSpec, *, output: str | os.PathLike, executor: Executor,
                     callbacks: Sequence[ProgressCallback] = (), predicted_seconds: float | None = None
                     ) -> CampaignResult:
    """Run (or resume) the campaign ``spec`` with ``executor``; see :func:`run_campaign`. ``predicted_seconds``:
    a plan's predicted time, recorded beside the measured one."""
    output = Path(output)
    finished = _finished_read_only(output)
    if finished is not None:
        return finished
    ensure_writable_dir(output, what="output folder (-o)", create=False)  # created once all is valid
    backend = spec.backend
    numerics = backend.apply_numerics(device=spec.device, tf32=spec.tf32, threads=spec.threads,
                                      single_threaded=executor.single_threaded)
    plan = load_campaign(spec, numerics=numerics)
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
        model = plan.model.to(spec.device)
        x, y = plan.selection.x.to(spec.device), plan.selection.y.to(spec.device)
        golden_started = time.perf_counter()
        golden = backend.golden_run(plan.runnable, model, x, y, batch_size=spec.batch_size,
                                    threads=_idle_cores(executor, x.device))
        golden_seconds = time.perf_counter() - golden_started
        label = spec.engine_entry.label
        engine_info: dict = {"engine": label, "note": "nothing left to compute in this run"}
        store.begin_run({**plan.provenance, "engine": label, "executor": executor.describe(),
                         "workers": executor.workers, "golden_top1": golden.accuracy})
        for callback in callbacks if pending else ():  # inputs valid, golden run done: work starts
            callback(Progress(len(done), len(plan.fault_list), 0, 0.0))
        status = "interrupted"
        try:
            if pending:
                engine_info = _execute(store, plan, Inputs(model, x, golden, plan.runnable.engine_inputs), pending,
                                       executor, callbacks)
                engine_info["timing"]["golden_s"] = golden_seconds
            status = "complete"
        finally:
            store.end_run(status)
        results = store.results()
    complete = len(results) == len(plan.fault_list)
    summary = summarize(plan.fault_list, results, golden,
                        lambda fault: plan.target_kind.word_format(plan.model, fault))
    exports = export_all(output, plan.fault_list, results, model=plan.model, provenance={
        **plan.provenance, "identity": plan.identity, "golden_top1": golden.accuracy, "engine": engine_info,
        "summary": summary.to_dict()}) if complete else {}
    timing = engine_info.get("timing", {})
    measured = sum(timing.get(k) or 0.0 for k in ("golden_s", "prepare_s", "wall_s")) if timing else None
    return CampaignResult(output, store_path, summary, complete, exports, engine_info, plan.provenance,
                          predicted_seconds=predicted_seconds, measured_seconds=measured)


def _idle_cores(executor: Executor, device: torch.device) -> int:
    """Python threads for the driver's golden run: the workers' cores are idle until their first task."""
    if not executor.single_threaded or device.type != "cpu":
        return 1
    return max(1, min(executor.workers, os.cpu_count() or 1))


def _check_outcomes_kept(store: ResultStore, spec: CampaignSpec) -> None:
    """--keep-outcomes added on a resume cannot give per-image outcomes of faults already stored without
    them: refuse, with the reason, rather than export a matrix with holes."""
    if not spec.keep_outcomes:
        return
    without = sum(r.outcomes is None for r in store.results())
    if without:
        raise OptionError("keep_outcomes", True, f"{without} faults of {store.path} were stored without per-image "
                          "outcomes by an earlier run; resume without it, or start a new campaign (another output "
                          "folder) with it.")


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

    provenance = json.loads((export_paths(output)["provenance"]).read_text()) if (export_paths(output)["provenance"]).is_file() else dict(meta)
    summary = CampaignSummary.from_dict(provenance["summary"]) if "summary" in provenance else None
    exports = {name: path for name, path in export_paths(output).items() if path.is_file()}
    return CampaignResult(output, store_path, summary, True, exports, provenance.get("engine", {}), dict(meta))


def _writable(folder: Path) -> bool:
    try:
        ensure_writable_dir(folder, what="output folder (-o)", create=False)
    except OutputError:
        return False
    return True


def _execute(store: ResultStore, plan: LoadedCampaign, inputs: Inputs, pending: list[int], executor: Executor,
             callbacks: Sequence[ProgressCallback]) -> dict:
    """Engine -> worker preparation -> tasks -> results streamed into the store."""
    spec, fault_list = plan.spec, plan.fault_list
    defaults = spec.engine_entry.default_options(executor.workers)
    params = tuple(dict.fromkeys(plan.target_kind.task_key(fault_list[i]) for i in pending))
    engine = make_engine(spec.framework, spec.engine, inputs.model, inputs.x, inputs.golden, batch_size=spec.batch_size,
                         params=params, **{**defaults, **spec.options, **inputs.engine_inputs})
    setup = WorkerSetup(identity_token(plan.identity, spec), spec.framework, spec.engine, spec.batch_size, params,
                        spec.options, defaults, spec.keep_outcomes, threads=None, identity=plan.identity,
                        inputs=inputs, recipe=_recipe(plan, inputs.golden))
    prepare_started = time.perf_counter()
    executor.prepare(setup, engine)
    prepare_seconds = time.perf_counter() - prepare_started
    tasks = make_tasks(fault_list, pending, engine.cost, parallel=executor.workers, size=spec.task_size,
                       key=plan.target_kind.task_key)
    committer = _Committer(store, len(fault_list), len(fault_list) - len(pending), callbacks)
    description = executor.run(tasks, committer)
    return {**description, "timing": {**committer.timing(executor.workers), "prepare_s": prepare_seconds}}


def _recipe(plan: LoadedCampaign, golden: GoldenRun) -> Recipe:
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

