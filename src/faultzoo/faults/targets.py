"""Which tensors of a model may hold faults: target groups, layer-name patterns, bit ranges."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from faultzoo.exceptions import FaultError, found
from faultzoo.faults._args import module as check_model
from faultzoo.faults.bits import word_width

# "weights" is upstream's choice: every parameter with dim >= 2 (conv and linear weights).
TARGET_GROUPS = ("weights", "bias", "bn", "bn-stats")
DEFAULT_TARGETS = ("weights",)

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm,)


@dataclass(frozen=True)
class Target:
    """One tensor that faults may hit."""

    param: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    group: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def layer(self) -> str:
        return self.param.removesuffix(".weight")

    @property
    def width(self) -> int:
        return word_width(self.dtype)


def _group_of(module: nn.Module, local: str, tensor: torch.Tensor, is_param: bool) -> str | None:
    if not tensor.is_floating_point():
        return None
    if isinstance(module, _NORM_TYPES):
        if is_param:
            return "bn"
        return "bn-stats" if local in ("running_mean", "running_var") else None
    if not is_param:
        return None
    if tensor.dim() >= 2:
        return "weights"
    return "bias" if local == "bias" else None


def normalize_targets(targets: str | Iterable[str] | None) -> tuple[str, ...]:
    """Parse ``"weights,bias"`` or a sequence of group names; check they are known."""
    if targets is None:
        return DEFAULT_TARGETS
    items = [t.strip() for t in targets.split(",")] if isinstance(targets, str) else _strings("targets", targets)
    items = [t for t in items if t]
    if "all" in items:
        items = list(TARGET_GROUPS)
    unknown = [t for t in items if t not in TARGET_GROUPS]
    if unknown or not items:
        raise FaultError(f"Unknown target group(s) {unknown or items!r}; "
                         f"choose from {', '.join(TARGET_GROUPS)} or all.")
    return tuple(dict.fromkeys(items))


def normalize_layers(layers: str | Iterable[str] | None) -> tuple[str, ...]:
    """Parse comma-separated glob patterns (``"layer1.*,linear"``) into a tuple (empty: no filter)."""
    if layers is None:
        return ()
    items = layers.split(",") if isinstance(layers, str) else _strings("layers", layers)
    return tuple(p.strip() for p in items if p.strip())


def _strings(name: str, value: object) -> list[str]:
    """An iterable of names (a list or tuple of str) as a list; anything else raises FaultError."""
    example = "'weights,bias' or ['weights', 'bias']" if name == "targets" else "'layer1.*,linear' or ['conv1']"
    try:
        if isinstance(value, (bytes, bytearray, Mapping)):
            raise TypeError
        items = list(value)  # type: ignore[call-overload]
    except TypeError:  # not iterable (a 0-d array or tensor too)
        raise FaultError(f"{name} must be comma-separated text or a sequence of names, e.g. {example}; "
                         f"found {found(value)}.") from None
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        raise FaultError(f"{name} must hold names (str), e.g. {example}; found {found(bad[0])} in {found(value)}.")
    return items


def model_targets(model: nn.Module) -> list[Target]:
    """Every floating-point tensor that belongs to a target group, in ``state_dict`` order."""
    chosen: list[Target] = []
    seen: set[int] = set()
    for mod_name, module in model.named_modules():
        prefix = f"{mod_name}." if mod_name else ""
        for local, tensor, is_param in (
            *((n, t, True) for n, t in module.named_parameters(recurse=False)),
            *((n, t, False) for n, t in module.named_buffers(recurse=False)),
        ):
            if tensor is None or id(tensor) in seen:  # shared tensors count once, as named_parameters does
                continue
            seen.add(id(tensor))
            group = _group_of(module, local, tensor, is_param)
            if group is not None:
                chosen.append(Target(prefix + local, tuple(tensor.shape), tensor.dtype, group))
    return chosen


def select_targets(
    model: nn.Module,
    targets: str | Iterable[str] | None = None,
    layers: str | Iterable[str] | None = None,
) -> list[Target]:
    """Tensors of the chosen groups whose layer or tensor name matches one of the glob patterns.

    Args:
        model: the network.
        targets: groups: ``weights`` (dim >= 2: conv and linear weights, the default), ``bias``
            (conv/linear biases), ``bn`` (batch-norm weight and bias), ``bn-stats`` (running mean
            and variance), or ``all``.
        layers: fnmatch patterns matched against the layer name (``features.0``) and the tensor
            name (``features.0.weight``); comma-separated text or a sequence. None: all layers.

    Raises:
        FaultError: an unknown group, a pattern that matches nothing, or an empty selection.
    """
    check_model(model)
    groups = normalize_targets(targets)
    patterns = normalize_layers(layers)
    candidates = [t for t in model_targets(model) if t.group in groups]
    if not patterns:
        chosen = candidates
    else:
        def matches(t: Target, pattern: str) -> bool:
            return fnmatch.fnmatchcase(t.layer, pattern) or fnmatch.fnmatchcase(t.param, pattern)

        unmatched = [p for p in patterns if not any(matches(t, p) for t in candidates)]
        if unmatched:
            sample = ", ".join(t.layer for t in candidates[:6])
            raise FaultError(f"Layer pattern(s) {unmatched!r} match no {'/'.join(groups)} tensor of the model; "
                             f"layers look like: {sample}, ... (fnmatch globs, e.g. 'layer1.*').")
        chosen = [t for t in candidates if any(matches(t, p) for p in patterns)]
    if not chosen:
        raise FaultError(f"The model has no tensor in target group(s) {', '.join(groups)}.")
    return chosen


def check_bits_fit(chosen: Sequence[Target], bits: Sequence[int]) -> None:
    """Raise FaultError if a selected bit does not exist in a selected tensor's word."""
    for t in chosen:
        if bits and bits[-1] >= t.width:
            raise FaultError(f"Bit {bits[-1]} does not exist in {t.param!r} ({t.dtype}, {t.width}-bit words); "
                             f"choose bits 0..{t.width - 1}.")
