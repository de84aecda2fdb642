"""Where a fault of a (PyTorch) fault list lands in a Keras twin, and writing its word there, checked.

A fault names a PyTorch tensor element (``layer1.0.conv1.weight``, OIHW index). Its twin element is
the Keras layer holding that module's tensors (the upstream names ``conv2d_3``, ``dense``,
``batch_normalization_2``; see :mod:`faultzoo.keras.naming`), the matching variable, and the index
in Keras order (HWIO for conv kernels, IO for dense kernels; see :mod:`faultzoo.faults.keras`).
Faults are applied to the variable's stored word through its uint32 view, never by arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from torch import nn

from faultzoo.exceptions import ExactnessError, FaultError
from faultzoo.faults import Fault
from faultzoo.faults.formats import apply_fault, format_of
from faultzoo.faults.keras import torch_to_keras_index
from faultzoo.keras.naming import weight_layers

__all__ = ["KerasTarget", "TargetMap", "WordWriter", "faulty_word"]

# PyTorch tensor suffix -> Keras variable, per layer kind.
_VARIABLES = {
    "conv2d": {"weight": "kernel", "bias": "bias"},
    "dense": {"weight": "kernel", "bias": "bias"},
    "batch_normalization": {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
                            "running_var": "moving_variance"},
}


@dataclass(frozen=True)
class KerasTarget:
    """The twin element a fault lands on: Keras layer, variable (``kernel``, ``bias``, ``gamma``, ...)
    and index in Keras order."""

    layer: str
    variable: str
    index: tuple[int, ...]


class TargetMap:
    """PyTorch tensor names -> twin layers and variables, from the PyTorch model the fault list is for."""

    def __init__(self, model: nn.Module):
        self.params = {name: p for name, p in model.state_dict().items()}
        self._where: dict[str, tuple[str, str]] = {}
        for module, w in weight_layers(model).items():
            for suffix, variable in _VARIABLES[w.kind].items():
                self._where[f"{module}.{suffix}"] = (w.keras_name, variable)

    def target(self, fault: Fault) -> KerasTarget:
        """The twin element of a fault.

        Raises:
            FaultError: a tensor that has no twin variable (the twin holds conv, linear and batch-norm
                tensors), or an index outside the tensor.
        """
        where = self._where.get(fault.param)
        if where is None:
            raise FaultError(f"{fault.param!r} has no variable in the Keras twin (the twin holds the conv, linear and "
                             "batch-norm tensors); remove the fault or run it with the PyTorch engines.")
        shape = tuple(self.params[fault.param].shape)
        if len(fault.index) != len(shape) or any(not 0 <= i < n for i, n in zip(fault.index, shape)):
            raise FaultError(f"Index {fault.index} is outside {fault.param!r} of shape {shape}.")
        layer, variable = where
        index = torch_to_keras_index(fault.index) if variable == "kernel" else tuple(fault.index)
        return KerasTarget(layer, variable, index)

    def torch_word(self, fault: Fault) -> int:
        """The stored word of the fault's PyTorch element (uint32)."""
        value = self.params[fault.param][fault.index].detach().cpu().reshape(1).numpy()
        return int(np.ascontiguousarray(value, dtype=np.float32).view(np.uint32)[0])


def faulty_word(word: int, fault: Fault) -> int:
    """The uint32 word with the fault applied (the arithmetic of :func:`faultzoo.faults.formats.apply_fault`).

    Raises:
        FaultError: a bit outside the 32-bit word.
    """
    return apply_fault(word, _FLOAT32.mask(fault.bits), fault.kind)


_FLOAT32 = format_of("float32")  # the twin's words


class WordWriter:
    """Writes faulty words into a twin's variables and puts the golden ones back, checking each bit for bit.

    The golden values of every variable touched are copied once; a restore rewrites the whole variable
    from that copy and reads it back, so no fault can outlive its run.
    """

    def __init__(self, twin):
        self.twin = twin
        self._variables: dict[tuple[str, str], object] = {}
        self._golden: dict[tuple[str, str], np.ndarray] = {}

    def variable(self, target: KerasTarget):
        key = (target.layer, target.variable)
        if key not in self._variables:
            layer = self.twin.get_layer(target.layer)
            found = [v for v in layer.weights if v.name == target.variable]
            if len(found) != 1:
                raise FaultError(f"Keras layer {target.layer!r} has no variable {target.variable!r} (it has "
                                 f"{', '.join(v.name for v in layer.weights) or 'none'}).")
            self._variables[key] = found[0]
            self._golden[key] = np.array(found[0].numpy(), dtype=np.float32, copy=True)
        return self._variables[key]

    def golden(self, target: KerasTarget) -> np.ndarray:
        """The golden values of the target's variable (a private copy: do not modify)."""
        self.variable(target)
        return self._golden[(target.layer, target.variable)]

    def golden_word(self, target: KerasTarget) -> int:
        values = self.golden(target)
        if len(target.index) != values.ndim or any(not 0 <= i < n for i, n in zip(target.index, values.shape)):
            raise FaultError(f"Index {target.index} is outside {target.layer}/{target.variable} of shape "
                             f"{values.shape}.")
        return int(values.view(np.uint32)[target.index])

    @contextmanager
    def injected(self, target: KerasTarget, word: int) -> Iterator[None]:
        """Inside the block the target element holds ``word`` (uint32); the golden variable afterwards.

        Raises:
            ExactnessError: the variable does not read back the written word, or the golden values
                after the restore.
        """
        variable, golden = self.variable(target), self.golden(target)
        faulty = golden.copy()
        faulty.view(np.uint32)[target.index] = word
        variable.assign(faulty)
        try:
            got = int(np.asarray(variable.numpy()).view(np.uint32)[target.index])
            if got != word:
                raise ExactnessError(f"{target.layer}/{target.variable}{list(target.index)} reads back {got:#010x} "
                                     f"after writing {word:#010x}.")
            yield
        finally:
            variable.assign(golden)
            back = np.asarray(variable.numpy())
            if not np.array_equal(back.view(np.uint32), golden.view(np.uint32)):
                raise ExactnessError(f"{target.layer}/{target.variable} does not hold its golden values after the "
                                     "restore; the twin is no longer the golden model.")
