"""Applying one fault to a model in place, and undoing it exactly."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from faultzoo.exceptions import FaultError, found
from faultzoo.faults._args import module
from faultzoo.faults.bits import corrupt, same_bits, word_width
from faultzoo.faults.model import Fault


def target_tensor(model: nn.Module, name: str) -> torch.Tensor:
    """The parameter or buffer called ``name`` (e.g. ``"conv1.weight"``, ``"bn1.running_var"``).

    Raises:
        FaultError: no such tensor; the message lists the closest names.
    """
    try:
        return model.get_parameter(name)
    except AttributeError:
        pass
    try:
        return model.get_buffer(name)
    except AttributeError:
        names = [n for n, _ in model.named_parameters()] + [n for n, _ in model.named_buffers()]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise FaultError(f"The model has no parameter or buffer {name!r}.{hint}") from None


def check_fault(tensor: torch.Tensor, fault: Fault) -> None:
    """Raise FaultError if the fault's index or bits do not fit the tensor."""
    if len(fault.index) != tensor.dim():
        raise FaultError(f"Fault index {fault.index} of {fault.param!r} has {len(fault.index)} dimensions; "
                         f"the tensor has {tensor.dim()} (shape {tuple(tensor.shape)}).")
    for axis, (i, size) in enumerate(zip(fault.index, tensor.shape)):
        if not 0 <= i < size:
            raise FaultError(f"Fault index {fault.index} is out of bounds for {fault.param!r} of shape "
                             f"{tuple(tensor.shape)}: dimension {axis} is {i}, expected 0..{size - 1}.")
    width = word_width(tensor.dtype)
    if fault.bits[-1] >= width:
        raise FaultError(f"Fault bits {fault.bits} of {fault.param!r} exceed its {width}-bit {tensor.dtype} word; "
                         f"valid bits are 0..{width - 1}.")


def _resolve(model: nn.Module, fault: Fault) -> torch.Tensor:
    module(model)
    if not isinstance(fault, Fault):
        raise FaultError(f"fault must be a Fault (e.g. Fault('conv1.weight', (0, 0, 1, 1), (30,)) or a row of a "
                         f"FaultList); found {found(fault)}.")
    tensor = target_tensor(model, fault.param)
    check_fault(tensor, fault)
    return tensor


def faulty_value(model: nn.Module, fault: Fault) -> torch.Tensor:
    """The value the faulty word would hold: a 0-d tensor of the tensor's dtype (model untouched)."""
    tensor = _resolve(model, fault)
    return corrupt(tensor.detach()[fault.index].clone(), fault.bits, fault.kind)


def is_noop(model: nn.Module, fault: Fault) -> bool:
    """Whether the fault leaves the stored word unchanged (e.g. stuck-at-1 on a bit already 1)."""
    tensor = _resolve(model, fault)
    original = tensor.detach()[fault.index]
    return same_bits(original, corrupt(original, fault.bits, fault.kind))


@contextmanager
def injected(model: nn.Module, fault: Fault) -> Iterator[torch.Tensor]:
    """Apply a fault in place for the duration of a ``with`` block, then restore the word.

    Edits the one element under ``no_grad``, yields the faulty value (0-d tensor), and on exit
    writes the original word back and checks it is bit-identical.

    Raises:
        FaultError: the fault does not fit the model, or the restored word differs from the
            original (the model is then in an unknown state: rebuild it).
    """
    tensor = _resolve(model, fault)
    with torch.no_grad():
        original = tensor[fault.index].clone()
        faulty = corrupt(original, fault.bits, fault.kind)
        tensor[fault.index] = faulty
    try:
        yield faulty
    finally:
        with torch.no_grad():
            tensor[fault.index] = original
            restored = tensor[fault.index]
        if not same_bits(restored, original):
            raise FaultError(f"Restoring {fault} failed: the word reads {restored.item()!r} instead of the original "
                             f"{original.item()!r}. The model is corrupted; rebuild it before further use.")
