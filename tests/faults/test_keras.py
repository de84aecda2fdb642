"""PyTorch <-> Keras index permutation and name mapping on a small model."""

from __future__ import annotations

import pytest

from faultzoo.exceptions import FaultError
from faultzoo.faults import (
    Fault,
    FaultList,
    from_keras,
    keras_layer_names,
    to_keras,
)
from faultzoo.faults.keras import keras_to_torch_index, torch_to_keras_index


def test_index_permutations():
    assert torch_to_keras_index((3, 0, 2, 1)) == (2, 1, 0, 3)  # (o, i, h, w) -> (h, w, i, o)
    assert torch_to_keras_index((2, 22)) == (22, 2)  # (out, in) -> (in, out)
    for index in [(1, 2, 3, 4), (5, 6)]:
        assert keras_to_torch_index(torch_to_keras_index(index)) == index
    with pytest.raises(FaultError, match="3-D"):
        torch_to_keras_index((1, 2, 3))


def test_names_and_round_trip(tiny):
    assert keras_layer_names(tiny) == {"conv.weight": "conv2d", "fc.weight": "dense"}
    fl = FaultList((Fault("conv.weight", (3, 2, 1, 0), (31,)), Fault("fc.weight", (4, 1), (0,))), ids=[7, 9])
    rows = to_keras(fl, tiny)
    assert [tuple(r) for r in rows] == [(7, "conv2d", (1, 0, 2, 3), 31), (9, "dense", (1, 4), 0)]
    assert from_keras([(r.layer, r.index, r.bit) for r in rows], tiny) == list(fl)


def test_refuses_what_keras_lists_cannot_hold(tiny):
    with pytest.raises(FaultError, match="no Keras twin"):
        to_keras([Fault("conv.bias", (0,), (1,))], tiny)
    with pytest.raises(FaultError, match="bit flips only"):
        to_keras([Fault("conv.weight", (0, 0, 0, 0), (1,), "stuck-at-0")], tiny)
    with pytest.raises(FaultError, match="'dense_1' has no twin.*conv2d, dense"):
        from_keras([("dense_1", (0, 0), 1)], tiny)
