"""Network definitions of the zoo, one module per family; no weights, no registry.

Each family module exposes ``ARCHITECTURES``: model id -> zero-argument callable returning an
untrained ``nn.Module`` whose ``state_dict`` keys and forward function match the upstream code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

FAMILIES = ("resnet_cifar", "resnet", "mobilenetv2", "vgg", "densenet", "googlenet")


def all_architectures() -> dict[str, Callable[[], nn.Module]]:
    """Every model id of every family module, in family order."""
    table: dict[str, Callable[[], nn.Module]] = {}
    for family in FAMILIES:
        module = importlib.import_module(f"{__name__}.{family}")
        for model_id, build in module.ARCHITECTURES.items():
            if model_id in table:
                raise RuntimeError(f"model id {model_id!r} defined twice (second in {family})")
            table[model_id] = build
    return table
