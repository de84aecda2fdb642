"""The settings that decide the bits of every logit: applied, recorded, and versions for provenance."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["numerics_settings", "torch_threads", "versions"]


def numerics_settings(device: torch.device, *, tf32: bool, threads: int | None) -> dict:
    """Apply and record the settings that decide the bits of every logit."""
    if threads:
        torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        or platform.machine(),
        "dtype": "float32",
        "tf32": tf32,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "mkldnn": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
        "threads": torch.get_num_threads(),
    }


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Use ``count`` intra-op threads inside the block (None: leave as is), then restore the caller's."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def versions() -> dict:
    """Versions of the libraries whose code computes the results."""
    import numpy
    import torchvision

    from faultzoo import __version__

    return {"faultzoo": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}
