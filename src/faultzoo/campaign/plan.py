"""A campaign's plan, built once: loaded and validated inputs, identity, provenance, and tasks.

Everything that could make a campaign fail is checked here, before any compute: model id and
weights, the fault list against the model, the data against the model. Tasks group pending
faults of one layer (the fast engine stacks them) with their estimated cost.
"""

from __future__ import annotations

import platform
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from faultzoo.campaign.numerics import versions
from faultzoo.campaign.spec import IMAGEFOLDER, CampaignSpec, campaign_identity
from faultzoo.exceptions import DatasetError, FaultListFormatError, UnknownModelError
from faultzoo.faults import Fault, FaultList, read_fault_list, validate

__all__ = ["CampaignPlan", "Task", "build_plan", "load_images", "load_model", "make_tasks", "plan_tasks", "subset"]


@dataclass
class CampaignPlan:
    """The loaded inputs of one campaign, with the identity its store checks and its provenance."""

    spec: CampaignSpec
    model: nn.Module
    fault_list: FaultList
    selection: object  # faultzoo.data.DataSelection
    identity: dict
    provenance: dict
    twin: object | None = None  # the Keras twin of a Keras campaign


@dataclass(frozen=True)
class Task:
    """Faults computed and committed together: (fault id, fault) pairs, mostly of one layer."""

    index: int
    faults: tuple[tuple[int, Fault], ...]
    cost: float  # estimated work, in the engine's units

    @property
    def fault_ids(self) -> tuple[int, ...]:
        return tuple(fid for fid, _ in self.faults)


def load_model(spec: CampaignSpec, *, progress: bool = False) -> nn.Module:
    """The campaign's PyTorch model in eval mode: the model object, the zoo's, or built from its recipe."""
    if spec.module is not None:
        if not isinstance(spec.module, nn.Module):
            raise UnknownModelError(f"The model must be a zoo id, a recipe string or a torch.nn.Module; found a "
                                    f"{type(spec.module).__name__}.")
        return spec.module.eval()
    recipe = spec.recipe
    if recipe.kind == "zoo":
        from faultzoo.zoo import get_model

        return get_model(spec.model_id, weights=spec.weights, progress=progress)
    from faultzoo.zoo.recipes import build_model

    return build_model(recipe, progress=progress)


def model_state_sha256(model: nn.Module) -> str:
    """The hash of the model's state (the zoo records it when loading; computed for other models)."""
    known = getattr(getattr(model, "faultzoo", None), "state_sha256", None)
    if known is not None:
        return known
    from faultzoo.zoo import state_sha256

    return state_sha256(model)


def load_images(spec: CampaignSpec):
    """The campaign's data selection (images preprocessed, labels)."""
    from faultzoo.data import list_datasets, load_selection

    if spec.selection is not None:
        return spec.selection
    data = None if spec.data is None else str(spec.data)
    if data is not None and data.startswith(IMAGEFOLDER):
        if not spec.transform:
            raise DatasetError(f"--data {data} needs --transform: a torchvision weights member (e.g. "
                               "ResNet18_Weights.IMAGENET1K_V1) or steps such as resize=72,crop=64,mean=0.5:0.5:0.5,"
                               "std=0.25:0.25:0.25.")
        from faultzoo.data.custom import selection_from_imagefolder

        return selection_from_imagefolder(data[len(IMAGEFOLDER):], spec.transform, limit=spec.limit)
    if spec.in_zoo:
        from faultzoo.zoo import model_info

        dataset = model_info(spec.model_id).dataset
    elif data in list_datasets():
        dataset = data
    else:
        raise DatasetError(f"Model {spec.model_id} is not a zoo model: name its images with --data (a dataset name "
                           f"such as cifar10, or imagefolder:PATH with --transform); from Python also data=(x, y), a "
                           f"torch Dataset or a DataSelection." + (f" Found {data!r}." if data else ""))
    return load_selection(data or dataset, dataset=dataset, limit=spec.limit, per_class=spec.per_class,
                          root=spec.data_root, download=spec.download)


def check_model_takes_images(model: nn.Module, selection, label: str) -> int:
    """One trial forward pass on two images, before any work: the model must take the images and return
    logits (N × classes) with a class for every label. Returns the number of classes."""
    import torch

    x = selection.x[: min(2, len(selection.x))]
    shape = "×".join(map(str, selection.x.shape[1:]))
    try:
        with torch.inference_mode():
            out = model(x)
    except Exception as exc:  # any failure of the user's forward pass is a misfit of model and data
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DatasetError(f"Model {label} cannot take the images of {selection.source} (C×H×W {shape}): "
                           f"{type(exc).__name__}: {first}") from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != len(x) or not out.is_floating_point():
        found = f"a {out.dtype} tensor of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else \
            f"a {type(out).__name__}"
        raise DatasetError(f"Model {label} must return float logits of shape (images, classes) in eval mode; it "
                           f"returned {found} for {len(x)} images of {selection.source}.")
    classes = int(out.shape[1])
    if int(selection.y.max()) >= classes:
        raise DatasetError(f"Data {selection.source} has label {int(selection.y.max())}; model {label} has "
                           f"{classes} classes (outputs), so labels must lie in 0..{classes - 1}.")
    return classes


def build_plan(spec: CampaignSpec, *, numerics: dict) -> CampaignPlan:
    """Load and validate every input of ``spec`` (raising FaultzooError subclasses before any compute)."""
    model = load_model(spec, progress=True)
    fault_list = _select_faults(spec, model)
    selection = load_images(spec)
    classes = check_model_takes_images(model, selection, spec.model_id)
    twin = _keras_twin(spec, model, fault_list, selection) if spec.framework == "keras" else None
    state_hash = model_state_sha256(model)
    identity = campaign_identity(spec, weights_sha256=state_hash,
                                 fault_list_sha256=fault_list.fingerprint(), faults=len(fault_list),
                                 data_sha256=selection.fingerprint(), images=len(selection.y),
                                 keras=numerics.get("keras"))
    provenance = {
        "model": _model_provenance(spec, model, state_hash, classes),
        "fault_list": {"sha256": fault_list.fingerprint(), "source": _absolute(fault_list.meta.source_file),
                       "meta": fault_list.meta.to_dict(), "faults": len(fault_list),
                       "selection": fault_list.meta.design_params.get("run_subset")},
        "data": selection.describe(),
        "numerics": numerics,
        "versions": versions(),
        "platform": platform.platform(),
    }
    if twin is not None:
        from faultzoo.keras.campaign import tf_versions
        from faultzoo.keras.weights import keras_weights_sha256

        provenance["versions"].update(tf_versions())
        provenance["twin"] = {"framework": "keras", "keras_weights_sha256": keras_weights_sha256(twin),
                              "converted_from_torch_state_sha256": state_hash}
    return CampaignPlan(spec, model, fault_list, selection, identity, provenance, twin)


def _model_provenance(spec: CampaignSpec, model: nn.Module, state_hash: str, classes: int) -> dict:
    if spec.in_zoo:
        from faultzoo.zoo import model_info

        return {**model_info(spec.model_id).to_dict(), "provenance": model.faultzoo.to_dict()}
    recipe = spec.recipe
    return {"id": spec.model_id, "recipe": recipe.describe() if recipe is not None else None,
            "class": f"{type(model).__module__}.{type(model).__qualname__}", "state_sha256": state_hash,
            "parameters": sum(p.numel() for p in model.parameters()), "num_classes": classes,
            # the analysis reads tensor shapes here (it cannot rebuild a model outside the zoo)
            "shapes": {name: list(t.shape) for name, t in model.state_dict().items() if t.is_floating_point()}}


def load_twin(model: nn.Module, selection):
    """The Keras twin a Keras campaign injects into: ``model`` converted, tensors copied bit for bit."""
    from faultzoo.keras.campaign.reference import twin_for

    return twin_for(model, selection.x)


def _keras_twin(spec: CampaignSpec, model: nn.Module, fault_list: FaultList, selection):
    """The twin, after checking that every fault lands on one of its variables (before any compute)."""
    from faultzoo.exceptions import FaultError
    from faultzoo.keras.campaign.targets import TargetMap

    targets = TargetMap(model)
    for position, fault in enumerate(fault_list):
        try:
            targets.target(fault)
        except FaultError as exc:
            raise FaultListFormatError(f"{fault_list.meta.source_file or 'fault list'}: Injection "
                                       f"{fault_list.id_of(position)}: {exc}") from None
    return load_twin(model, selection)


def _select_faults(spec: CampaignSpec, model: nn.Module) -> FaultList:
    """The faults to run: the list, or its first ``fault_limit`` faults, or a seeded ``fault_sample`` of it.

    A part of a list is recorded in its metadata (``design_params["run_subset"]``: how it was taken and
    of how many faults), so that the list's own margin (made for all of it) is never reported for the
    part; the analysis computes the margin the part supports."""
    if isinstance(spec.faults, FaultList):
        fault_list = spec.faults
        validate(fault_list, model, model_id=spec.model_id)
    else:
        fault_list = read_fault_list(spec.faults, model, model_id=spec.model_id)  # validates against the model
    listed = len(fault_list)
    for flag, value in (("--fault-limit", spec.fault_limit), ("--fault-sample", spec.fault_sample)):
        if value is not None and value > listed:
            raise FaultListFormatError(f"{flag} {value} asks for more faults than the {listed:,} of the list "
                                       f"{fault_list.meta.source_file or ''}; use at most {listed:,} or drop {flag}.")
    taken = None
    if spec.fault_limit is not None and spec.fault_limit < listed:
        fault_list = fault_list[:spec.fault_limit]
        taken = {"how": "first", "fault_limit": spec.fault_limit}
    if spec.fault_sample is not None and spec.fault_sample < len(fault_list):
        chosen = random.Random(spec.fault_seed).sample(range(len(fault_list)), spec.fault_sample)
        fault_list = subset(fault_list, sorted(chosen))
        taken = {"how": "simple random sample", "fault_sample": spec.fault_sample, "fault_seed": spec.fault_seed,
                 **({"after_fault_limit": spec.fault_limit} if taken else {})}
    if taken is None:
        return fault_list
    params = {**fault_list.meta.design_params, "run_subset": {**taken, "of": listed, "faults": len(fault_list)}}
    return fault_list.with_meta(design_params=params)


def _absolute(path: str | None) -> str | None:
    from pathlib import Path

    return str(Path(path).expanduser().resolve()) if path else path


def subset(fault_list: FaultList, positions: Sequence[int]) -> FaultList:
    """The faults at ``positions``, keeping their Injection ids and extra columns."""
    return fault_list.take(positions)


# ---------------------------------------------------------------------------- tasks
_TASK_MAX_FAULTS = 128  # a task is committed as a whole: keep what an interruption loses small


def make_tasks(fault_list: FaultList, pending: list[int], cost: Callable[[Fault], float], *, parallel: int,
               size: int | None = None) -> list[Task]:
    """The pending faults as tasks (see :func:`plan_tasks`), each with its estimated cost."""
    groups = [ids for ids in plan_tasks(fault_list, pending, cost, parallel=parallel, size=size) if ids]
    return [Task(k, tuple((i, fault_list[i]) for i in ids), sum(cost(fault_list[i]) for i in ids))
            for k, ids in enumerate(groups)]


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
