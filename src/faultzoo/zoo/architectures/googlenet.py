"""GoogLeNet (Inception v1) networks of the zoo, in the two upstream layouts.

Provenance: cad-polito-it/dnn-benchmarks (``torch/gpu/image_classification/<DATASET>/fp32/googlenet``), which took
its code from two projects:

* ``GoogLeNet`` (CIFAR10): huyvnphan/PyTorch_CIFAR10 (MIT), derived from torchvision's GoogLeNet (BSD-3-Clause):
  3x3 stride-1 stem conv to 192 channels, no ImageNet stem pools, BN eps 1e-3, "5x5" branch with a 3x3 kernel.
* ``GoogLeNetCifar100`` (CIFAR100): weiaicunzai/pytorch-cifar100 (no licence file found; treat as unknown):
  3-conv stem, biased Inception convs, two stacked 3x3 convs in the "5x5" branch.

Written from the description in ARCHITECTURES.md §8-9, not copied. Module names, registration order and operators
follow upstream so ``state_dict`` keys and logits match bit for bit. Differences from upstream: the CIFAR10
auxiliary classifiers and ``transform_input`` (both off in the upstream factory) are left out. The upstream CIFAR100
typo ``BatchNorm2d(c5, c5)``, which sets ``eps = c5`` on every ``b3.4`` BN, is reproduced on purpose: the trained
weights depend on it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BN (eps 1e-3) -> in-place ReLU, as in torchvision's GoogLeNet."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class Inception(nn.Module):
    """torchvision Inception block; output is ``[branch1, branch2, branch3, branch4]``."""

    def __init__(self, in_channels: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, c1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, c3r, 1), BasicConv2d(c3r, c3, 3, padding=1))
        # torchvision legacy: the "5x5" branch uses a 3x3 kernel.
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, c5r, 1), BasicConv2d(c5r, c5, 3, padding=1))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


# (in, c1, c3 reduce, c3, c5 reduce, c5, pool proj) of the nine Inception blocks, shared by both layouts.
_INCEPTION_CFG = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


class GoogLeNet(nn.Module):
    """CIFAR10 GoogLeNet of huyvnphan (no auxiliary heads).

    Args:
        num_classes: outputs of ``fc``.
    """

    def __init__(self, *, num_classes: int = 10) -> None:
        super().__init__()
        cfg = _INCEPTION_CFG
        self.conv1 = BasicConv2d(3, 192, kernel_size=3, padding=1)
        self.inception3a = Inception(*cfg["3a"])
        self.inception3b = Inception(*cfg["3b"])
        self.maxpool3 = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=False)
        self.inception4a = Inception(*cfg["4a"])
        self.inception4b = Inception(*cfg["4b"])
        self.inception4c = Inception(*cfg["4c"])
        self.inception4d = Inception(*cfg["4d"])
        self.inception4e = Inception(*cfg["4e"])
        self.maxpool4 = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=False)
        self.inception5a = Inception(*cfg["5a"])
        self.inception5b = Inception(*cfg["5b"])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inception3b(self.inception3a(self.conv1(x)))
        x = self.maxpool3(x)
        x = self.inception4a(x)
        x = self.inception4b(x)
        x = self.inception4c(x)
        x = self.inception4d(x)
        x = self.inception4e(x)
        x = self.maxpool4(x)
        x = self.inception5b(self.inception5a(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(self.dropout(x))


def _conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True, eps: float = 1e-5
) -> list[nn.Module]:
    """Conv, BN, in-place ReLU: three Sequential positions, as in weiaicunzai's GoogLeNet."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias),
        nn.BatchNorm2d(out_channels, eps=eps),
        nn.ReLU(inplace=True),
    ]


class InceptionCifar100(nn.Module):
    """weiaicunzai Inception block; output is ``[b1, b2, b3, b4]``."""

    def __init__(self, in_channels: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int) -> None:
        super().__init__()
        self.b1 = nn.Sequential(*_conv_bn_relu(in_channels, c1, 1))
        self.b2 = nn.Sequential(*_conv_bn_relu(in_channels, c3r, 1), *_conv_bn_relu(c3r, c3, 3))
        self.b3 = nn.Sequential(
            *_conv_bn_relu(in_channels, c5r, 1),
            # Upstream writes BatchNorm2d(c5, c5): the second positional argument is eps, so eps = c5 here.
            *_conv_bn_relu(c5r, c5, 3, eps=float(c5)),
            *_conv_bn_relu(c5, c5, 3),
        )
        self.b4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), *_conv_bn_relu(in_channels, pool_proj, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class GoogLeNetCifar100(nn.Module):
    """CIFAR100 GoogLeNet of weiaicunzai; one ``maxpool`` instance is applied three times.

    Args:
        num_classes: outputs of ``linear``.
    """

    def __init__(self, *, num_classes: int = 100) -> None:
        super().__init__()
        cfg = _INCEPTION_CFG
        # The stem convs have no bias, unlike the Inception convs.
        self.prelayer = nn.Sequential(
            *_conv_bn_relu(3, 64, 3, bias=False),
            *_conv_bn_relu(64, 64, 3, bias=False),
            *_conv_bn_relu(64, 192, 3, bias=False),
        )
        self.a3 = InceptionCifar100(*cfg["3a"])
        self.b3 = InceptionCifar100(*cfg["3b"])
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.a4 = InceptionCifar100(*cfg["4a"])
        self.b4 = InceptionCifar100(*cfg["4b"])
        self.c4 = InceptionCifar100(*cfg["4c"])
        self.d4 = InceptionCifar100(*cfg["4d"])
        self.e4 = InceptionCifar100(*cfg["4e"])
        self.a5 = InceptionCifar100(*cfg["5a"])
        self.b5 = InceptionCifar100(*cfg["5b"])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout2d(p=0.4)
        self.linear = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.prelayer(x))
        x = self.b3(self.a3(x))
        x = self.maxpool(x)
        x = self.a4(x)
        x = self.b4(x)
        x = self.c4(x)
        x = self.d4(x)
        x = self.e4(x)
        x = self.maxpool(x)
        x = self.b5(self.a5(x))
        # Upstream applies Dropout2d to the 4-D pooled map, before flattening.
        x = self.dropout(self.avgpool(x))
        return self.linear(torch.flatten(x, 1))


ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "cifar10/googlenet": functools.partial(GoogLeNet, num_classes=10),
    "cifar100/googlenet": functools.partial(GoogLeNetCifar100, num_classes=100),
}
