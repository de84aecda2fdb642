"""MobileNetV2 for 32x32 inputs (kuangliu layout).

Provenance: the layout of kuangliu/pytorch-cifar (``models/mobilenetv2.py``, MIT licence), as used
by cad-polito-it/dnn-benchmarks for CIFAR10 mobilenetv2. Written from the facts in
ARCHITECTURES.md §4, not from the source. Differences from torchvision's MobileNetV2: stem and
second stage at stride 1, plain ReLU (not ReLU6), an expansion conv even when t = 1, and 1x1
conv+BN projection shortcuts on stride-1 blocks whose width changes.

What differs from upstream: nothing in the function or the keys.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

# (expansion t, out channels, blocks, first stride) per stage; stage 2 has stride 1 for CIFAR.
CIFAR_CFG: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


class Block(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, 1x1 linear projection."""

    def __init__(self, in_planes: int, out_planes: int, expansion: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        planes = expansion * in_planes
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, groups=planes, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride == 1 and in_planes != out_planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, bias=False), nn.BatchNorm2d(out_planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        # Branch on a constructor constant, not on data: fx records only the taken path.
        if self.stride == 1:
            out = out + self.shortcut(x)
        return out


class MobileNetV2(nn.Module):
    """Stem ``conv1``/``bn1``, 17 ``layers``, 1x1 ``conv2`` to 1280, fixed 4x4 average, ``linear``.

    Args:
        num_classes: size of the ``linear`` head.
        cfg: stages as (expansion, out channels, blocks, first stride).
    """

    def __init__(self, *, num_classes: int = 10, cfg: tuple[tuple[int, int, int, int], ...] = CIFAR_CFG) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        blocks, in_planes = [], 32
        for expansion, out_planes, count, stride in cfg:
            for s in [stride] + [1] * (count - 1):
                blocks.append(Block(in_planes, out_planes, expansion, s))
                in_planes = out_planes
        self.layers = nn.Sequential(*blocks)
        self.conv2 = nn.Conv2d(in_planes, 1280, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(1280)
        self.linear = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        out = F.relu(self.bn2(self.conv2(out)))
        # Upstream pools with a constant 4x4 kernel (the 32x32 input's final map), not adaptively.
        out = F.avg_pool2d(out, 4)
        return self.linear(out.view(out.size(0), -1))


ARCHITECTURES = {
    "cifar10/mobilenetv2": partial(MobileNetV2, num_classes=10),
}
