"""Outcome classes decided bit for bit, their per-fault counts, and the bit-class tallies of the summary."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from faultzoo.backends.golden import GoldenRun
from faultzoo.outcome import Outcome
from faultzoo.backends.classify import Classified, classify, top1
from faultzoo.faults.bits import same_bits_rows as same_bits
from faultzoo.campaign.worker import _to_result
from faultzoo.campaign.store import FaultResult
from faultzoo.campaign.summary import summarize
from faultzoo.faults.formats import format_of
from faultzoo.faults import Fault, FaultList


def _from_words(*words: int) -> torch.Tensor:
    """A float32 row from raw words (NaNs with chosen payloads survive no float conversion)."""
    return torch.tensor([list(words)], dtype=torch.int32).view(torch.float32)


def test_outcome_codes_are_stable():
    # The codes are stored as uint8 in result stores: changing them would misread old campaigns.
    assert (Outcome.MASKED, Outcome.NON_CRITICAL, Outcome.CRITICAL) == (0, 1, 2)


def test_same_bits_nan_and_signed_zero():
    nan = float("nan")
    golden = torch.tensor([[nan, 1.0], [0.0, 1.0], [1.0, 2.0]])
    faulty = torch.tensor([[nan, 1.0], [-0.0, 1.0], [1.0, 2.0]])
    # As floats the first row differs (NaN != NaN) and the second is equal (-0.0 == 0.0): bitwise it is the opposite.
    assert not torch.equal(golden[0], faulty[0]) and torch.equal(golden[1], faulty[1])
    assert same_bits(faulty, golden).tolist() == [True, False, True]


def test_same_bits_nan_payload_matters():
    one = 0x3F800000
    quiet, other = _from_words(0x7FC00000, one), _from_words(0x7FC00001, one)
    assert math.isnan(quiet[0, 0]) and math.isnan(other[0, 0])
    assert same_bits(quiet, other).tolist() == [False]
    assert same_bits(quiet, quiet.clone()).tolist() == [True]


@pytest.mark.parametrize("dtype, columns", [(torch.float32, 10), (torch.float32, 3), (torch.float16, 3),
                                            (torch.float16, 1), (torch.float64, 5)])
def test_same_bits_any_row_width_one_bit_apart(dtype, columns):
    # Rows whose byte width is not a multiple of 8 are compared through narrower views: a single
    # flipped bit in the last element must still be seen.
    golden = torch.randn(4, columns, generator=torch.Generator().manual_seed(0)).to(dtype)
    faulty = golden.clone()
    itype = {torch.float16: torch.int16, torch.float32: torch.int32, torch.float64: torch.int64}[dtype]
    faulty.view(itype)[2, -1] ^= 1  # mantissa LSB of the last element of row 2
    assert same_bits(faulty, golden).tolist() == [True, True, False, True]


def test_same_bits_rejects_mismatched_tensors():
    with pytest.raises(ValueError, match="Cannot compare"):
        same_bits(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="Cannot compare"):
        same_bits(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.float64))


def test_classify_every_class_against_golden_top1():
    nan, inf = float("nan"), float("inf")
    golden = torch.tensor([
        [0.1, 2.0, 0.3],  # top-1 = 1
        [0.0, 2.0, 0.3],
        [0.1, 2.0, 0.3],
        [0.1, 2.0, 0.3],
        [nan, 2.0, 0.3],  # golden NaN: top-1 = 0 (argmax treats NaN as largest)
        [0.1, 2.0, 0.3],
        [0.1, 2.0, 0.3],
    ])
    faulty = torch.tensor([
        [0.1, 2.0, 0.3],  # bit-identical -> masked
        [-0.0, 2.0, 0.3],  # -0.0 vs 0.0: equal as floats, different bits -> non-critical
        [0.1, 2.5, 0.3],  # same top-1 -> non-critical
        [0.1, 2.0, 3.0],  # top-1 moves to 2 -> critical
        [nan, 2.0, 0.3],  # same NaN bits as golden -> masked, but counted as non-finite
        [0.1, inf, 0.3],  # Inf keeps top-1 -> non-critical, non-finite
        [0.1, 2.0, nan],  # NaN wins argmax -> critical, non-finite
    ])
    c = classify(golden, faulty)
    M, N, C = Outcome.MASKED, Outcome.NON_CRITICAL, Outcome.CRITICAL
    assert c.codes.dtype == np.uint8
    assert c.codes.tolist() == [M, N, N, C, M, N, C]
    assert c.nonfinite.tolist() == [False, False, False, False, True, True, True]
    assert c.top1.tolist() == [1, 1, 1, 2, 0, 1, 2]


def test_critical_is_decided_by_golden_top1_not_label():
    # Golden predicts 0 for an image labelled 2; the fault makes it predict 2 (the label): still critical
    # (SDC-1 compares with the fault-free run), and it is counted as faulty_correct.
    golden = torch.tensor([[3.0, 1.0, 2.0], [3.0, 1.0, 2.0]])
    faulty = torch.tensor([[3.0, 1.0, 4.0], [3.0, 1.0, 2.5]])
    labels = np.array([2, 2])
    c = classify(golden, faulty)
    assert c.codes.tolist() == [Outcome.CRITICAL, Outcome.NON_CRITICAL]
    r = _to_result(5, c, labels, 0.25, keep=True)
    assert (r.fault_id, r.n, r.masked, r.non_critical, r.critical, r.faulty_correct) == (5, 2, 0, 1, 1, 1)
    assert r.outcomes.tolist() == [Outcome.CRITICAL, Outcome.NON_CRITICAL]
    assert _to_result(5, c, labels, 0.25, keep=False).outcomes is None


def test_counts_of_a_fault_include_nonfinite():
    golden = torch.tensor([[1.0, 0.0]] * 4)
    faulty = torch.tensor([[1.0, 0.0], [float("inf"), 0.0], [1.0, float("nan")], [1.0, float("-inf")]])
    c = classify(golden, faulty)
    assert c.top1.tolist() == [0, 0, 1, 0]
    r = _to_result(0, c, np.array([0, 0, 1, 1]), 0.0, keep=False)
    assert (r.masked, r.non_critical, r.critical, r.nonfinite, r.faulty_correct) == (1, 2, 1, 3, 3)


def test_all_masked_copies_golden_top1():
    golden_top1 = np.array([3, 1, 4])
    c = Classified.all_masked(golden_top1)
    assert c.codes.tolist() == [0, 0, 0] and not c.nonfinite.any() and c.top1.tolist() == [3, 1, 4]
    golden_top1[0] = 9
    assert c.top1[0] == 3  # a copy, not a view of the caller's array


def test_top1_first_index_on_ties():
    assert top1(torch.tensor([[1.0, 5.0, 5.0], [2.0, 2.0, 0.0]])).tolist() == [1, 0]


@pytest.mark.parametrize("bit, expected", [(0, "mantissa"), (22, "mantissa"), (23, "exponent"), (30, "exponent"),
                                           (31, "sign")])
def test_bit_class(bit, expected):
    assert format_of("float32").field_of(bit) == expected


def FLOAT32(fault):  # every fault's word is a float32
    return format_of("float32")


def test_summary_tallies_by_bit_class_and_layer():
    faults = FaultList((Fault("conv1.weight", (0, 0, 0, 0), (31,)), Fault("conv1.weight", (1, 0, 0, 0), (30,)),
                        Fault("fc.weight", (0, 0), (3,)), Fault("fc.weight", (1, 0), (2, 30))))
    results = [FaultResult(0, 4, 0, 3, 1, 0, 2, 0.1), FaultResult(1, 4, 0, 0, 4, 4, 1, 0.1),
               FaultResult(2, 4, 4, 0, 0, 0, 3, 0.1)]  # fault 3 not done yet
    golden = GoldenRun(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]), torch.tensor([0, 1, 1, 1]), 2)
    s = summarize(faults, results, golden, FLOAT32)
    assert (s.faults_total, s.faults_done, s.images, s.golden_top1) == (4, 3, 4, 50.0)
    assert list(s.by_bit_class) == ["sign", "exponent", "mantissa"]  # empty classes (multi-bit) left out
    assert s.by_bit_class["exponent"].nonfinite == 4 and s.by_bit_class["exponent"].rate("critical") == 1.0
    assert (s.total.n, s.total.masked, s.total.non_critical, s.total.critical) == (12, 4, 3, 5)
    assert s.by_layer["conv1"].faults == 2 and s.by_layer["fc"].faults == 1
    d = s.to_dict()
    assert d["total"]["masked_pct"] == pytest.approx(100 * 4 / 12)
    s_all = summarize(faults, [*results, FaultResult(3, 4, 0, 4, 0, 0, 0, 0.1)], golden, FLOAT32)
    assert s_all.by_bit_class["multi-bit"].faults == 1
