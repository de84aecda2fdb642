"""Fault target kinds: where in a model a fault lives, registered once with everything that depends on it.

A target kind says which fault type describes its faults, how its population of possible faults is
enumerated, which columns its faults take in faultzoo's list format, how a fault is injected into a
model and undone, how a list of its faults is checked against a model, and how a campaign groups its
faults into tasks (the fast engines stack the faults of one group). Engines say which target kinds
they run (:class:`faultzoo.backends.EngineEntry` ``targets``); the campaign core asks a fault list's
kind here and never names one.

Registered today: ``weight``, a stored word of a parameter or floating-point buffer (conv and linear
weights by default; biases and batch-norm tensors as target groups). A new kind (activations, say) is
one more :func:`register_target_kind` with its own fault type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from torch import nn

from faultzoo.exceptions import FaultError
from faultzoo.faults.formats import WordFormat, format_of
from faultzoo.faults.inject import injected, target_tensor
from faultzoo.faults.io import OUR_COLUMNS
from faultzoo.faults.model import Fault, FaultList
from faultzoo.faults.targets import select_targets
from faultzoo.faults.validate import validate

__all__ = ["TARGET_KINDS", "WEIGHT", "TargetKind", "register_target_kind", "target_kind", "target_kind_of"]


@dataclass(frozen=True)
class TargetKind:
    """One kind of fault location, with what depends on it."""

    name: str
    summary: str
    fault_type: type  # the class of its faults
    columns: tuple[str, ...]  # its columns in faultzoo-format fault lists
    population: Callable[..., list]  # (model, targets=..., layers=...) -> the eligible locations
    inject: Callable[[nn.Module, object], AbstractContextManager]  # (model, fault) -> the fault applied, then undone
    validate: Callable[..., None]  # (fault_list, model, model_id=...) -> None, or FaultListFormatError
    task_key: Callable[[object], str]  # faults with one key are computed together
    word_format: Callable[[nn.Module, object], WordFormat]  # (model, fault) -> the format of the faulty word


TARGET_KINDS: dict[str, TargetKind] = {}


def register_target_kind(kind: TargetKind) -> TargetKind:
    """Make a target kind known by its name and its fault type."""
    if kind.name in TARGET_KINDS or any(k.fault_type is kind.fault_type for k in TARGET_KINDS.values()):
        raise ValueError(f"target kind {kind.name!r} (faults of type {kind.fault_type.__name__}) is already registered")
    TARGET_KINDS[kind.name] = kind
    return kind


def target_kind(name: str) -> TargetKind:
    """The registered target kind ``name``.

    Raises:
        FaultError: no such kind (the message lists the registered ones).
    """
    if name not in TARGET_KINDS:
        raise FaultError(f"Unknown fault target kind {name!r}; registered: {', '.join(TARGET_KINDS)}.")
    return TARGET_KINDS[name]


def target_kind_of(faults: FaultList | Iterable[object]) -> TargetKind:
    """The target kind of a list's faults (all of one kind).

    Raises:
        FaultError: a fault of no registered kind, or faults of several kinds in one list.
    """
    kinds = {}
    for fault in faults:
        kind = next((k for k in TARGET_KINDS.values() if isinstance(fault, k.fault_type)), None)
        if kind is None:
            raise FaultError(f"{fault!r} is not a fault of any registered target kind ({', '.join(TARGET_KINDS)}).")
        kinds[kind.name] = kind
    if len(kinds) > 1:
        raise FaultError(f"A fault list holds faults of one target kind; this one mixes {', '.join(sorted(kinds))}.")
    return next(iter(kinds.values()), WEIGHT)  # an empty list: the default kind


WEIGHT = register_target_kind(TargetKind(
    name="weight",
    summary="a stored word of a parameter or floating-point buffer (conv/linear weights by default)",
    fault_type=Fault,
    columns=OUR_COLUMNS,
    population=select_targets,
    inject=injected,
    validate=validate,
    task_key=lambda fault: fault.param,  # the fast engines stack the faults of one tensor
    word_format=lambda model, fault: format_of(target_tensor(model, fault.param).dtype),
))
