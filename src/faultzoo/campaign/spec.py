"""What a campaign is: a frozen CampaignSpec, and the identity a result store checks on resume.

The spec says what to compute (model, weights, fault list, data selection, numerics, engine, batch
size), never how or where: the executor (in-process, local processes, Dask) is chosen separately
and does not change a single result. The identity is the part of the spec, resolved against the
loaded inputs (hashes of weights, fault list and images), that decides every outcome bit: a store
written under one identity refuses to be resumed under another.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from faultzoo.backends import Backend, EngineEntry, engine_entry, get_backend
from faultzoo.campaign.options import check_options
from faultzoo.faults import FaultList
from faultzoo.zoo.recipes import model_label

__all__ = ["CampaignSpec", "campaign_identity", "identity_token"]


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign as the user asked for it (see :func:`faultzoo.campaign.run_campaign` for each field)."""

    # what is injected into: a zoo id, torchvision:NAME, module.path:factory or file.py:factory (see
    # faultzoo.zoo.recipes), or the label of a model object given as ``module``
    model_id: str
    faults: str | os.PathLike | FaultList = field(repr=False)
    weights: object = "default"  # "default", None (untrained), a checkpoint path or a Weights descriptor
    num_classes: int | None = None  # torchvision builders only: the classifier's size
    init_seed: int = 0  # an untrained model's initialisation
    module: object = field(default=None, repr=False, compare=False)  # a torch.nn.Module given as an object
    # which faults
    fault_limit: int | None = None
    fault_sample: int | None = None
    fault_seed: int = 0
    # which images
    data: str | None = None  # dataset name, .npz path or imagefolder:PATH (see ``selection`` for objects)
    selection: object = field(default=None, repr=False, compare=False)  # a DataSelection given as an object
    transform: str | None = None  # imagefolder data: a torchvision weights member or resize=..,crop=..,mean=..,std=..
    data_root: str | os.PathLike | None = None
    limit: int | None = None
    per_class: int | None = None
    download: bool = False
    # numerics
    framework: str = "torch"  # the backend the model runs in (faultzoo.backends)
    device: str = "cpu"
    tf32: bool = False
    threads: int | None = None
    batch_size: int = 128
    # how outcomes are computed (never what they are) and what is kept of them
    engine: str = "fast"
    engine_options: tuple[tuple[str, object], ...] = ()
    task_size: int | None = None
    keep_outcomes: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.engine_options, dict):  # accepted for convenience, stored immutable
            object.__setattr__(self, "engine_options", tuple(sorted(self.engine_options.items())))
        check_options({f.name: getattr(self, f.name) for f in fields(self) if f.name != "engine_options"})
        self.backend.check_settings(device=self.device, tf32=self.tf32)
        self.engine_entry  # an unknown engine of this framework is refused here  # noqa: B018

    @property
    def backend(self) -> Backend:
        """The framework backend the campaign runs in."""
        return get_backend(self.framework)

    @property
    def engine_entry(self) -> EngineEntry:
        """The backend's engine that runs this campaign (its ``label`` is what results record)."""
        return engine_entry(self.framework, self.engine)

    @property
    def recipe(self):
        """How to build the model (:class:`~faultzoo.zoo.recipes.ModelRecipe`), or None for a model object."""
        if self.module is not None:
            return None
        from faultzoo.zoo.recipes import parse_model_spec

        return parse_model_spec(self.model_id, weights=self.weights, num_classes=self.num_classes)

    @property
    def untrained(self) -> bool:
        """Whether the model is built here without a checkpoint (its weights are its seeded initialisation)."""
        recipe = self.recipe
        return recipe is not None and recipe.weights is None

    @property
    def in_zoo(self) -> bool:
        """Whether the model is a zoo model (whose dataset, classes and weights the zoo knows)."""
        from faultzoo.zoo import list_models

        return self.module is None and self.model_id in list_models()

    @property
    def options(self) -> dict:
        """The engine options as a dict."""
        return dict(self.engine_options)

    def portable(self) -> CampaignSpec:
        """The same spec with every path made absolute, so that a process elsewhere (another working
        directory, another node of a cluster with shared storage) loads the same files."""
        from faultzoo.data import default_data_root, list_datasets

        changes = {}
        if isinstance(self.weights, (str, os.PathLike)) and self.weights != "default":
            changes["weights"] = _absolute(self.weights)
        recipe = self.recipe
        if recipe is not None and recipe.kind == "factory" and recipe.target.split(":")[0].endswith(".py"):
            file, function = recipe.target.rsplit(":", 1)
            changes["model_id"] = f"{_absolute(file)}:{function}"
        if self.data is not None and str(self.data).startswith(IMAGEFOLDER):
            changes["data"] = IMAGEFOLDER + _absolute(str(self.data)[len(IMAGEFOLDER):])
        elif self.data is not None and str(self.data) not in list_datasets():
            changes["data"] = _absolute(self.data)
        else:
            changes["data_root"] = _absolute(self.data_root if self.data_root is not None else default_data_root())
        if not isinstance(self.faults, FaultList):
            changes["faults"] = _absolute(self.faults)
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-able fields (the fault list as its source path, or its fingerprint when given as an object)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, FaultList):
                value = f"FaultList sha256 {value.fingerprint()}"
            elif f.name == "module" and value is not None:
                value = f"{type(value).__module__}.{type(value).__qualname__} object"
            elif f.name == "selection" and value is not None:
                value = value.source
            elif isinstance(value, os.PathLike):
                value = str(value)
            elif f.name == "engine_options":
                value = {k: repr(v) if not isinstance(v, (int, float, str, bool, type(None))) else v for k, v in value}
            out[f.name] = value
        return out


IMAGEFOLDER = "imagefolder:"  # --data imagefolder:PATH


def _absolute(path: str | os.PathLike) -> str:
    return str(Path(path).expanduser().resolve())


def campaign_identity(spec: CampaignSpec, *, weights_sha256: str, fault_list_sha256: str, faults: int,
                      data_sha256: str, images: int, numerics: dict | None = None) -> dict:
    """The fields a result store checks on resume: everything that decides an outcome bit, nothing else
    (not the executor, the workers, the engine or the paths files were read from).

    The backend adds its numerics fields (``numerics``: what its :meth:`~faultzoo.backends.Backend.apply_numerics`
    recorded): device, dtype, TF32 and the framework versions, and for another framework than the
    default its name, so that a campaign of one framework is never resumed as another's."""
    return {
        "model_id": model_label(spec.model_id),
        **({} if spec.in_zoo else {"model": _model_record(spec)}),
        "weights_state_sha256": weights_sha256,
        "fault_list_sha256": fault_list_sha256,
        "faults": faults,
        "data_sha256": data_sha256,
        "images": images,
        "batch_size": spec.batch_size,
        **({"init_seed": spec.init_seed} if spec.untrained else {}),
        **spec.backend.identity(device=spec.device, tf32=spec.tf32, numerics=numerics or {}),
    }


def _model_record(spec: CampaignSpec) -> dict:
    """How a model outside the zoo was made: its recipe (without paths, which may move), or its class."""
    if spec.module is not None:
        return {"kind": "object", "class": f"{type(spec.module).__module__}.{type(spec.module).__qualname__}"}
    recipe = spec.recipe.describe()
    recipe["target"] = model_label(recipe["target"])
    recipe["weights"] = recipe["weights"] is not None  # the state hash says which
    return recipe


def identity_token(identity: dict, spec: CampaignSpec) -> str:
    """A short key for one campaign's worker state: its identity plus how its engine is configured."""
    payload = json.dumps({"identity": identity, "engine": spec.engine_entry.label, "options": spec.to_dict()["engine_options"]},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
