"""ResNet18 for CIFAR100 with 1x1 projection shortcuts (weiaicunzai layout).

Provenance: the layout of weiaicunzai/pytorch-cifar100 (``models/resnet.py``; no licence file
known), as used by cad-polito-it/dnn-benchmarks for CIFAR100 resnet18. Written from the facts in
ARCHITECTURES.md §3, not from the source.

What differs from upstream: upstream applies a freshly constructed, unregistered
``nn.ReLU(inplace=True)`` after each residual sum; here it is ``F.relu(..., inplace=True)`` (same
op, no key, and ``torch.fx`` can trace it). Only the BasicBlock variant (ResNet18/34) is defined.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """``residual_function`` (conv-BN-ReLU-conv-BN) plus identity or 1x1 conv+BN ``shortcut``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.residual_function = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.residual_function(x) + self.shortcut(x), inplace=True)


class ResNet(nn.Module):
    """Stem ``conv1`` (3x3, stride 1), stages ``conv2_x``..``conv5_x``, adaptive average, ``fc``.

    Args:
        num_blocks: BasicBlocks per stage, (2, 2, 2, 2) for ResNet18.
        num_classes: size of the ``fc`` head.
    """

    def __init__(self, num_blocks: tuple[int, int, int, int] = (2, 2, 2, 2), *, num_classes: int = 100) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)
        )
        in_channels = 64
        for index, (width, stride, count) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2), num_blocks), start=2):
            blocks = []
            for s in [stride] + [1] * (count - 1):
                blocks.append(BasicBlock(in_channels, width, s))
                in_channels = width
            setattr(self, f"conv{index}_x", nn.Sequential(*blocks))
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.conv5_x(self.conv4_x(self.conv3_x(self.conv2_x(out))))
        out = self.avg_pool(out)
        return self.fc(out.view(out.size(0), -1))


ARCHITECTURES = {
    "cifar100/resnet18": partial(ResNet, (2, 2, 2, 2), num_classes=100),
}
