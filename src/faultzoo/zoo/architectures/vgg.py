"""VGG with BatchNorm for 32x32 (CIFAR10) and 50x50 (GTSRB) inputs.

Provenance: CIFAR10 vgg11/13/16/19_bn follow huyvnphan/PyTorch_CIFAR10 (``cifar10_models/vgg.py``,
MIT licence, derived from torchvision); GTSRB vgg11_bn follows weiaicunzai/pytorch-cifar100
(``models/vgg.py``; no licence file known); both as used by cad-polito-it/dnn-benchmarks. Written
from the facts in ARCHITECTURES.md §5, not from the source. The two layouts share keys and
function except the global pooling, which is the ``avgpool`` constructor flag.

What differs from upstream: nothing in the function or the keys.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

# Channel counts and "M" (2x2 max-pool) per configuration, as in the VGG paper's tables A/B/D/E.
CFGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}


def make_features(cfg: tuple[int | str, ...]) -> nn.Sequential:
    """Flat Sequential: each width v is [Conv3x3 (bias), BN, ReLU], each "M" one MaxPool2d(2, 2)."""
    layers: list[nn.Module] = []
    in_channels = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_channels, int(v), 3, padding=1), nn.BatchNorm2d(int(v)), nn.ReLU(inplace=True)]
            in_channels = int(v)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """``features`` from a cfg, optional ``avgpool``, then ``classifier`` (3 Linear, 2 Dropout).

    Args:
        cfg: key of :data:`CFGS` ("vgg11", "vgg13", "vgg16", "vgg19").
        num_classes: size of the last Linear.
        avgpool: register ``AdaptiveAvgPool2d(1)`` before the flatten (huyvnphan CIFAR10); the
            weiaicunzai GTSRB model has none. On the 1x1 final map both give the same values.
    """

    def __init__(self, cfg: str = "vgg11", *, num_classes: int = 10, avgpool: bool = True) -> None:
        super().__init__()
        self.features = make_features(CFGS[cfg])
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1)) if avgpool else None
        self.classifier = nn.Sequential(
            nn.Linear(512, 4096), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.features(x)
        if self.avgpool is not None:  # constructor constant, not data: fx records the taken path
            out = self.avgpool(out)
        return self.classifier(out.view(out.size(0), -1))


ARCHITECTURES = {
    **{f"cifar10/{name}_bn": partial(VGG, name, num_classes=10) for name in ("vgg11", "vgg13", "vgg16", "vgg19")},
    "gtsrb/vgg11_bn": partial(VGG, "vgg11", num_classes=43, avgpool=False),
}
