"""In-place injection: exact restore, verification, no-op detection, errors."""

from __future__ import annotations

import pytest
import torch

from faultzoo.exceptions import FaultError
from faultzoo.faults import Fault, injected, is_noop, same_bits, word_bits
from faultzoo.faults.inject import faulty_value
from faultzoo.faults import inject as inject_module


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model, before):
    return all(same_bits(v, before[k]) if v.is_floating_point() else torch.equal(v, before[k])
               for k, v in model.state_dict().items())


def test_injected_changes_one_word_and_restores_it(tiny):
    before = _state(tiny)
    fault = Fault("conv.weight", (1, 2, 0, 2), (30,))
    x = torch.randn(2, 3, 5, 5)
    clean = tiny(x)
    with injected(tiny, fault) as value:
        w = tiny.conv.weight
        assert word_bits(w[1, 2, 0, 2]) == word_bits(before["conv.weight"][1, 2, 0, 2]) ^ (1 << 30)
        assert same_bits(value, w[1, 2, 0, 2])
        changed = (w.detach() != before["conv.weight"]).sum().item()
        assert changed == 1
        assert not torch.equal(tiny(x), clean)
    assert _unchanged(tiny, before)
    assert torch.equal(tiny(x), clean)


def test_restore_happens_when_the_body_raises_and_for_nan(tiny):
    before = _state(tiny)
    fault = Fault("fc.weight", (0, 0), (23, 24, 25, 26, 27, 28, 29, 30), "stuck-at-1")  # exponent all ones
    with pytest.raises(RuntimeError, match="boom"):
        with injected(tiny, fault) as value:
            assert not torch.isfinite(value)
            raise RuntimeError("boom")
    assert _unchanged(tiny, before)


def test_buffers_and_bias_can_be_targets(tiny):
    before = _state(tiny)
    with injected(tiny, Fault("bn.running_var", (2,), (31,))):
        assert tiny.bn.running_var[2] == -before["bn.running_var"][2]
    with injected(tiny, Fault("conv.bias", (0,), (31,))):
        assert tiny.conv.bias[0] == -before["conv.bias"][0]
    assert _unchanged(tiny, before)


def test_restore_is_verified(tiny, monkeypatch):
    monkeypatch.setattr(inject_module, "same_bits", lambda a, b: False)
    with pytest.raises(FaultError, match="Restoring .* failed"):
        with injected(tiny, Fault("conv.weight", (0, 0, 0, 0), (0,))):
            pass


def test_faulty_value_and_noop(tiny):
    with torch.no_grad():
        tiny.fc.weight[0, 0] = 1.0
        tiny.fc.weight[0, 1] = -1.0
    v = faulty_value(tiny, Fault("fc.weight", (0, 0), (31,)))
    assert v.shape == () and v.dtype == torch.float32 and v.item() == -1.0
    assert tiny.fc.weight[0, 0].item() == 1.0  # untouched
    # 1.0 = 0x3F800000: bit 29 is 1, bit 30 is 0, sign 0.
    assert is_noop(tiny, Fault("fc.weight", (0, 0), (29,), "stuck-at-1"))
    assert is_noop(tiny, Fault("fc.weight", (0, 0), (30, 31), "stuck-at-0"))
    assert not is_noop(tiny, Fault("fc.weight", (0, 0), (30,), "stuck-at-1"))
    assert is_noop(tiny, Fault("fc.weight", (0, 1), (31,), "stuck-at-1"))  # -1.0 already has the sign bit
    assert not is_noop(tiny, Fault("fc.weight", (0, 1), (0,), "bitflip"))  # a flip always changes the word


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_models(tiny, dtype):
    model = tiny.to(dtype)
    before = _state(model)
    fault = Fault("conv.weight", (0, 0, 1, 1), (15,))
    with injected(model, fault):
        assert model.conv.weight[0, 0, 1, 1] == -before["conv.weight"][0, 0, 1, 1]
    assert _unchanged(model, before)
    with pytest.raises(FaultError, match="16-bit"):
        faulty_value(model, Fault("conv.weight", (0, 0, 1, 1), (16,)))


@pytest.mark.parametrize(("fault", "message"), [
    (Fault("conv.weigth", (0, 0, 0, 0), (1,)), "no parameter or buffer 'conv.weigth'.*conv.weight"),
    (Fault("conv.weight", (0, 0, 0), (1,)), "3 dimensions; the tensor has 4"),
    (Fault("conv.weight", (4, 0, 0, 0), (1,)), "dimension 0 is 4, expected 0..3"),
    (Fault("conv.weight", (0, 0, 0, 0), (32,)), "32-bit"),
    (Fault("bn.num_batches_tracked", (), (1,)), "int64"),
])
def test_bad_faults_raise_before_touching_the_model(tiny, fault, message):
    before = _state(tiny)
    with pytest.raises(FaultError, match=message):
        with injected(tiny, fault):
            pass
    assert _unchanged(tiny, before)
