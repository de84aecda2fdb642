"""Checking a fault list against a model: layer exists, index in bounds, bit inside the word, ids unique."""

from __future__ import annotations

import difflib

from torch import nn

from faultzoo.exceptions import FaultListFormatError, found
from faultzoo.faults._args import module
from faultzoo.faults.bits import LAYOUTS
from faultzoo.faults.model import FaultList

MAX_REPORTED = 10


def _where(fault_list: FaultList, position: int) -> str:
    source = fault_list.meta.source_file or "<fault list>"
    ident = fault_list.ids[position] if fault_list.ids is not None else position
    if fault_list.lines is not None:
        return f"{source}, line {fault_list.lines[position]} (Injection {ident})"
    return f"{source}, row {position} (Injection {ident})"


def _raise(fault_list: FaultList, problems: list[str], total: int) -> None:
    more = f"\n  ... and {total - len(problems)} more" if total > len(problems) else ""
    source = fault_list.meta.source_file or "the fault list"
    head = f"{total} problem{'s' if total != 1 else ''} in {source}"
    raise FaultListFormatError(head + ":\n  " + "\n  ".join(problems) + more)


def _did_you_mean(name: str, tensors: dict) -> str:
    close = difflib.get_close_matches(name, list(tensors), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


def check_unique_ids(fault_list: FaultList) -> None:
    """Raise FaultListFormatError if two rows share an Injection id."""
    first: dict[int, int] = {}
    problems: list[str] = []
    total = 0
    for pos, ident in enumerate(fault_list.ids or ()):
        if ident in first:
            total += 1
            if len(problems) < MAX_REPORTED:
                problems.append(f"{_where(fault_list, pos)}: duplicate Injection id {ident}; expected unique ids, "
                                f"found it first at {_where(fault_list, first[ident])}")
        else:
            first[ident] = pos
    if total:
        _raise(fault_list, problems, total)


def _check_layers_as_a_whole(fault_list: FaultList, tensors: dict, model_id: str | None) -> None:
    """A list whose layers are all unknown was made for another model: say so once, and which models fit."""
    wanted = {fault.param for fault in fault_list.faults}
    if not wanted or wanted & tensors.keys():
        return
    from faultzoo.zoo.registry import list_models, tensor_names

    fits = [other for other in list_models() if wanted <= tensor_names(other)]
    source = fault_list.meta.source_file or "the fault list"
    target = model_id or "this model"
    hint = (f"; its layers match {', '.join(fits)}" if fits else
            f"; no zoo model has all its {len(wanted)} layers (e.g. {sorted(wanted)[0]!r})")
    raise FaultListFormatError(f"{source} was made for another model: none of its {len(fault_list):,} rows' "
                               f"layers exist in {target}{hint}.")


def dedupe_advice(fault_list: FaultList, model_id: str | None = None) -> str:
    """How to drop a list's repeated faults: the `faultzoo faultlist convert` command that writes the list
    without them into a new file beside it (in its own format), or the Python call for a list of no file."""
    import shlex
    from pathlib import Path

    source = fault_list.meta.source_file
    if not source:
        return "FaultList.without_repeats() drops them"
    path = Path(source)
    out = path.with_name(f"{path.stem}_unique{path.suffix or '.csv'}")
    # A Keras list is read through the PyTorch model's layer names: convert needs it.
    model = ""
    if fault_list.meta.source_format == "keras":
        model = f" --model {shlex.quote(model_id or fault_list.meta.model_id or 'MODEL')}"
    return (f"`faultzoo faultlist convert {shlex.quote(str(path))}{model} --dedupe -o {shlex.quote(str(out))}` "
            "writes the list without repeats")


def validate(fault_list: FaultList, model: nn.Module, *, allow_duplicate_faults: bool = False,
             model_id: str | None = None) -> None:
    """Check every fault against the model; raise one error listing the first problems.

    Checks: the tensor exists (parameter or floating-point buffer), the index has the tensor's
    number of dimensions and lies within its shape, the bits exist in its word, Injection ids are
    unique and (unless allowed) no fault repeats.

    Raises:
        FaultListFormatError: naming the file, line and Injection id, what is wrong, expected vs found.
    """
    if not isinstance(fault_list, FaultList):
        raise FaultListFormatError(f"fault_list must be a FaultList; found {found(fault_list)}.")
    module(model, error=FaultListFormatError)
    check_unique_ids(fault_list)
    tensors = {name: (tuple(t.shape), t.dtype) for name, t in model.named_parameters()}
    tensors.update({name: (tuple(t.shape), t.dtype) for name, t in model.named_buffers() if t.is_floating_point()})
    _check_layers_as_a_whole(fault_list, tensors, model_id)
    problems: list[str] = []
    total = 0
    seen: dict[tuple[object, ...], int] = {}

    def report(pos: int, text: str) -> None:
        nonlocal total
        total += 1
        if len(problems) < MAX_REPORTED:
            problems.append(f"{_where(fault_list, pos)}: {text}")

    for pos, fault in enumerate(fault_list.faults):
        if fault.param not in tensors:
            # The fuzzy search costs: only for the rows that will be shown.
            hint = _did_you_mean(fault.param, tensors) if len(problems) < MAX_REPORTED else ""
            report(pos, f"unknown layer {fault.layer!r}: the model has no tensor {fault.param!r}{hint}")
            continue
        shape, dtype = tensors[fault.param]
        if len(fault.index) != len(shape):
            report(pos, f"index {fault.index} of {fault.layer!r} has {len(fault.index)} dimensions; "
                        f"expected {len(shape)} (shape {shape})")
            continue
        bad = [(axis, i, size) for axis, (i, size) in enumerate(zip(fault.index, shape)) if not 0 <= i < size]
        if bad:
            axis, i, size = bad[0]
            report(pos, f"index {fault.index} out of bounds for {fault.layer!r} of shape {shape}: "
                        f"dimension {axis} is {i}, expected 0..{size - 1}")
            continue
        layout = LAYOUTS.get(dtype)
        if layout is None:
            report(pos, f"{fault.param!r} is a {dtype} tensor; bit faults need float32/float16/bfloat16/float64")
            continue
        if fault.bits[-1] >= layout.width:
            report(pos, f"bit {fault.bits[-1]} of {fault.layer!r} is outside its {layout.width}-bit {dtype} word; "
                        f"expected 0..{layout.width - 1}")
            continue
        if not allow_duplicate_faults:
            key = (fault.param, fault.index, fault.bits, fault.kind)
            if key in seen:
                report(pos, f"repeats the fault of {_where(fault_list, seen[key])} ({fault}); remove the repeat "
                            f"({dedupe_advice(fault_list, model_id)})")
            else:
                seen[key] = pos
    if total:
        _raise(fault_list, problems, total)
