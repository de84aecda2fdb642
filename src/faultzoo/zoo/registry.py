"""The model registry: ids like ``cifar10/resnet20`` -> architecture + weights descriptor."""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from faultzoo import _hub
from faultzoo._registry import BACKENDS
from faultzoo.exceptions import CheckpointError, UnknownDatasetError, UnknownModelError, found
from faultzoo.zoo.architectures import all_architectures
from faultzoo.zoo.checkpoints import load_state_strict, read_checkpoint
from faultzoo.zoo.weights import WEIGHTS, Weights

if TYPE_CHECKING:
    import keras

WeightsArg = str | os.PathLike | Weights | None

# Every zoo model exists in each registered framework backend: PyTorch natively, the others as twins
# converted from it (Keras 3: faultzoo.keras, needs the `tf` extra), found through the backend registry.
NATIVE_FRAMEWORK = "torch"
FRAMEWORKS = BACKENDS.names()


@dataclass(frozen=True)
class ModelInfo:
    """What a study needs to know about a zoo model before loading it."""

    model_id: str
    dataset: str
    architecture: str
    num_classes: int
    input_size: tuple[int, int, int]
    num_params: int  # every parameter element (weights, biases, BN affine)
    num_weights: int  # elements of tensors with dim >= 2: the upstream fault population unit
    weights: Weights | None
    frameworks: tuple[str, ...] = FRAMEWORKS

    @property
    def claimed_top1(self) -> float | None:
        return self.weights.claimed_top1 if self.weights else None

    def to_dict(self) -> dict:
        return {
            "model_id": self.model_id, "dataset": self.dataset, "architecture": self.architecture,
            "num_classes": self.num_classes, "input_size": list(self.input_size), "num_params": self.num_params,
            "num_weights": self.num_weights, "claimed_top1": self.claimed_top1,
            "weights": self.weights.to_dict() if self.weights else None,
            "frameworks": list(self.frameworks),
        }


@dataclass(frozen=True)
class ModelProvenance:
    """Attached to every model get_model returns (``model.faultzoo``): which function, which weights."""

    model_id: str
    weights_source: str  # "untrained", a URL/descriptor name, or a file path
    weights_file_sha256: str | None
    state_sha256: str  # hash of the loaded tensors themselves: identifies the function computed

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@cache
def _table() -> dict[str, Callable[[], nn.Module]]:
    return all_architectures()


def list_models(dataset: str | None = None, pattern: str | None = None) -> list[str]:
    """Sorted model ids, optionally of one dataset and/or matching a glob pattern (``'*/resnet*'``).

    ``dataset`` is a dataset name, in any case (``'cifar10'``, ``'CIFAR10'``).

    Raises:
        UnknownDatasetError: ``dataset`` is no dataset faultzoo knows (the message lists them).
        UnknownModelError: ``pattern`` is not text.
    """
    if dataset is not None and not isinstance(dataset, str):
        raise UnknownDatasetError(f"dataset must be a dataset name such as 'cifar10', or None; found {found(dataset)}.")
    if pattern is not None and not isinstance(pattern, str):
        raise UnknownModelError(f"pattern must be a glob over model ids such as '*/resnet*', or None; "
                                f"found {found(pattern)}.")
    ids = sorted(_table())
    if dataset is not None:
        from faultzoo.data.info import list_datasets, unknown_dataset_message

        name = dataset.strip().lower()
        if name not in list_datasets():
            raise UnknownDatasetError(unknown_dataset_message(dataset))
        ids = [i for i in ids if i.split("/", 1)[0] == name]
    if pattern is not None:
        ids = [i for i in ids if fnmatch.fnmatchcase(i, pattern)]
    return ids


def _check_id(model_id: object) -> str:
    if not isinstance(model_id, str):
        raise UnknownModelError(f"model_id must be a zoo model id (str) such as 'cifar10/resnet20'; found "
                                f"{found(model_id)}. Run `faultzoo models` to list them.")
    return model_id


def _builder(model_id: str) -> Callable[[], nn.Module]:
    table = _table()
    if _check_id(model_id) not in table:
        close = difflib.get_close_matches(model_id, list(table), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownModelError(f"Unknown model {model_id!r}.{hint} Run `faultzoo models` to list the {len(table)} models.")
    return table[model_id]


def model_info(model_id: str) -> ModelInfo:
    """Dataset, classes, input size, parameter and weight counts, weights descriptor and claimed top-1.

    Raises:
        UnknownModelError: ``model_id`` is not a zoo id (the message suggests close ones).
    """
    return _model_info(_check_id(model_id))  # checked first: the cache needs a hashable argument


@cache
def _model_info(model_id: str) -> ModelInfo:
    from faultzoo.data import dataset_info

    build = _builder(model_id)
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = build()
    dataset = model_id.split("/", 1)[0]
    info = dataset_info(dataset)
    return ModelInfo(
        model_id=model_id,
        dataset=dataset,
        architecture=type(model).__name__,
        num_classes=info.num_classes,
        input_size=tuple(info.input_size),
        num_params=sum(p.numel() for p in model.parameters()),
        num_weights=sum(p.numel() for p in model.parameters() if p.dim() >= 2),
        weights=WEIGHTS.get(model_id),
    )


def tensor_names(model_id: str) -> frozenset[str]:
    """Names of the model's parameters and floating-point buffers (built on the meta device: no cost)."""
    return _tensor_names(_check_id(model_id))


@cache
def _tensor_names(model_id: str) -> frozenset[str]:
    with torch.device("meta"):
        model = _builder(model_id)()
    return frozenset([name for name, _ in model.named_parameters()]
                     + [name for name, t in model.named_buffers() if t.is_floating_point()])


def state_sha256(model: nn.Module) -> str:
    """sha256 over names, dtypes, shapes and bytes of the state dict, in order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def get_model(model_id: str, weights: WeightsArg = "default", *, progress: bool = False,
              framework: str = "torch") -> nn.Module | keras.Model:
    """Build a zoo model in eval mode: the PyTorch module, or its Keras 3 twin.

    Args:
        model_id: e.g. ``"cifar10/resnet20"``; see :func:`list_models`.
        weights: ``"default"`` for the upstream checkpoint (downloaded once into the cache, or read
            from ``FAULTZOO_MIRROR``), ``None`` for an untrained network, a path to a checkpoint of
            your own, or a :class:`Weights` descriptor.
        progress: show a download progress bar on stderr.
        framework: ``"torch"`` (an ``nn.Module``) or ``"keras"`` (a ``keras.Model`` taking NHWC
            images, see :mod:`faultzoo.keras`; ``weights`` may then also be a ``.keras``/``.h5`` file).

    Raises:
        UnknownModelError, WeightsUnavailableError, IntegrityError, CheckpointError,
        FrameworkUnavailableError (``framework="keras"`` without TensorFlow).
    """
    if not (isinstance(framework, str) and framework == NATIVE_FRAMEWORK):
        backend = BACKENDS.get(framework)  # the framework's backend converts the native model
        _builder(model_id)  # an unknown id fails here, before the framework loads
        return backend.zoo_model(model_id, weights, progress=progress)
    model = _builder(model_id)()
    if weights is None:
        source, file_hash = "untrained", None
    else:
        path, fmt, source, file_hash = _resolve_weights(model_id, weights, progress)
        load_state_strict(model, read_checkpoint(path, fmt), source=str(path))
    model.eval()
    model.faultzoo = ModelProvenance(model_id, source, file_hash, state_sha256(model))
    return model


def _resolve_weights(model_id: str, weights: WeightsArg, progress: bool) -> tuple[Path, str, str, str]:
    if isinstance(weights, str) and weights == "default":
        if model_id not in WEIGHTS:
            raise UnknownModelError(f"Model {model_id!r} has no published weights; use weights=None or a path.")
        weights = WEIGHTS[model_id]
    if isinstance(weights, Weights):
        path = _hub.fetch_file(weights.urls, weights.sha256, weights.filename,
                               progress=_progress_bar(weights.filename) if progress else None)
        return path, weights.checkpoint_format, weights.urls[0], _hub.sha256_file(path)
    if not isinstance(weights, (str, os.PathLike)) or not isinstance(os.fspath(weights), str):
        raise UnknownModelError(f"weights must be 'default', None, a checkpoint path (str or os.PathLike) or a "
                                f"Weights descriptor; found {found(weights)}.")
    try:
        path = Path(weights).expanduser()
        is_file = path.is_file()
    except (OSError, RuntimeError, ValueError):  # a name too long, '~nobody' (no such home), ...
        is_file = False
    if not is_file:
        shown = str(weights) if len(str(weights)) <= 200 else str(weights)[:197] + "..."
        raise UnknownModelError(
            f"weights={shown!r} is neither 'default', None nor an existing checkpoint file."
        )
    try:
        return path, "auto", str(path.resolve()), _hub.sha256_file(path)
    except OSError as exc:  # a file we may not read
        raise CheckpointError(f"Cannot read checkpoint {path}: {exc.strerror or exc}.") from None


def _progress_bar(name: str) -> Callable[[int, int | None], None]:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                   transient=True)
    task = None

    def update(done: int, total: int | None) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(name, total=total)
        bar.update(task, completed=done)
        if total is not None and done >= total:
            bar.stop()

    return update
