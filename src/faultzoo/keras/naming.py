"""Which Keras layer of a twin holds which PyTorch module's tensors: the upstream automatic names.

Convolutions and linear layers take the names the Keras fault lists use (``conv2d``, ``conv2d_1``,
..., ``dense``, ...; see :func:`faultzoo.faults.keras_layer_names`). Batch norms are numbered the
same way (``batch_normalization``, ``batch_normalization_1``, ...), in module order, which is the
order Keras' automatic naming gave them when upstream converted the models.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import nn

from faultzoo.faults.keras import KERAS_NAME, keras_layer_names

__all__ = ["WeightLayer", "weight_layers"]

_BATCH_NORM = "batch_normalization"


class WeightLayer(NamedTuple):
    """One PyTorch module with tensors and the Keras layer that holds them."""

    module: str  # PyTorch module path, e.g. "layer1.0.conv1"
    keras_name: str  # e.g. "conv2d_3"
    kind: str  # "conv2d", "dense" or "batch_normalization"


def _numbered(kind: str, count: int) -> str:
    return kind if count == 0 else f"{kind}_{count}"


def weight_layers(model: nn.Module) -> dict[str, WeightLayer]:
    """PyTorch module path -> :class:`WeightLayer`, for every conv, linear and batch-norm module."""
    out: dict[str, WeightLayer] = {}
    for param, keras_name in keras_layer_names(model).items():
        module = param.removesuffix(".weight")
        out[module] = WeightLayer(module, keras_name, KERAS_NAME.match(keras_name).group(1))
    count = 0
    for path, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d):
            out[path] = WeightLayer(path, _numbered(_BATCH_NORM, count), _BATCH_NORM)
            count += 1
    return out
