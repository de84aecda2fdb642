"""Small models for the fault-list tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class TinyNet(nn.Module):
    """conv (4,3,3,3) + bn + linear (5, 4): every target group, real values."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=True)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


@pytest.fixture
def tiny() -> TinyNet:
    torch.manual_seed(0)
    model = TinyNet().eval()
    with torch.no_grad():  # non-trivial running stats so bn-stats targets hold ordinary values
        model.bn.running_var.uniform_(0.5, 1.5)
        model.bn.running_mean.normal_()
    return model


def build_zoo_model(model_id: str, *, meta: bool = True) -> nn.Module:
    """A zoo architecture (untrained); on the meta device (shapes only, instant) unless real tensors are needed."""
    from faultzoo.zoo.architectures import all_architectures

    build = all_architectures()[model_id]
    if not meta:
        return build().eval()
    with torch.device("meta"):
        return build()


@pytest.fixture
def zoo_model():
    """Factory fixture: ``zoo_model("cifar10/resnet32")``."""
    return build_zoo_model
