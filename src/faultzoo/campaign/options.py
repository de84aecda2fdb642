"""The options of a campaign, declared once: name, accepted values, default, help, command-line flag.

:func:`faultzoo.campaign.run_campaign`'s parameters, :class:`~faultzoo.campaign.spec.CampaignSpec`'s
fields and the ``faultzoo campaign`` command's options are checked against this table by a test, and
take their help from it. Values are validated here, once, in the library (:func:`check_options`):
an error names the parameter (:class:`~faultzoo.exceptions.OptionError`), and the command line
prints it as the option's flag (:func:`flag_of`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from faultzoo._registry import BACKENDS
from faultzoo.exceptions import OptionError

__all__ = ["CAMPAIGN_OPTIONS", "Option", "args_docstring", "check_options", "flag_of", "option"]

Check = Callable[[object], str | None]  # a value -> what is wrong with it (None: fine)


@dataclass(frozen=True)
class Option:
    """One option of a campaign."""

    name: str  # the Python parameter (run_campaign) and spec field
    default: object
    help: str  # one line, shown by ``--help`` and the docs
    check: Check  # what is wrong with a value, or None
    flag: str | None = None  # the command line's flag; None: Python only (objects a shell cannot give)
    spec: bool = True  # a field of CampaignSpec (False: how the campaign is run, not what it computes)

    def validate(self, value: object) -> None:
        problem = self.check(value)
        if problem is not None:
            raise OptionError(self.name, value, problem, usage=True)


# ---------------------------------------------------------------------------- value checks
def _int(low: int, *, optional: bool = False) -> Check:
    def check(value: object) -> str | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            return f"expected an integer >= {low}."
        return None

    return check


def _any_int(value: object) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) else "expected an integer."


def _bool(value: object) -> str | None:
    return None if isinstance(value, bool) else "expected True or False."


def _text(*, optional: bool = False, path: bool = False) -> Check:
    kinds = (str, os.PathLike) if path else (str,)

    def check(value: object) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, kinds) or not str(os.fspath(value) if path else value).strip():
            return f"expected a non-empty {'path' if path else 'string'}{' or None' if optional else ''}."
        return None

    return check


def _anything(value: object) -> str | None:
    return None  # checked where it is used (a model, data, a fault list: each has its own rules)


def _callbacks(value: object) -> str | None:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or not all(callable(c) for c in value):
        return "expected a sequence of functions taking a Progress."
    return None


def _mapping(value: object) -> str | None:
    return None if value is None or isinstance(value, Mapping) else "expected a dict of engine options or None."


CAMPAIGN_OPTIONS: tuple[Option, ...] = (
    # what is injected into
    Option("model", None, "A zoo id (cifar10/resnet20), torchvision:NAME, package.module:function, "
           "path/to/file.py:function, or a torch.nn.Module object.", _anything, spec=False),
    Option("faults", None, "Fault list file (upstream lists and results lists of either framework, or faultzoo's own "
           "format; see docs/faults.md), or a FaultList.",
           _anything, "--faults"),
    Option("output", None, "Output folder (campaign.sqlite + exports); resumed if it exists.",
           _text(path=True), "--output", spec=False),
    Option("weights", "default", "'default' (the zoo's checkpoint; untrained for torchvision and factories), "
           "None (untrained) or a checkpoint path.", _anything, "--weights"),
    Option("init_seed", 0, "Seed of an untrained model's initialisation (weights none, or a torchvision or factory "
           "model without a checkpoint): the same seed builds the same model, so the campaign resumes and "
           "reproduces.", _any_int, "--init-seed"),
    Option("num_classes", None, "torchvision:NAME models: the classifier's size (default: the builder's).",
           _int(1, optional=True), "--num-classes"),
    Option("model_name", None, "The name a model object is recorded under (default: its class name).",
           _text(optional=True), spec=False),
    # which faults
    Option("fault_limit", None, "Only the first N faults of the list.", _int(1, optional=True), "--fault-limit"),
    Option("fault_sample", None, "A seeded random subset of N faults of the list (after --fault-limit).",
           _int(1, optional=True), "--fault-sample"),
    Option("fault_seed", 0, "Seed of the fault sample.", _any_int, "--fault-seed"),
    # which images
    Option("data", None, "Dataset name (cifar10, cifar100, gtsrb: test split), a PATH.npz, or imagefolder:PATH; "
           "from Python also (x, y) tensors, a torch Dataset or a DataSelection. Default: a zoo model's dataset.",
           _anything, "--data"),
    Option("transform", None, "For imagefolder data: a torchvision weights member (ResNet18_Weights.IMAGENET1K_V1) "
           "or steps resize=N,crop=N,mean=A:B:C,std=A:B:C; for an .npz file and a model outside the zoo: the "
           "dataset whose test transform its images take (cifar10, cifar100, gtsrb).", _text(optional=True),
           "--transform"),
    Option("data_root", None, "Folder of torchvision datasets (default $FAULTZOO_DATA).", _text(optional=True, path=True),
           "--data-root"),
    Option("limit", None, "Use only the first N images.", _int(1, optional=True), "--limit"),
    Option("per_class", None, "Use the first N images of each class.", _int(1, optional=True), "--per-class"),
    Option("download", False, "Download the dataset if it is missing.", _bool, "--download"),
    # numerics
    Option("framework", "torch", f"The framework the model runs in: {BACKENDS.describe()}.", _text(), "--framework"),
    Option("device", "cpu", "cpu or cuda[:i].", _text(), "--device"),
    Option("tf32", False, "Allow TF32 on GPUs (as the upstream campaigns ran); default strict FP32.", _bool, "--tf32"),
    Option("threads", None, "Intra-op threads of this process (default: leave as set).", _int(1, optional=True),
           spec=True),
    Option("batch_size", 128, "Images per forward pass (>= 2); also the fast engine's packed batch.", _int(2),
           "--batch-size"),
    # how outcomes are computed (never what they are) and what is kept of them
    Option("engine", "fast", "fast (default) or reference: identical outcomes.", _text(), "--engine"),
    Option("engine_options", None, "Engine-specific options (see the engine's class).", _mapping),
    Option("task_size", None, "Faults per task (default: planned from their estimated cost).", _int(1, optional=True)),
    Option("keep_outcomes", False, "Also store each image's outcome (outcomes.npy).", _bool, "--keep-outcomes"),
    # where it runs (never changes a result)
    Option("workers", 1, "Worker processes on this machine (1 thread each).", _int(1), "--workers", spec=False),
    Option("dask", None, "Run on Dask: local:N (N processes here), tcp://HOST:PORT or a scheduler file (JSON) of a "
           "running cluster; every worker must see the weights and data.", _text(optional=True), "--dask", spec=False),
    Option("executor", None, "An executor object instead of workers/dask.", _anything, spec=False),
    Option("plan_file", None, "A plan written by `faultzoo plan --json`: the campaign reports its predicted time beside "
           "the measured one.", _text(optional=True, path=True), "--plan", spec=False),
    Option("callbacks", (), "Called with a Progress after each committed task.", _callbacks, spec=False),
)

_BY_NAME = {o.name: o for o in CAMPAIGN_OPTIONS}


def option(name: str) -> Option:
    """The declared option ``name``."""
    return _BY_NAME[name]


def flag_of(parameter: str) -> str | None:
    """The command-line flag of a parameter (None where the command line has none)."""
    declared = _BY_NAME.get(parameter)
    return declared.flag if declared is not None else None


def check_options(values: Mapping[str, object]) -> None:
    """Validate the given options' values and their combinations (raising OptionError naming the parameter)."""
    for name, value in values.items():
        if name in _BY_NAME:
            _BY_NAME[name].validate(value)
    if values.get("dask") is not None and values.get("workers", 1) > 1:
        raise OptionError("dask", values["dask"], f"choose workers or dask, not both (e.g. dask='local:"
                          f"{values['workers']}').", usage=True)
    if values.get("executor") is not None and (values.get("dask") is not None or values.get("workers", 1) > 1):
        raise OptionError("executor", values["executor"], "an executor object replaces workers and dask: give one.",
                          usage=True)


def args_docstring() -> str:
    """The options as the ``Args:`` section of a docstring (appended to run_campaign's)."""
    lines = ["", "    Args:"]
    for o in CAMPAIGN_OPTIONS:
        lines.append(f"        {o.name}: {o.help}" + (f" Default: {o.default!r}." if o.default not in (None, ()) else ""))
    return "\n".join(lines) + "\n"
