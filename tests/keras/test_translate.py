"""The graph translator, one PyTorch semantic at a time, on small modules with adversarial inputs.

Max pools, slices, padding and concatenation only move values, so those twins must match PyTorch
bit for bit; convolutions and linear layers sum in another order, so they match closely.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from faultzoo.exceptions import CheckpointError, TranslationError
from tests.keras.conftest import needs_tensorflow

needs_tensorflow()

from faultzoo.keras import convert, transfer_weights  # noqa: E402
from faultzoo.keras.translate import translate  # noqa: E402

RNG = np.random.default_rng(0)


def _run_both(module: nn.Module, shape: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(PyTorch output, twin output) on the same signed random input (N, C, H, W)."""
    module.eval()
    x = torch.from_numpy(RNG.standard_normal(shape).astype(np.float32))
    twin = convert(module, shape[1:], name="probe")
    with torch.no_grad():
        expected = module(x).numpy()
    got = twin(x.permute(0, 2, 3, 1).numpy(), training=False).numpy()
    return expected, got


class Head(nn.Module):
    """Wraps a feature op so the model returns (N, features) like the zoo models."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x):
        return torch.flatten(self.body(x), 1)


@pytest.mark.parametrize("size", [8, 7])  # even: Keras 'same' would pad bottom/right only; odd: it happens to agree
def test_strided_conv_pads_symmetrically(size):
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=True)
    expected, got = _run_both(Head(conv), (2, 3, size, size))
    assert expected.shape == got.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("ceil_mode,size", [(False, 8), (True, 8), (True, 7), (False, 25)])
def test_max_pool_padding_and_ceil_mode_are_exact(ceil_mode, size):
    # Signed inputs: zero padding would win the max at negative borders; -inf never does.
    pool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=ceil_mode)
    expected, got = _run_both(Head(pool), (2, 3, size, size))
    assert np.array_equal(got, expected)


def test_ceil_mode_window_that_would_start_in_padding_is_dropped():
    pool = nn.MaxPool2d(2, stride=2, padding=1, ceil_mode=True)  # 4 -> 3, not 4 (PyTorch rule)
    expected, got = _run_both(Head(pool), (1, 2, 4, 4))
    assert expected.shape == got.shape == (1, 2 * 3 * 3)
    assert np.array_equal(got, expected)


class ShortcutA(nn.Module):
    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 2, 2))


def test_option_a_shortcut_is_exact():
    expected, got = _run_both(Head(ShortcutA()), (2, 4, 5, 5))  # odd size: rows 0, 2, 4
    assert expected.shape == got.shape == (2, 8 * 3 * 3)
    assert np.array_equal(got, expected)


class FlattenThenLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 1, bias=False)
        self.fc = nn.Linear(5 * 3 * 3, 4)

    def forward(self, x):
        return self.fc(self.conv(x).view(x.size(0), -1))


def test_flatten_feeds_the_linear_layer_in_nchw_order():
    expected, got = _run_both(FlattenThenLinear(), (2, 3, 3, 3))  # 3x3 maps: NHWC order would differ
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


class Branches(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 2, 1)
        self.b = nn.Identity()

    def forward(self, x):
        return torch.flatten(torch.cat([self.b(x), self.a(x), x], 1), 1)


def test_concatenation_on_the_channel_axis():
    expected, got = _run_both(Branches(), (2, 3, 4, 4))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert np.array_equal(got[:, :3 * 16], expected[:, :3 * 16])  # the moved input itself: exact


class OddEpsilon(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(3, eps=32.0)

    def forward(self, x):
        return torch.flatten(F.adaptive_avg_pool2d(self.bn(x), 1), 1)


def test_batch_norm_keeps_its_own_epsilon():
    model = OddEpsilon()
    with torch.no_grad():
        model.bn.running_var.copy_(torch.tensor([0.5, 4.0, 100.0]))
        model.bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3]))
        model.bn.weight.copy_(torch.tensor([2.0, 0.5, 1.5]))
    expected, got = _run_both(model, (2, 3, 4, 4))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


class Unknown(nn.Module):
    def forward(self, x):
        return torch.flatten(torch.sigmoid(x), 1)


def test_unknown_node_is_refused_with_its_name():
    with pytest.raises(TranslationError, match=r"node 'sigmoid' \(call_function sigmoid\)"):
        translate(Unknown().eval(), (3, 4, 4))


class GELUModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.act = nn.GELU()

    def forward(self, x):
        return torch.flatten(self.act(x), 1)


def test_unknown_module_type_is_refused():
    with pytest.raises(TranslationError, match="'act'.*module type GELU"):
        translate(GELUModule().eval(), (3, 4, 4))


class InPlaceAlias(nn.Module):
    def forward(self, x):
        flat = torch.flatten(x, 1)
        y = torch.cat([flat, flat], 1)  # a fresh tensor, not a view
        z = F.relu(y, inplace=True)
        return torch.cat([z, y], 1)  # y is read after relu_ changed it


class InPlaceView(nn.Module):
    def forward(self, x):
        y = torch.cat([x, x], 1)
        F.relu(y[:, :1], inplace=True)  # edits y through the view
        return torch.flatten(y, 1)


def test_in_place_op_on_a_value_read_later_is_refused():
    with pytest.raises(TranslationError, match="in place.*read later by cat"):
        translate(InPlaceAlias().eval(), (3, 2, 2))
    with pytest.raises(TranslationError, match="in place, a view of another tensor"):
        translate(InPlaceView().eval(), (3, 2, 2))


def test_training_mode_and_uneven_pools_are_refused():
    with pytest.raises(TranslationError, match="training mode"):
        translate(Head(nn.Identity()).train(), (3, 2, 2))
    with pytest.raises(TranslationError, match="average pools with padding"):
        translate(Head(nn.AvgPool2d(2, padding=1)).eval(), (3, 4, 4))
    with pytest.raises(TranslationError, match="uneven windows"):
        translate(Head(nn.AdaptiveAvgPool2d(2)).eval(), (3, 5, 5))


def test_transfer_refuses_another_architecture_and_changes_nothing():
    twin = convert(FlattenThenLinear().eval(), (3, 3, 3), name="a")
    before = [v.numpy().copy() for v in twin.weights]
    other = FlattenThenLinear()
    other.fc = nn.Linear(45, 6)  # dense kernel (45, 6) instead of (45, 4)
    with pytest.raises(CheckpointError, match=r"dense/kernel: expected float32 \(45, 4\), found float32 \(45, 6\)"):
        transfer_weights(twin, other.eval())
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, twin.weights))
