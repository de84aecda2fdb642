"""DenseNet-BC networks of the zoo, in the two upstream layouts.

Provenance: cad-polito-it/dnn-benchmarks (``torch/gpu/image_classification/<DATASET>/fp32/densenet``), which took
its code from two projects:

* ``DenseNetBC`` (CIFAR10 densenet121/161): huyvnphan/PyTorch_CIFAR10 (MIT), itself derived from torchvision's
  DenseNet (BSD-3-Clause) with a 3x3 stride-1 stem conv for 32x32 inputs.
* ``DenseNetCifar100`` (CIFAR100 and GTSRB densenet121): weiaicunzai/pytorch-cifar100 (no licence file found; treat
  as unknown).

Written from the description in ARCHITECTURES.md §6-7, not copied. Module names, registration order and operators
follow upstream so ``state_dict`` keys and logits match bit for bit. Differences from upstream: dead code paths
(dropout branch with ``drop_rate = 0``, memory-efficient checkpointing, the CIFAR10 ``pretrained`` download) are
left out; dense layers concatenate ``[input, new]`` per layer instead of once per block, which gives the same
tensor values and a plain fx graph.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class _DenseLayer(nn.Sequential):
    """torchvision-style bottleneck: BN-ReLU-Conv1x1-BN-ReLU-Conv3x3; returns ``[input, new]``."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int) -> None:
        width = bn_size * growth_rate
        super().__init__()
        self.add_module("norm1", nn.BatchNorm2d(in_channels))
        self.add_module("relu1", nn.ReLU(inplace=True))
        self.add_module("conv1", nn.Conv2d(in_channels, width, kernel_size=1, bias=False))
        self.add_module("norm2", nn.BatchNorm2d(width))
        self.add_module("relu2", nn.ReLU(inplace=True))
        self.add_module("conv2", nn.Conv2d(width, growth_rate, kernel_size=3, padding=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, super().forward(x)], 1)


class _Transition(nn.Sequential):
    """BN-ReLU-Conv1x1 (halving channels)-AvgPool2x2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(in_channels))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False))
        self.add_module("pool", nn.AvgPool2d(kernel_size=2, stride=2))


class DenseNetBC(nn.Module):
    """CIFAR10 DenseNet-BC of huyvnphan (torchvision layout, 3x3 stem, max-pool before block 1).

    Args:
        growth_rate: new channels per dense layer (k).
        block_config: dense layers per block.
        num_init_features: stem width.
        bn_size: bottleneck width factor (bottleneck has ``bn_size * k`` channels).
        num_classes: outputs of ``classifier``.
    """

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        num_init_features: int = 64,
        bn_size: int = 4,
        *,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(3, num_init_features, 3, stride=1, padding=1, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(num_init_features))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        self.features.add_module("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        channels = num_init_features
        for b, n_layers in enumerate(block_config, start=1):
            block = nn.Sequential()
            for j in range(n_layers):
                block.add_module(f"denselayer{j + 1}", _DenseLayer(channels + j * growth_rate, growth_rate, bn_size))
            self.features.add_module(f"denseblock{b}", block)
            channels += n_layers * growth_rate
            if b != len(block_config):
                self.features.add_module(f"transition{b}", _Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.features(x), inplace=True)
        # Functional adaptive pooling, as upstream: avg_pool2d with a full kernel rounds differently.
        out = F.adaptive_avg_pool2d(out, (1, 1))
        return self.classifier(torch.flatten(out, 1))


class _Bottleneck(nn.Module):
    """weiaicunzai dense layer: ``bottle_neck`` Sequential; returns ``[input, new]``."""

    def __init__(self, in_channels: int, growth_rate: int) -> None:
        super().__init__()
        width = 4 * growth_rate
        self.bottle_neck = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, width, kernel_size=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, growth_rate, kernel_size=3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.bottle_neck(x)], 1)


class _DownSample(nn.Module):
    """weiaicunzai transition: BN-Conv1x1-AvgPool2x2, with no ReLU (unlike torchvision)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.down_sample = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            nn.AvgPool2d(2, stride=2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_sample(x)


class DenseNetCifar100(nn.Module):
    """DenseNet-BC of weiaicunzai (CIFAR100, GTSRB): bare 3x3 stem conv, first block at full resolution.

    Args:
        growth_rate: new channels per dense layer (k); the bottleneck has ``4 * k`` channels.
        block_config: dense layers per block.
        reduction: transition compression (output width ``int(reduction * c)``).
        num_classes: outputs of ``linear``.
    """

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: tuple[int, ...] = (6, 12, 24, 16),
        reduction: float = 0.5,
        *,
        num_classes: int = 100,
    ) -> None:
        super().__init__()
        channels = 2 * growth_rate
        self.conv1 = nn.Conv2d(3, channels, kernel_size=3, padding=1, bias=False)
        self.features = nn.Sequential()
        last = len(block_config) - 1
        for b, n_layers in enumerate(block_config):
            block = nn.Sequential()
            for j in range(n_layers):
                block.add_module(f"bottle_neck_layer_{j}", _Bottleneck(channels + j * growth_rate, growth_rate))
            channels += n_layers * growth_rate
            # Upstream names the last block "dense_block3", the others "dense_block_layer_<b>".
            self.features.add_module(f"dense_block{b}" if b == last else f"dense_block_layer_{b}", block)
            if b != last:
                out_channels = int(reduction * channels)
                self.features.add_module(f"transition_layer_{b}", _DownSample(channels, out_channels))
                channels = out_channels
        self.features.add_module("bn", nn.BatchNorm2d(channels))
        self.features.add_module("relu", nn.ReLU(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.linear = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.avgpool(self.features(self.conv1(x)))
        return self.linear(torch.flatten(out, 1))


ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "cifar10/densenet121": functools.partial(
        DenseNetBC, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, num_classes=10),
    "cifar10/densenet161": functools.partial(
        DenseNetBC, growth_rate=48, block_config=(6, 12, 36, 24), num_init_features=96, num_classes=10),
    "cifar100/densenet121": functools.partial(
        DenseNetCifar100, growth_rate=32, block_config=(6, 12, 24, 16), num_classes=100),
    "gtsrb/densenet121": functools.partial(
        DenseNetCifar100, growth_rate=32, block_config=(6, 12, 24, 16), num_classes=43),
}
