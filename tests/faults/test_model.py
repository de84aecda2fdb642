"""Fault and FaultList: normalisation, properties, ids, fingerprint."""

from __future__ import annotations

import pytest

from faultzoo.exceptions import FaultError
from faultzoo.faults import Fault, FaultKind, FaultList, FaultListMeta


def test_fault_normalises_and_exposes_upstream_layer():
    f = Fault("layer1.0.conv1.weight", [3, 0, 2, 1], [15, 3, 15], "stuck-at-1")
    assert f.index == (3, 0, 2, 1) and f.bits == (3, 15) and f.kind is FaultKind.STUCK_AT_1
    assert f.layer == "layer1.0.conv1"
    assert Fault("bn1.bias", (0,), 31).layer == "bn1.bias"  # only a trailing .weight is dropped
    assert Fault("linear.weight", (1, 2), (7,)).bit == 7
    with pytest.raises(FaultError, match="not a single bit"):
        _ = f.bit
    with pytest.raises(AttributeError):
        f.param = "x"  # type: ignore[misc]


@pytest.mark.parametrize(("args", "message"), [
    (("", (0,), (1,)), "non-empty"),
    (("w", (-1,), (1,)), "non-negative"),
    (("w", (0,), ()), "names no bit"),
    (("w", (0,), (64,)), r"\[0, 64\)"),
    (("w", (0,), (1,), "flip"), "Unknown fault kind"),
])
def test_fault_rejects(args, message):
    with pytest.raises(FaultError, match=message):
        Fault(*args)


def _faults(n=5):
    return tuple(Fault("conv.weight", (i, 0, 0, 0), (i,)) for i in range(n))


def test_fault_list_sequence_protocol_and_ids():
    fl = FaultList(_faults(), FaultListMeta(design="network"), ids=[10, 11, 12, 13, 14], extra={"masked": [1, 2, 3, 4, 5]})
    assert len(fl) == 5 and list(fl) == list(_faults())
    assert fl[2] == _faults()[2]
    part = fl[1:3]
    assert isinstance(part, FaultList) and part.ids == (11, 12) and part.extra["masked"] == (2, 3)
    assert fl.id_of(4) == 14
    assert FaultList(_faults(3)).ids == (0, 1, 2)
    assert fl.params() == ["conv.weight"]
    with pytest.raises(FaultError, match="5 faults but 2 ids"):
        FaultList(_faults(), ids=[1, 2])
    with pytest.raises(FaultError, match="extra column 'masked'"):
        FaultList(_faults(), extra={"masked": [1]})


def test_fingerprint_depends_on_rows_only():
    a = FaultList(_faults(), FaultListMeta(design="network", seed=1), ids=range(5))
    b = FaultList(_faults(), FaultListMeta(design="layer", seed=2), ids=range(100, 105))
    assert a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 64
    reordered = FaultList(tuple(reversed(_faults())))
    assert reordered.fingerprint() != a.fingerprint()
    other_kind = FaultList(tuple(Fault(f.param, f.index, f.bits, "stuck-at-0") for f in _faults()))
    assert other_kind.fingerprint() != a.fingerprint()
    assert a != b and a == FaultList(_faults(), FaultListMeta(design="network", seed=1), ids=range(5))


def test_meta_round_trips_through_dict():
    from faultzoo.faults import Stratum

    meta = FaultListMeta(model_id="m", design="layer-bit", design_params={"error": 0.01}, population_size=10,
                         sample_size=3, strata=(Stratum("a:bit1", ("a.weight",), (1,), 10, 3),), seed=4,
                         kind=FaultKind.STUCK_AT_0, targets=("weights", "bias"), layers=("a*",), bits=(1,))
    again = FaultListMeta.from_dict(meta.to_dict())
    assert again == meta
