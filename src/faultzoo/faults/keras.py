"""PyTorch <-> Keras twin mapping: layer names and kernel index order, as the upstream Keras lists use.

Upstream converted each PyTorch model to Keras with automatic layer names: convolutions become
``conv2d``, ``conv2d_1``, ... and linear layers ``dense``, ``dense_1``, ..., each numbered in the
order of the PyTorch model's ``named_parameters()``. Kernels are stored transposed:
Conv2D (out, in, h, w) -> (h, w, in, out); Dense (out, in) -> (in, out).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from torch import nn

from faultzoo.exceptions import FaultError, found
from faultzoo.faults._args import as_list, module
from faultzoo.faults.model import Fault, FaultKind, FaultList

KERAS_NAME = re.compile(r"^(conv2d|dense)(?:_(\d+))?$")

# PyTorch axis for each Keras axis.
_CONV_TO_KERAS = (2, 3, 1, 0)
_DENSE_TO_KERAS = (1, 0)


class KerasFault(NamedTuple):
    """One row of an upstream Keras fault list."""

    injection: int
    layer: str
    index: tuple[int, ...]
    bit: int


def _keras_kind(module: nn.Module | None, ndim: int) -> str | None:
    if isinstance(module, nn.Conv2d):
        return "conv2d"
    if isinstance(module, nn.Linear):
        return "dense"
    if module is None or not isinstance(module, (nn.modules.conv._ConvNd,)):
        # Shape fallback for custom modules holding plain conv/linear weights.
        return {4: "conv2d", 2: "dense"}.get(ndim)
    return None


def keras_layer_names(model: nn.Module) -> dict[str, str]:
    """PyTorch weight name -> Keras layer name (``{"conv1.weight": "conv2d", "linear.weight": "dense"}``).

    Only conv and linear weights are mapped; biases and other tensors have no Keras list rows.
    """
    module(model)
    modules = dict(model.named_modules())
    counters: dict[str, int] = {}
    mapping: dict[str, str] = {}
    for name, param in model.named_parameters():
        if param.dim() < 2 or not name.endswith(".weight"):
            continue
        kind = _keras_kind(modules.get(name.removesuffix(".weight")), param.dim())
        if kind is None:
            continue
        count = counters.get(kind, 0)
        counters[kind] = count + 1
        mapping[name] = kind if count == 0 else f"{kind}_{count}"
    return mapping


def _index(index: object) -> tuple:
    items = as_list(index)
    if items is None:
        raise FaultError(f"A tensor index must be a sequence of integers such as (3, 0, 2, 1); found "
                         f"{found(index)}.")
    return tuple(items)


def torch_to_keras_index(index: Sequence[int]) -> tuple[int, ...]:
    """(o, i, h, w) -> (h, w, i, o) for conv kernels, (out, in) -> (in, out) for dense kernels."""
    index = _index(index)
    order = {4: _CONV_TO_KERAS, 2: _DENSE_TO_KERAS}.get(len(index))
    if order is None:
        raise FaultError(f"No Keras kernel layout for a {len(index)}-D index {tuple(index)}; "
                         "only conv (4-D) and dense (2-D) weights map to Keras.")
    return tuple(index[axis] for axis in order)


def keras_to_torch_index(index: Sequence[int]) -> tuple[int, ...]:
    """Inverse of torch_to_keras_index."""
    index = _index(index)
    order = {4: _CONV_TO_KERAS, 2: _DENSE_TO_KERAS}.get(len(index))
    if order is None:
        raise FaultError(f"No PyTorch layout for a {len(index)}-D Keras index {tuple(index)}; "
                         "only Conv2D (4-D) and Dense (2-D) kernels are supported.")
    out = [0] * len(index)
    for keras_axis, torch_axis in enumerate(order):
        out[torch_axis] = index[keras_axis]
    return tuple(out)


def to_keras(fault_list: FaultList | Iterable[Fault], model: nn.Module) -> list[KerasFault]:
    """Keras rows (Keras layer name, HWIO/IO index, bit) for a list of single-bit weight bit flips.

    Raises:
        FaultError: a fault on a tensor without a Keras twin (bias, batch norm), a multi-bit fault or
            a stuck-at fault (the upstream Keras list format knows only single bit flips).
    """
    names = keras_layer_names(model)
    faults = as_list(fault_list)
    if faults is None:
        raise FaultError(f"fault_list must be a FaultList or an iterable of Fault; found {found(fault_list)}.")
    bad = next((f for f in faults if not isinstance(f, Fault)), None)
    if bad is not None:
        raise FaultError(f"fault_list must hold Fault objects; found {found(bad)}.")
    ids = fault_list.ids if isinstance(fault_list, FaultList) else range(len(faults))
    rows: list[KerasFault] = []
    for injection, fault in zip(ids, faults):  # type: ignore[arg-type]
        if fault.param not in names:
            raise FaultError(f"Injection {injection}: {fault.param!r} has no Keras twin layer; the Keras list format "
                             "covers conv and linear weights only (use the faultzoo format).")
        if fault.kind is not FaultKind.BITFLIP:
            raise FaultError(f"Injection {injection}: the Keras list format holds bit flips only, found "
                             f"{fault.kind.value}; use the faultzoo format.")
        rows.append(KerasFault(injection, names[fault.param], torch_to_keras_index(fault.index), fault.bit))
    return rows


def from_keras(rows: Iterable[tuple[str, Sequence[int], int]], model: nn.Module) -> list[Fault]:
    """Faults on the PyTorch model for Keras rows (layer, index, bit).

    Raises:
        FaultError: a Keras layer name that the model has no twin for.
    """
    inverse = keras_name_to_param(model)
    out = []
    listed = as_list(rows)
    if listed is None:
        raise FaultError(f"rows must be an iterable of (Keras layer, index, bit) rows; found {found(rows)}.")
    rows = listed
    for row in rows:
        try:
            if isinstance(row, (str, bytes)):
                raise TypeError
            layer, index, bit = row
        except (TypeError, ValueError):
            raise FaultError(f"A Keras row must be (layer, index, bit) such as ('conv2d', (1, 1, 0, 3), 31); "
                             f"found {found(row)}.") from None
        if not isinstance(layer, str) or layer not in inverse:
            raise FaultError(f"Keras layer {found(layer)} has no twin in the model (it has {_span(inverse)}).")
        out.append(Fault(inverse[layer], keras_to_torch_index(index), (bit,), FaultKind.BITFLIP))
    return out


def keras_name_to_param(model: nn.Module) -> dict[str, str]:
    """Keras layer name -> PyTorch weight name."""
    return {keras: torch_name for torch_name, keras in keras_layer_names(model).items()}


def _span(inverse: Mapping[str, str]) -> str:
    names = list(inverse)
    if not names:
        return "no conv or linear layer"
    convs = [n for n in names if n.startswith("conv2d")]
    dense = [n for n in names if n.startswith("dense")]
    parts = []
    if convs:
        parts.append(f"{convs[0]}..{convs[-1]}" if len(convs) > 1 else convs[0])
    if dense:
        parts.append(f"{dense[0]}..{dense[-1]}" if len(dense) > 1 else dense[0])
    return ", ".join(parts)
