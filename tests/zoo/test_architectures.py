"""Every architecture computes the upstream function: keys, shapes, reference logits, fx trace."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from faultzoo.zoo.architectures import FAMILIES
from tests.conftest import require_shared, shared_root

EXPECTED_IDS = [
    *(f"cifar10/{m}" for m in (
        "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "mobilenetv2",
        "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "densenet121", "densenet161", "googlenet")),
    "cifar100/resnet18", "cifar100/densenet121", "cifar100/googlenet",
    "gtsrb/resnet20", "gtsrb/densenet121", "gtsrb/vgg11_bn",
]


def _architectures():
    table = {}
    for family in FAMILIES:
        try:
            module = importlib.import_module(f"faultzoo.zoo.architectures.{family}")
        except ModuleNotFoundError:
            continue
        table.update(module.ARCHITECTURES)
    return table


ARCHS = _architectures()


def _reference_module():
    path = require_shared("zoo", "reference_weights.py")
    spec = importlib.util.spec_from_file_location("faultzoo_reference_weights", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def _build(model_id: str) -> torch.nn.Module:
    if model_id not in ARCHS:
        pytest.fail(f"architecture {model_id!r} not implemented")
    return ARCHS[model_id]().eval()


def _listing(model_id: str):
    return require_shared("zoo", "upstream_keys", model_id.replace("/", "_") + ".txt")


@pytest.mark.parametrize("model_id", EXPECTED_IDS)
def test_state_dict_matches_upstream_listing(model_id):
    ref = _reference_module()
    expected = [(name, shape, dtype) for name, shape, dtype in ref.read_keys(_listing(model_id))]
    got = [(k, tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in _build(model_id).state_dict().items()]
    assert got == expected


@pytest.mark.parametrize("model_id", EXPECTED_IDS)
def test_reference_logits_and_fx_trace(model_id):
    ref = _reference_module()
    model = _build(model_id)
    state = {k: torch.from_numpy(v) for k, v in ref.make_state(ref.read_keys(_listing(model_id))).items()}
    model.load_state_dict(state, strict=True)
    expected = np.load(require_shared("zoo", "reference_outputs", model_id.replace("/", "_") + ".npz"))["logits"]
    size = 50 if model_id.startswith("gtsrb/") else 32
    x = torch.from_numpy(ref.make_input((4, 3, size, size)))
    with torch.no_grad():
        eager = model(x)
        traced = torch.fx.symbolic_trace(model)(x)
    got = eager.numpy()
    assert got.shape == expected.shape
    diff = float(np.abs(got - expected).max())
    assert diff <= 1e-5 * float(np.abs(expected).max()), f"max |diff| {diff:.3g} vs reference"
    assert torch.equal(traced, eager), "fx-traced graph does not reproduce the eager logits bit for bit"
