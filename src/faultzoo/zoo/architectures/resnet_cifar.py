"""ResNet-(6n+2) with the parameter-free option-A shortcut, for 32x32 and 50x50 inputs.

Provenance: the layout of akamaster/pytorch_resnet_cifar10 (``resnet.py``, BSD-2-Clause as far as
known), as copied into cad-polito-it/dnn-benchmarks for CIFAR10 resnet20/32/44/56/110 and, as a
second copy, GTSRB resnet20. Written from the facts in ARCHITECTURES.md §2, not from the source.

What differs from upstream: the option-A shortcut is a small named module (:class:`ShortcutA`)
instead of a lambda wrapper, so ``torch.fx`` sees it; it has no state, so keys are unchanged. The
flatten is ``torch.flatten`` for both files (upstream CIFAR10 indexes ``[:, :, 0, 0]``, GTSRB uses
``view``; same values). The GTSRB copy applies ReLU functionally instead of through
``relu1``/``relu2`` modules: ``relu_modules=False`` reproduces that module tree.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn


class ShortcutA(nn.Module):
    """Option-A shortcut: keep every second row/column, zero-pad ``pad`` channels on each side."""

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))

    def extra_repr(self) -> str:
        return f"pad={self.pad}"


class BasicBlock(nn.Module):
    """Two 3x3 conv+BN stages; the shortcut is added in place onto the ``bn2`` output."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, relu_modules: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut: nn.Module = ShortcutA(planes // 4)
        else:
            self.shortcut = nn.Sequential()
        # Parameter-free, so absent from state_dict; they only matter for hooks / named_modules.
        self.relu1 = nn.ReLU() if relu_modules else None
        self.relu2 = nn.ReLU() if relu_modules else None

    @staticmethod
    def _relu(module: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) if module is None else module(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._relu(self.relu1, self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)  # in place on the bn2 output, as upstream
        return self._relu(self.relu2, out)


class ResNetCifar(nn.Module):
    """ResNet-``depth`` (depth = 6n+2) with widths 16/32/64 and a global ``avg_pool2d`` head.

    Args:
        depth: 20, 32, 44, 56, 110, ... (n = (depth-2)/6 blocks per stage).
        num_classes: size of the ``linear`` head.
        relu_modules: register ``relu1``/``relu2`` in each block (CIFAR10 file) or use
            functional ReLU (GTSRB file). Same function either way.
    """

    def __init__(self, depth: int = 20, *, num_classes: int = 10, relu_modules: bool = True) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"ResNetCifar: depth {depth} is not 6n+2 with n >= 1; use 20, 32, 44, 56, 110, ...")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes = 16
        for index, (planes, stride) in enumerate(((16, 1), (32, 2), (64, 2)), start=1):
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(BasicBlock(in_planes, planes, s, relu_modules))
                in_planes = planes
            setattr(self, f"layer{index}", nn.Sequential(*blocks))
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        # Kernel = current width, read at run time (8 for 32x32, 13 for 50x50); fx records it
        # as a size() call, so traced graphs stay shape-generic like upstream.
        out = F.avg_pool2d(out, out.size(3))
        return self.linear(torch.flatten(out, 1))


ARCHITECTURES = {
    **{f"cifar10/resnet{d}": partial(ResNetCifar, depth=d, num_classes=10) for d in (20, 32, 44, 56, 110)},
    "gtsrb/resnet20": partial(ResNetCifar, depth=20, num_classes=43, relu_modules=False),
}
