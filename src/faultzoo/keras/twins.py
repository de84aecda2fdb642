"""Keras twins of zoo models: the PyTorch model translated, its tensors transferred, provenance attached."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from faultzoo import _hub
from faultzoo.keras._tf import require_keras, versions
from faultzoo.keras.files import is_keras_file, read_keras_weights
from faultzoo.keras.translate import translate
from faultzoo.keras.weights import assign_layer_arrays, check_layer_arrays, keras_weights_sha256, torch_layer_arrays
from faultzoo.zoo.architectures import all_architectures

__all__ = ["TwinProvenance", "convert", "get_keras_model"]


@dataclass(frozen=True)
class TwinProvenance:
    """Attached to every twin (``twin.faultzoo``): which model, which weights, which Keras."""

    model_id: str | None
    weights_source: str  # "untrained", the PyTorch checkpoint's URL/path, or the Keras file's path
    weights_file_sha256: str | None
    torch_state_sha256: str | None  # the PyTorch model the tensors came from (None: read from a Keras file)
    keras_weights_sha256: str  # every twin variable: identifies the function computed
    keras: str
    tensorflow: str
    backend: str
    framework: str = "keras"

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def convert(model: nn.Module, input_size: Sequence[int], *, name: str = "twin"):
    """A Keras 3 model computing ``model`` (eval mode), with its tensors copied bit for bit.

    Args:
        model: A traceable PyTorch model (``torch.fx``) taking N×C×H×W images and returning logits.
        input_size: ``(C, H, W)``; the twin takes ``(N, H, W, C)``.
        name: The Keras model's name.

    Returns:
        A built, non-trainable ``keras.Model`` in inference form (batch norm on running
        statistics, dropout removed) whose conv/dense/batch-norm layers carry the upstream names.

    Raises:
        TranslationError, CheckpointError, FrameworkUnavailableError.
    """
    arrays = torch_layer_arrays(model)
    # The variables are created holding these arrays (half the cost of creating then assigning);
    # the strict check then proves every weighted layer got exactly its tensors.
    twin = translate(model, input_size, name=name, initial=arrays)
    check_layer_arrays(twin, arrays, source=f"the PyTorch model {type(model).__name__}")
    twin.trainable = False  # batch norm stays in inference mode even if called with training=True
    return twin


def get_keras_model(model_id: str, weights="default", *, progress: bool = False):
    """The Keras twin of a zoo model (``faultzoo.get_model(..., framework="keras")`` calls this).

    Args:
        model_id: e.g. ``"cifar10/resnet20"``.
        weights: As for the PyTorch model (``"default"``, ``None``, a PyTorch checkpoint path, a
            ``Weights`` descriptor), or a Keras file (``.keras``, ``.h5``, ``.weights.h5``) whose
            tensors are loaded by layer name and shape, strictly.
        progress: show a download progress bar.

    Raises:
        UnknownModelError, WeightsUnavailableError, IntegrityError, CheckpointError,
        TranslationError, FrameworkUnavailableError.
    """
    from faultzoo.zoo.registry import get_model, model_info

    require_keras()  # fail on a missing TensorFlow before any download or build
    info = model_info(model_id)
    name = model_id.replace("/", "_")
    if is_keras_file(weights):
        path = Path(weights).expanduser()
        arrays = read_keras_weights(path)  # refuses an unreadable file before building anything
        with torch.device("meta"):  # the architecture only: every value comes from the file
            architecture = all_architectures()[model_id]().eval()
        twin = translate(architecture, info.input_size, name=name)
        assign_layer_arrays(twin, arrays, source=str(path))
        twin.trainable = False
        source, file_hash, state_hash = str(path.resolve()), _hub.sha256_file(path), None
    else:
        model = get_model(model_id, weights=weights, progress=progress)
        twin = convert(model, info.input_size, name=name)
        prov = model.faultzoo
        source, file_hash, state_hash = prov.weights_source, prov.weights_file_sha256, prov.state_sha256
    twin.faultzoo = TwinProvenance(model_id, source, file_hash, state_hash, keras_weights_sha256(twin), **versions())
    return twin
