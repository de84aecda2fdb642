"""Models from outside the zoo: a recipe says how to build one, so every process can rebuild it.

A *recipe* is what a worker process (or a Dask worker on another node) needs to obtain the same
network as the driver: a zoo id, a torchvision classification builder (``torchvision:NAME``), or an
importable factory (``package.module:function`` or ``path/to/file.py:function``), each with an
optional checkpoint loaded strictly through the zoo's safe loader. The state hash of the built model
(:func:`faultzoo.zoo.state_sha256`) is what a campaign's identity records, so a resume with a
changed model is refused, and a worker checks it rebuilt the very same state.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from torch import nn

from faultzoo.exceptions import CheckpointError, UnknownModelError, found

__all__ = ["USER_MODULE_PREFIX", "ModelRecipe", "build_model", "import_user_file", "model_label", "parse_model_spec",
           "user_modules"]

USER_MODULE_PREFIX = "faultzoo_user_"  # module names of factory files imported by path

_FACTORY = re.compile(r"^(?P<module>[^:]+):(?P<function>[A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class ModelRecipe:
    """How to build a model: ``kind`` is ``zoo``, ``torchvision`` or ``factory``.

    Attributes:
        kind: where the architecture comes from.
        target: the zoo id, the torchvision builder name, or ``module:function`` / ``file.py:function``.
        weights: ``"default"`` (zoo only), None (untrained) or a checkpoint path, loaded strictly.
        num_classes: torchvision builders only: the classifier's size (None: the builder's default).
    """

    kind: str
    target: str
    weights: str | None = None
    num_classes: int | None = None

    def describe(self) -> dict:
        """JSON-able record of the recipe, for provenance and campaign identity."""
        return asdict(self)

    @property
    def label(self) -> str:
        """A short name for tables and file names: the zoo id, ``torchvision:NAME`` or ``module:function``."""
        return self.target if self.kind in ("zoo", "factory") else f"torchvision:{self.target}"


def model_label(spec: str | None) -> str | None:
    """A model's name independent of where its file lies: ``file.py:function`` for a factory in a file
    (``./nets/lab_nets.py:build`` and ``/home/me/lab_nets.py:build`` are both ``lab_nets.py:build``); any
    other model spec (zoo id, ``torchvision:NAME``, ``package.module:function``) unchanged.

    The one rule by which fault lists and campaigns record and compare the model they were made for.
    Text that is no model spec (None, another type) is returned as it is: callers check types themselves.
    """
    if not isinstance(spec, str):
        return spec
    head, sep, function = spec.rpartition(":")
    return f"{Path(head).name}:{function}" if sep and head.endswith(".py") else spec


def parse_model_spec(spec: str, *, weights: str | None = "default", num_classes: int | None = None) -> ModelRecipe:
    """Read a ``--model`` value: a zoo id, ``torchvision:NAME``, or ``module.path:factory`` / ``file.py:factory``.

    ``weights``: "default" (the zoo's upstream checkpoint; untrained for the other kinds), None or a path.

    Raises:
        UnknownModelError: a value of none of these forms, or an unknown zoo id / torchvision builder.
    """
    from faultzoo.zoo.registry import list_models

    if not isinstance(spec, str):
        raise UnknownModelError(f"The model must be given as text: a zoo id, torchvision:NAME, module.path:function "
                                f"or file.py:function; found {found(spec)}.")
    if weights is not None and (not isinstance(weights, (str, os.PathLike)) or not isinstance(os.fspath(weights), str)):
        raise CheckpointError(f"weights must be 'default', None or a checkpoint path (str or os.PathLike); found "
                              f"{found(weights)}.")
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 1):
        raise UnknownModelError(f"num_classes must be a positive integer or None; found {found(num_classes)}.")
    text = spec.strip()
    if text.startswith("torchvision:"):
        name = text.split(":", 1)[1]
        _torchvision_builder(name)  # fail now, with the list of names
        return ModelRecipe("torchvision", name, None if weights in (None, "default") else str(weights), num_classes)
    if text in list_models():
        if num_classes is not None:
            raise UnknownModelError(f"--num-classes applies to torchvision models only, not to the zoo id {text!r}.")
        return ModelRecipe("zoo", text, weights if weights is not None else None)
    match = _FACTORY.match(text)
    if match:
        return ModelRecipe("factory", text, None if weights in (None, "default") else str(weights))
    from faultzoo.zoo.registry import _builder  # raises with "did you mean" for a mistyped zoo id

    if "/" in text and not text.endswith(".py") and ":" not in text:
        _builder(text)
    raise UnknownModelError(f"Model {spec!r} is neither a zoo id (see `faultzoo models`), torchvision:NAME "
                            "(a torchvision classification model), nor module.path:function / file.py:function "
                            "(a function of yours that returns a torch.nn.Module).")


def build_model(recipe: ModelRecipe, *, progress: bool = False) -> nn.Module:
    """Build the recipe's model in eval mode, with its weights loaded strictly.

    Raises:
        UnknownModelError: the factory does not import, is not callable, or returns no nn.Module.
        CheckpointError: the checkpoint does not fit (missing/unexpected keys, shape mismatches listed).
    """
    from faultzoo.zoo.checkpoints import load_state_strict, read_checkpoint
    from faultzoo.zoo.registry import get_model

    if recipe.kind == "zoo":
        return get_model(recipe.target, weights=recipe.weights, progress=progress)
    if recipe.kind == "torchvision":
        builder = _torchvision_builder(recipe.target)
        kwargs = {"weights": None}
        if recipe.num_classes is not None:
            kwargs["num_classes"] = recipe.num_classes
        model = builder(**kwargs)
    elif recipe.kind == "factory":
        model = _call_factory(recipe.target)
    else:
        raise UnknownModelError(f"Unknown recipe kind {recipe.kind!r}; expected zoo, torchvision or factory.")
    if recipe.weights is not None:
        try:
            path = Path(recipe.weights).expanduser()
            is_file = path.is_file()
        except (OSError, RuntimeError, ValueError):  # a name too long, '~nobody' (no such home), ...
            is_file = False
        if not is_file:
            raise CheckpointError(f"--weights {recipe.weights}: no such checkpoint file.")
        load_state_strict(model, read_checkpoint(path), source=str(path))
    return model.eval()


def _torchvision_builder(name: str):
    import torchvision.models as tvm

    names = tvm.list_models(module=tvm)
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"torchvision has no classification model {name!r}.{hint} "
                                "See torchvision.models.list_models(module=torchvision.models).")
    return tvm.get_model_builder(name)


def _call_factory(target: str) -> nn.Module:
    module_name, function_name = _FACTORY.match(target).group("module", "function")
    module = _import(module_name, target)
    factory = getattr(module, function_name, None)
    if factory is None:
        raise UnknownModelError(f"{target}: {module_name} has no attribute {function_name!r}.")
    if not callable(factory):
        raise UnknownModelError(f"{target}: {function_name} is a {type(factory).__name__}, not a function.")
    required = [p.name for p in inspect.signature(factory).parameters.values()
                if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if required:
        raise UnknownModelError(f"{target}: the factory must build the model without arguments; it requires "
                                f"{', '.join(required)}.")
    try:
        model = factory()
    except Exception as exc:
        raise UnknownModelError(f"{target}: the factory raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise UnknownModelError(f"{target} returned a {type(model).__name__}, not a torch.nn.Module.")
    return model


def _import(module_name: str, target: str):
    if module_name.endswith(".py"):
        path = Path(module_name).expanduser().resolve()
        if not path.is_file():
            raise UnknownModelError(f"{target}: no such file {path}.")
        name = USER_MODULE_PREFIX + hashlib.sha256(str(path).encode()).hexdigest()[:12]
        try:
            return import_user_file(name, path)
        except Exception as exc:
            raise UnknownModelError(f"{target}: importing {path} failed: {type(exc).__name__}: {exc}") from exc
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownModelError(f"{target}: cannot import {module_name!r} ({exc}). Is it on PYTHONPATH, or "
                                "give a file path: path/to/file.py:function.") from exc
    except Exception as exc:
        raise UnknownModelError(f"{target}: importing {module_name} failed: {type(exc).__name__}: {exc}") from exc


def import_user_file(name: str, path: str | Path):
    """Import the Python file ``path`` as module ``name`` (once per process), so that objects of its classes
    can be pickled here and unpickled in a worker process that imported it under the same name."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def user_modules() -> dict[str, str]:
    """The factory files this process imported by path: module name -> file (for worker processes)."""
    return {name: module.__file__ for name, module in list(sys.modules.items())
            if name.startswith(USER_MODULE_PREFIX) and getattr(module, "__file__", None)}
