"""Bit operations through integer views: fp32, fp16, bf16 against hand values and a numpy oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faultzoo.exceptions import FaultError
from faultzoo.faults import FaultKind, corrupt, parse_bits, same_bits, word_bits
from faultzoo.faults.bits import bit_field, bit_mask, word_width

ONE = {torch.float32: 0x3F800000, torch.float16: 0x3C00, torch.bfloat16: 0x3F80}


@pytest.mark.parametrize(("dtype", "bit", "expected"), [
    (torch.float32, 31, -1.0),  # sign
    (torch.float32, 23, 0.5),  # exponent LSB: 127 -> 126
    (torch.float32, 30, float("inf")),  # exponent MSB: 127 -> 255, mantissa 0
    (torch.float32, 22, 1.5),  # mantissa MSB
    (torch.float32, 0, 1.0 + 2.0**-23),  # mantissa LSB
    (torch.float16, 15, -1.0),
    (torch.float16, 10, 0.5),
    (torch.float16, 9, 1.5),
    (torch.float16, 0, 1.0 + 2.0**-10),
    (torch.bfloat16, 15, -1.0),
    (torch.bfloat16, 7, 0.5),
    (torch.bfloat16, 6, 1.5),
    (torch.bfloat16, 0, 1.0 + 2.0**-7),
])
def test_bitflip_of_one_hand_values(dtype, bit, expected):
    out = corrupt(torch.tensor(1.0, dtype=dtype), (bit,), FaultKind.BITFLIP)
    assert out.dtype == dtype and out.shape == ()
    assert out.item() == expected
    assert word_bits(out) == ONE[dtype] ^ (1 << bit)


def test_word_width_and_fields():
    assert [word_width(d) for d in (torch.float32, torch.float16, torch.bfloat16, torch.float64)] == [32, 16, 16, 64]
    assert [bit_field(torch.float32, b) for b in (0, 22, 23, 30, 31)] == ["mantissa"] * 2 + ["exponent"] * 2 + ["sign"]
    assert [bit_field(torch.bfloat16, b) for b in (6, 7, 14, 15)] == ["mantissa", "exponent", "exponent", "sign"]
    assert [bit_field(torch.float16, b) for b in (9, 10, 14, 15)] == ["mantissa", "exponent", "exponent", "sign"]
    with pytest.raises(FaultError, match="int64"):
        word_width(torch.int64)
    with pytest.raises(FaultError, match="outside"):
        bit_field(torch.float16, 16)


def test_mask_is_signed_for_the_sign_bit():
    assert bit_mask([31], 32) == -(2**31)
    assert bit_mask([0, 3], 32) == 9
    assert bit_mask([15], 16) == -(2**15)
    with pytest.raises(FaultError, match="outside a 16-bit word"):
        bit_mask([16], 16)


def _special_values(dtype):
    finfo = torch.finfo(dtype)
    values = [0.0, -0.0, 1.0, -2.5, finfo.max, finfo.tiny, finfo.tiny / 4, float("inf"), float("-inf"), float("nan")]
    rand = torch.randn(200, generator=torch.Generator().manual_seed(1)).tolist()
    return torch.tensor(values + rand, dtype=dtype)


@pytest.mark.parametrize(("dtype", "np_uint"), [(torch.float32, np.uint32), (torch.float16, np.uint16),
                                                (torch.bfloat16, np.uint16)])
@pytest.mark.parametrize("kind", list(FaultKind))
def test_every_bit_matches_numpy_oracle(dtype, np_uint, kind):
    values = _special_values(dtype)
    words = values.view(torch.int16 if dtype != torch.float32 else torch.int32).numpy().view(np_uint)
    for bit in range(word_width(dtype)):
        mask = np_uint(1 << bit)
        expected = {FaultKind.BITFLIP: words ^ mask, FaultKind.STUCK_AT_0: words & ~mask,
                    FaultKind.STUCK_AT_1: words | mask}[kind]
        out = corrupt(values, [bit], kind)
        got = out.view(torch.int16 if dtype != torch.float32 else torch.int32).numpy().view(np_uint)
        assert np.array_equal(got, expected), f"{dtype} bit {bit} {kind}"
    # The input is never modified.
    assert same_bits(values, _special_values(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_bitflip_is_an_involution_and_stuck_at_idempotent(dtype):
    values = _special_values(dtype)
    for bits in ([0], [7], [14, 15], list(range(word_width(dtype)))):
        assert same_bits(corrupt(corrupt(values, bits), bits), values)
        once = corrupt(values, bits, "stuck-at-1")
        assert same_bits(corrupt(once, bits, "stuck-at-1"), once)
        zero = corrupt(values, bits, FaultKind.STUCK_AT_0)
        assert same_bits(corrupt(zero, bits, "stuck-at-0"), zero)


def test_multi_bit_and_non_contiguous():
    values = torch.ones(4, 3).t()  # non-contiguous view
    out = corrupt(values, [31, 23])  # sign and exponent LSB: -0.5
    assert torch.equal(out, torch.full((3, 4), -0.5))
    assert corrupt(torch.tensor(-2.0), 31, "stuck-at-0").item() == 2.0
    assert corrupt(torch.tensor(2.0), 31, "stuck-at-1").item() == -2.0


def test_same_bits_sees_nan_payload_and_signed_zero():
    a = torch.tensor([0.0, float("nan")])
    assert same_bits(a, a.clone())
    assert not same_bits(torch.tensor([0.0]), torch.tensor([-0.0]))  # equal as floats, not as words
    assert not same_bits(a, corrupt(a, [0]))


def test_unknown_kind_and_dtype():
    with pytest.raises(FaultError, match="Unknown fault kind 'stuck'"):
        corrupt(torch.tensor(1.0), [0], "stuck")
    with pytest.raises(FaultError, match="bit faults are defined for"):
        corrupt(torch.tensor(1), [0])


@pytest.mark.parametrize(("spec", "expected"), [
    ("31", (31,)), ("23-30", tuple(range(23, 31))), ("0-2, 31,1", (0, 1, 2, 31)), ([3, 1, 3], (1, 3)), (None, None),
])
def test_parse_bits(spec, expected):
    assert parse_bits(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("30-23", "below the start"), ("a", "Bad bit range"), ("1,,2", "Bad bit range"), ("0-16", "outside the 16-bit"),
])
def test_parse_bits_rejects(spec, message):
    with pytest.raises(FaultError, match=message):
        parse_bits(spec, width=16)
