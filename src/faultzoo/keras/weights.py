"""Tensors into a twin: from the PyTorch model (layout changes only) or from Keras files, strictly.

Every twin layer with weights must receive exactly its tensors (names, shapes, float32); nothing is
skipped, nothing is left at its initial value, and nothing is assigned until everything fits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from faultzoo.exceptions import CheckpointError
from faultzoo.keras.naming import weight_layers

__all__ = [
    "assign_layer_arrays", "check_layer_arrays", "keras_weights_sha256", "torch_layer_arrays", "transfer_weights",
]

# Keras variable order per layer kind, and the Keras-2 H5 variable names (``kernel:0`` etc.).
VARIABLES = {
    "conv2d": ("kernel", "bias"),
    "dense": ("kernel", "bias"),
    "batch_normalization": ("gamma", "beta", "moving_mean", "moving_variance"),
}


def _numpy(t: torch.Tensor) -> np.ndarray:
    # An exact float32 copy: the transfer only ever permutes axes, never rounds.
    if t.dtype != torch.float32:
        raise CheckpointError(f"Keras twins hold float32 tensors, found {t.dtype}; convert the model to float32.")
    return np.ascontiguousarray(t.detach().cpu().numpy())


def _module_arrays(module: nn.Module, kind: str) -> dict[str, np.ndarray]:
    if kind == "conv2d":
        arrays = {"kernel": _numpy(module.weight.permute(2, 3, 1, 0))}  # OIHW -> HWIO (grouped: HW(I/g)O)
    elif kind == "dense":
        arrays = {"kernel": _numpy(module.weight.t())}  # (out, in) -> (in, out)
    else:
        arrays = {"moving_mean": _numpy(module.running_mean), "moving_variance": _numpy(module.running_var)}
        if module.affine:
            arrays |= {"gamma": _numpy(module.weight), "beta": _numpy(module.bias)}
        return arrays
    if module.bias is not None:
        arrays["bias"] = _numpy(module.bias)
    return arrays


def torch_layer_arrays(model: nn.Module) -> dict[str, dict[str, np.ndarray]]:
    """Keras layer name -> {variable: array} holding the PyTorch model's tensors in Keras layout."""
    modules = dict(model.named_modules())
    return {w.keras_name: _module_arrays(modules[w.module], w.kind) for w in weight_layers(model).values()}


def _expected(layer) -> list[tuple[str, tuple[int, ...]]]:
    """(variable name, shape) of a layer's weights, in the layer's own order."""
    out = []
    for variable in layer.weights:
        short = variable.path.rsplit("/", 1)[-1].split(":")[0]
        out.append((short, tuple(int(d) for d in variable.shape)))
    return out


def assign_layer_arrays(twin, arrays: Mapping[str, Mapping[str, np.ndarray] | Sequence[np.ndarray]], *,
                        source: str) -> None:
    """Set every weighted layer of ``twin`` from ``arrays``, all or nothing.

    ``arrays`` maps a layer name to its variables, by name (``{"kernel": ..., "bias": ...}``) or as a
    list in the layer's own variable order (how Keras-3 files store them).

    Raises:
        CheckpointError: a twin layer or variable missing from ``arrays``, an extra layer or
            variable, a shape or dtype that differs; the message names each and the ``source``.
    """
    for layer, values in check_layer_arrays(twin, arrays, source=source):
        layer.set_weights(values)


def check_layer_arrays(twin, arrays: Mapping[str, Mapping[str, np.ndarray] | Sequence[np.ndarray]], *,
                       source: str) -> list[tuple[object, list[np.ndarray]]]:
    """(layer, arrays in the layer's variable order) for every weighted layer; raises like
    :func:`assign_layer_arrays` when anything does not fit, and assigns nothing."""
    problems: list[str] = []
    plan: list[tuple[object, list[np.ndarray]]] = []
    weighted = {layer.name: layer for layer in twin.layers if layer.weights}
    extra = sorted(set(arrays) - set(weighted))
    missing = sorted(set(weighted) - set(arrays))
    if extra:
        problems.append(f"layers the twin does not have: {_span(extra)}")
    if missing:
        problems.append(f"twin layers without tensors: {_span(missing)}")
    for name in sorted(set(weighted) & set(arrays)):
        given, values = _by_variable(arrays[name], _expected(weighted[name])), []
        for variable, shape in _expected(weighted[name]):
            array = given.pop(variable, None)
            if array is None:
                problems.append(f"{name}/{variable}: missing (expected shape {shape})")
            elif tuple(array.shape) != shape or array.dtype != np.float32:
                found = f"{array.dtype} {tuple(array.shape)}"
                problems.append(f"{name}/{variable}: expected float32 {shape}, found {found}")
            else:
                values.append(array)
        if given:
            problems.append(f"{name}: unexpected variables {sorted(given)}")
        plan.append((weighted[name], values))
    if problems:
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise CheckpointError(f"Weights from {source} do not fit the Keras twin {twin.name!r}: {shown}. "
                              "Check that the file belongs to this model id (layer names and shapes must match).")
    return plan


def _by_variable(arrays, expected: list[tuple[str, tuple[int, ...]]]) -> dict[str, np.ndarray]:
    """Named arrays as given; a list (Keras-3 files store variables by position) named in the layer's order."""
    if isinstance(arrays, Mapping):
        return dict(arrays)
    names = [variable for variable, _ in expected]
    arrays = list(arrays)
    named = dict(zip(names, arrays))
    named.update({f"variable #{i}": a for i, a in enumerate(arrays[len(names):], start=len(names))})
    return named


def _span(names: Sequence[str]) -> str:
    return ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")


def transfer_weights(twin, model: nn.Module) -> None:
    """Copy the PyTorch model's conv, linear and batch-norm tensors into the twin, bit for bit."""
    assign_layer_arrays(twin, torch_layer_arrays(model), source=f"the PyTorch model {type(model).__name__}")


def keras_weights_sha256(twin) -> str:
    """sha256 over every twin variable (path, dtype, shape, bytes), in the twin's order."""
    digest = hashlib.sha256()
    for variable in twin.weights:
        array = np.ascontiguousarray(variable.numpy())
        digest.update(f"{variable.path}|{array.dtype}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()

