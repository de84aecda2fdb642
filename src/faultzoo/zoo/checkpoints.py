"""Named checkpoint adapters: turn each upstream file layout into a plain state dict, then load strictly."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from faultzoo.exceptions import CheckpointError

StateDict = dict[str, torch.Tensor]


def _strip_module_prefix(state: Mapping[str, torch.Tensor]) -> StateDict:
    # Upstream checkpoints were saved under nn.DataParallel, which prefixes every key with "module.".
    return {k.removeprefix("module."): v for k, v in state.items()}


def _take(key: str) -> Callable[[object, Path], StateDict]:
    def adapter(obj: object, path: Path) -> StateDict:
        if not isinstance(obj, Mapping) or key not in obj:
            found = sorted(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
            raise CheckpointError(f"Checkpoint {path}: expected a dict with key {key!r}, found {found}.")
        return _strip_module_prefix(obj[key])
    return adapter


def _raw_state_dict(obj: object, path: Path) -> StateDict:
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"Checkpoint {path}: expected a state dict (name -> tensor), found {type(obj).__name__}.")
    return _strip_module_prefix(obj)


def _auto(obj: object, path: Path) -> StateDict:
    """A user's own checkpoint: a raw state dict or one wrapped under 'state_dict', 'net' or 'model'."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "net", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                return _strip_module_prefix(obj[key])
    return _raw_state_dict(obj, path)


ADAPTERS: dict[str, Callable[[object, Path], StateDict]] = {
    "akamaster_th": _take("state_dict"),  # {'best_prec1', 'state_dict'} with module. prefixes, no BN counters
    "kuangliu_net": _take("net"),  # {'net', 'acc', 'epoch'}
    "state_dict": _raw_state_dict,
    "auto": _auto,
}


def read_checkpoint(path: Path, checkpoint_format: str = "auto") -> StateDict:
    """Read a checkpoint without executing code from it (``weights_only=True``) and adapt it."""
    if checkpoint_format not in ADAPTERS:
        raise CheckpointError(f"Unknown checkpoint format {checkpoint_format!r}; known: {sorted(ADAPTERS)}.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"Checkpoint not found: {path}.") from None
    except Exception as exc:  # unpickling refused or corrupt file
        raise CheckpointError(f"Cannot read checkpoint {path}: {exc}") from exc
    return ADAPTERS[checkpoint_format](obj, path)


def load_state_strict(model: nn.Module, state: Mapping[str, torch.Tensor], *, source: str) -> None:
    """Load with strict key and shape checking; the error lists every problem at once.

    BatchNorm's ``num_batches_tracked`` counters are the one tolerated absence: the akamaster files
    predate them and they play no part in evaluation.
    """
    expected = model.state_dict()
    state = dict(state)
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: expected {tuple(expected[k].shape)}, found {tuple(state[k].shape)}"
        for k in expected if k in state and tuple(expected[k].shape) != tuple(state[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys {_few(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys {_few(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches {_few(shapes)}")
        raise CheckpointError(f"Checkpoint {source} does not fit the model: " + "; ".join(parts) + ".")
    model.load_state_dict(state, strict=True)


def _few(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]"
