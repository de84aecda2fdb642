"""A campaign's inputs, loaded once and checked before any compute: model, fault list, images, the
backend's runnable model, the identity its store checks, and its provenance.

Everything that could make a campaign fail is checked here: model id and weights, the fault list
against the model (and against the framework backend), the data against the model.
"""

from __future__ import annotations

import platform
import random
import sysconfig
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from faultzoo.backends import Runnable
from faultzoo.backends.torch.numerics import versions
from faultzoo.campaign.spec import IMAGEFOLDER, CampaignSpec, campaign_identity
from faultzoo.data import list_datasets, load_selection
from faultzoo.data.custom import load_data
from faultzoo.exceptions import DatasetError, OptionError, UnknownModelError
from faultzoo.faults import FaultList, read_fault_list, validate
from faultzoo.faults.target_kinds import WEIGHT, TargetKind, target_kind_of
from faultzoo.zoo import get_model, model_info, state_sha256
from faultzoo.zoo.recipes import build_model

__all__ = ["LoadedCampaign", "load_campaign", "load_images", "load_model", "subset"]


@dataclass
class LoadedCampaign:
    """The loaded inputs of one campaign, with the identity its store checks and its provenance."""

    spec: CampaignSpec
    model: nn.Module
    fault_list: FaultList
    selection: object  # faultzoo.data.DataSelection
    identity: dict
    provenance: dict
    runnable: Runnable = field(default_factory=Runnable)  # what the backend's engines run besides the model
    target_kind: TargetKind = WEIGHT  # where the list's faults lie


def load_model(spec: CampaignSpec, *, progress: bool = False) -> nn.Module:
    """The campaign's PyTorch model in eval mode: the model object, the zoo's, or built from its recipe."""
    if spec.module is not None:
        if not isinstance(spec.module, nn.Module):
            raise UnknownModelError(f"The model must be a zoo id, a recipe string or a torch.nn.Module; found a "
                                    f"{type(spec.module).__name__}.")
        return spec.module.eval()
    recipe = spec.recipe
    # An untrained model is its initialisation: seeded, so that the same campaign builds the same model (the
    # caller's random state is left as it was).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.init_seed)
        if recipe.kind == "zoo":
            return get_model(spec.model_id, weights=spec.weights, progress=progress)
        return build_model(recipe, progress=progress)


def model_state_sha256(model: nn.Module) -> str:
    """The hash of the model's state (the zoo records it when loading; computed for other models)."""
    known = getattr(getattr(model, "faultzoo", None), "state_sha256", None)
    if known is not None:
        return known
    return state_sha256(model)


def load_images(spec: CampaignSpec):
    """The campaign's data selection (images preprocessed, labels)."""
    if spec.selection is not None:
        return spec.selection
    data = None if spec.data is None else str(spec.data)
    zoo_dataset = model_info(spec.model_id).dataset if spec.in_zoo else None
    if data is not None and data.startswith(IMAGEFOLDER):  # checked against a zoo model's dataset (image size)
        return load_data(data, dataset=zoo_dataset, transform=spec.transform, limit=spec.limit,
                         per_class=spec.per_class)
    datasets = list_datasets()
    if zoo_dataset is not None:
        dataset = zoo_dataset
    elif data in datasets:
        dataset = data
    elif data is not None and data.lower().endswith(".npz"):
        # An .npz holds a dataset's raw pixels: a model outside the zoo names the dataset whose test transform
        # they take (the trial forward pass then checks that they fit the model).
        if spec.transform not in datasets:
            raise OptionError("transform", spec.transform, f"the images of {data} take the test transform of the "
                              f"dataset they come from: name it ({', '.join(datasets)}) for a model outside the zoo.",
                              usage=spec.transform is not None)
        dataset = spec.transform
    else:
        raise DatasetError(f"Model {spec.model_id} is not a zoo model: name its images with data: a dataset name such "
                           f"as cifar10, an .npz file with the transform of its dataset, imagefolder:PATH with a "
                           f"transform, or from Python (x, y) tensors, a torch Dataset or a DataSelection."
                           + (f" Found {data!r}." if data else ""))
    return load_selection(data or dataset, dataset=dataset, limit=spec.limit, per_class=spec.per_class,
                          root=spec.data_root, download=spec.download)


def _model_frames(exc: BaseException) -> str:
    """Where in the model's own code (not torch's, not faultzoo's, not Python's) an exception was raised:
    its frames, innermost last, one line each, for the error message (empty if none is the model's)."""
    python = {Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib")}
    faultzoo = Path(__file__).resolve().parents[1]

    def library(filename: str) -> bool:  # installed packages (torch...), Python itself, faultzoo
        path = Path(filename).resolve()
        return bool({"site-packages", "dist-packages"} & set(path.parts)) or path.is_relative_to(faultzoo) or \
            any(path.is_relative_to(root) for root in python)

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not library(f.filename)]
    lines = [f"\n  raised in the model's code: {f.filename}, line {f.lineno}, in {f.name}: {(f.line or '').strip()}"
             for f in frames[-5:]]
    return "".join(lines)


def check_model_takes_images(model: nn.Module, selection, label: str) -> int:
    """One trial forward pass on two images, before any work: the model must take the images and return
    logits (N × classes) with a class for every label. Returns the number of classes."""
    x = selection.x[: min(2, len(selection.x))]
    shape = "×".join(map(str, selection.x.shape[1:]))
    try:
        with torch.inference_mode():
            out = model(x)
    except Exception as exc:  # any failure of the model's forward pass: a misfit of model and data, or its bug
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DatasetError(f"Model {label} cannot take the images of {selection.source} (C×H×W {shape}): "
                           f"{type(exc).__name__}: {first}{_model_frames(exc)}") from None
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


def load_campaign(spec: CampaignSpec, *, numerics: dict) -> LoadedCampaign:
    """Load and validate every input of ``spec`` (raising FaultzooError subclasses before any compute);
    ``numerics``: what the backend applied (:meth:`~faultzoo.backends.Backend.apply_numerics`)."""
    model = load_model(spec, progress=True)
    fault_list = _select_faults(spec, model)
    selection = load_images(spec)
    classes = check_model_takes_images(model, selection, spec.model_id)
    target_kind = target_kind_of(fault_list)
    if target_kind.name not in spec.engine_entry.targets:
        raise OptionError("engine", spec.engine, f"the {spec.framework} engine does not run {target_kind.name} faults "
                          f"(it runs {', '.join(spec.engine_entry.targets)} faults).")
    spec.backend.check_faults(model, fault_list)
    runnable = spec.backend.runnable(model, selection)
    state_hash = model_state_sha256(model)
    identity = campaign_identity(spec, weights_sha256=state_hash,
                                 fault_list_sha256=fault_list.fingerprint(), faults=len(fault_list),
                                 data_sha256=selection.fingerprint(), images=len(selection.y), numerics=numerics)
    provenance = {
        "model": _model_provenance(spec, model, state_hash, classes),
        "fault_list": {"sha256": fault_list.fingerprint(), "source": _absolute(fault_list.meta.source_file),
                       "meta": fault_list.meta.to_dict(), "faults": len(fault_list),
                       "selection": fault_list.meta.design_params.get("run_subset")},
        "data": selection.describe(),
        "numerics": numerics,
        "versions": {**versions(), **runnable.versions},
        "platform": platform.platform(),
        **runnable.provenance,
    }
    return LoadedCampaign(spec, model, fault_list, selection, identity, provenance, runnable, target_kind)


def _model_provenance(spec: CampaignSpec, model: nn.Module, state_hash: str, classes: int) -> dict:
    if spec.in_zoo:
        return {**model_info(spec.model_id).to_dict(), "provenance": model.faultzoo.to_dict()}
    recipe = spec.recipe
    return {"id": spec.model_id, "recipe": recipe.describe() if recipe is not None else None,
            "class": f"{type(model).__module__}.{type(model).__qualname__}", "state_sha256": state_hash,
            "parameters": sum(p.numel() for p in model.parameters()), "num_classes": classes,
            # the analysis reads tensor shapes here (it cannot rebuild a model outside the zoo)
            "shapes": {name: list(t.shape) for name, t in model.state_dict().items() if t.is_floating_point()}}


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
    for name, value in (("fault_limit", spec.fault_limit), ("fault_sample", spec.fault_sample)):
        if value is not None and value > listed:
            raise OptionError(name, value, f"asks for more faults than the {listed:,} of the list "
                              f"{fault_list.meta.source_file or ''}; use at most {listed:,}.")
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
    return str(Path(path).expanduser().resolve()) if path else path


def subset(fault_list: FaultList, positions: Sequence[int]) -> FaultList:
    """The faults at ``positions``, keeping their Injection ids and extra columns."""
    return fault_list.take(positions)
