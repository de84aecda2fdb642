"""Named checkpoint adapters: turn each upstream file layout into a plain state dict, then load strictly."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from faultzoo.exceptions import CheckpointError

StateDict = dict[str, torch.Tensor]


def _strip_module_prefix(state: Mapping[str, torch.Tensor], path: Path) -> StateDict:
    """The state dict with its names checked (str -> tensor) and DataParallel's "module." prefixes removed."""
    bad = next(((k, v) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)), None)
    if bad is not None:
        key, value = bad
        raise CheckpointError(f"Checkpoint {path}: expected a state dict of tensor names (str) -> tensors, found "
                              f"the entry {_short(key)} -> {type(value).__name__}. Save model.state_dict().")
    # Upstream checkpoints were saved under nn.DataParallel, which prefixes every key with "module.".
    return {k.removeprefix("module."): v for k, v in state.items()}


def _short(value: object, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # an int too long for repr
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _take(key: str) -> Callable[[object, Path], StateDict]:
    def adapter(obj: object, path: Path) -> StateDict:
        if not isinstance(obj, Mapping) or key not in obj:
            found = sorted(map(_short, obj))[:8] if isinstance(obj, Mapping) else type(obj).__name__
            raise CheckpointError(f"Checkpoint {path}: expected a dict with key {key!r}, found {found}.")
        if not isinstance(obj[key], Mapping):
            raise CheckpointError(f"Checkpoint {path}: expected a state dict under {key!r}, found "
                                  f"{type(obj[key]).__name__}.")
        return _strip_module_prefix(obj[key], path)
    return adapter


def _raw_state_dict(obj: object, path: Path) -> StateDict:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"Checkpoint {path}: expected a state dict (name -> tensor), found {type(obj).__name__}.")
    return _strip_module_prefix(obj, path)


def _auto(obj: object, path: Path) -> StateDict:
    """A user's own checkpoint: a raw state dict or one wrapped under 'state_dict', 'net' or 'model'."""
    if isinstance(obj, Mapping):
        for key in ("state_dict", "net", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                return _strip_module_prefix(obj[key], path)
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
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Checkpoint not found: {path}.")
    if path.is_dir():
        raise CheckpointError(f"Checkpoint {path} is a folder; pass the checkpoint file inside it.")
    try:
        size = path.stat().st_size
        looks_right = _looks_like_torch_file(path)
    except OSError as exc:  # no permission to read it, ...
        raise CheckpointError(f"Cannot read checkpoint {path}: {exc.strerror or exc}.") from None
    if size == 0:
        raise CheckpointError(f"Checkpoint {path} is empty (0 bytes): an interrupted download or copy? Fetch it again.")
    if not looks_right:
        raise CheckpointError(f"{path} is not a PyTorch checkpoint ({size:,} bytes; neither a torch.save zip archive "
                              "nor a legacy pickle). Pass a .pth/.th/.pt file written by torch.save.")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused or corrupt file
        raise CheckpointError(f"Cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    return ADAPTERS[checkpoint_format](obj, path)


def _looks_like_torch_file(path: Path) -> bool:
    """torch.save writes a zip archive; the legacy format starts with a pickle protocol opcode (0x80)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


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
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # a tensor torch cannot copy into the parameter (its dtype, ...)
        raise CheckpointError(f"Checkpoint {source} does not fit the model: {str(exc)[:300]}") from None


def _few(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]"
