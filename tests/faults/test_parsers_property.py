"""Property-based tests of the parsers of user input: any input parses to the right value or raises
faultzoo's own error (FaultzooError), never another exception."""

from __future__ import annotations

import math
import string
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faultzoo.exceptions import FaultzooError
from faultzoo.faults import Fault, FaultKind, FaultList, FaultListMeta, parse_bits, read_fault_list, write_fault_list
from faultzoo.faults.sampling import parse_prior

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Tiny(torch.nn.Module):
    """Two layers with the shapes of a conv and a linear weight: enough for every format."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3, bias=False)
        self.linear = torch.nn.Linear(4, 5)


MODEL = Tiny()
SHAPES = {"conv1.weight": (4, 3, 3, 3), "linear.weight": (5, 4)}


# --------------------------------------------------------------------------- --bits ranges

ranges = st.lists(st.tuples(st.integers(0, 63), st.integers(0, 63)).map(sorted), min_size=1, max_size=5)


@SETTINGS
@given(ranges, st.sampled_from([" ", ""]))
def test_bit_ranges_parse_to_their_union(spans, space):
    text = ",".join(f"{space}{lo}{space}-{space}{hi}" if lo != hi else f"{lo}" for lo, hi in spans)
    expected = tuple(sorted({b for lo, hi in spans for b in range(lo, hi + 1)}))
    assert parse_bits(text) == expected
    if expected[-1] >= 32:
        with pytest.raises(FaultzooError, match="outside the 32-bit word"):
            parse_bits(text, 32)


@SETTINGS
@given(st.text(alphabet=string.digits + ",- x.\t+", max_size=20) | st.text(max_size=12))
def test_any_bit_text_parses_or_raises_our_error(text):
    try:
        bits = parse_bits(text, 32)
    except FaultzooError:
        return
    assert bits and list(bits) == sorted(set(bits)) and all(0 <= b < 32 for b in bits)


# --------------------------------------------------------------------------- priors

@SETTINGS
@given(st.floats(0, 1, allow_nan=False))
def test_single_prior_rate(rate):
    assert parse_prior(repr(rate)) == rate


@SETTINGS
@given(st.dictionaries(st.integers(0, 31), st.floats(0, 1, allow_nan=False), min_size=1, max_size=6))
def test_prior_pairs_parse_to_their_mapping(pairs):
    text = ",".join(f"{bit}={rate!r}" for bit, rate in pairs.items())
    assert parse_prior(text) == pairs


@SETTINGS
@given(st.text(alphabet=string.digits + "=,-.e+ naif", max_size=24) | st.text(max_size=12))
def test_any_prior_text_parses_or_raises_our_error(text):
    try:
        prior = parse_prior(text)
    except FaultzooError:
        return
    rates = [prior] if isinstance(prior, float) else list(prior.values())
    assert all(0.0 <= r <= 1.0 and not math.isnan(r) for r in rates)


# --------------------------------------------------------------------------- fault lists in every format

def _index(param: str) -> st.SearchStrategy[tuple[int, ...]]:
    return st.tuples(*(st.integers(0, size - 1) for size in SHAPES[param]))


faults = st.sampled_from(sorted(SHAPES)).flatmap(
    lambda param: st.builds(lambda index, bit: Fault(param, index, (bit,), FaultKind.BITFLIP), _index(param),
                            st.integers(0, 31)))


@SETTINGS
@given(st.lists(faults, min_size=1, max_size=12, unique_by=lambda f: (f.param, f.index, f.bits)),
       st.sampled_from(["faultzoo", "torch", "keras"]))
def test_fault_lists_round_trip_in_every_format(tmp_path_factory, rows, fmt):
    path = tmp_path_factory.mktemp("fl") / "list.csv"
    original = FaultList(tuple(rows), FaultListMeta(design="custom"))
    write_fault_list(original, path, format=fmt, model=MODEL)
    back = read_fault_list(path, MODEL, format=fmt)
    assert back.faults == original.faults


HEADERS = ["Injection,Layer,TensorIndex,Bit", "Injection,Layer,TensorIndex,Bit,n_injections,masked,non_critical,critical"]


@SETTINGS
@given(st.sampled_from(HEADERS), st.lists(st.lists(st.text(alphabet=string.printable, max_size=14), min_size=1,
                                                   max_size=9), max_size=5))
def test_any_csv_content_reads_or_raises_our_error(tmp_path_factory, header, rows):
    path = tmp_path_factory.mktemp("fl") / "list.csv"
    path.write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    try:
        fault_list = read_fault_list(path, MODEL)
    except FaultzooError:
        return
    for fault in fault_list:
        assert fault.param in SHAPES and all(0 <= i < s for i, s in zip(fault.index, SHAPES[fault.param]))


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_read_or_raise_our_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fl") / "list.csv"
    path.write_bytes(data)
    try:
        read_fault_list(path, MODEL)
    except FaultzooError:
        pass


# --------------------------------------------------------------------------- TensorIndex strings

@SETTINGS
@given(st.sampled_from(sorted(SHAPES)).flatmap(lambda p: st.tuples(st.just(p), _index(p))),
       st.sampled_from(["({})", "[{}]", "( {} )"]), st.sampled_from([", ", ",", " , "]))
def test_tensor_index_spellings_parse_right(tmp_path_factory, target, wrap, sep):
    param, index = target
    cell = wrap.format(sep.join(map(str, index)))
    path = tmp_path_factory.mktemp("fl") / "list.csv"
    path.write_text(f'Injection,Layer,TensorIndex,Bit\n0,{param.removesuffix(".weight")},"{cell}",7\n', encoding="utf-8")
    (fault,) = read_fault_list(path, MODEL, format="torch").faults
    assert (fault.param, fault.index, fault.bits) == (param, index, (7,))


@SETTINGS
@given(st.text(alphabet="()[], -+0123456789x.", max_size=16))
def test_any_tensor_index_text_parses_or_raises_our_error(tmp_path_factory, cell):
    path = tmp_path_factory.mktemp("fl") / "list.csv"
    path.write_text(f'Injection,Layer,TensorIndex,Bit\n0,linear,"{cell}",7\n', encoding="utf-8")
    try:
        (fault,) = read_fault_list(path, MODEL, format="torch").faults
    except FaultzooError:
        return
    assert len(fault.index) == 2 and all(0 <= i < s for i, s in zip(fault.index, SHAPES["linear.weight"]))


def test_error_names_file_and_line(tmp_path: Path):
    path = tmp_path / "bad.csv"
    path.write_text('Injection,Layer,TensorIndex,Bit\n0,linear,"(1, 2)",7\n1,linear,"(1, x)",7\n', encoding="utf-8")
    with pytest.raises(FaultzooError, match=r"bad.csv, line 3: malformed TensorIndex"):
        read_fault_list(path, MODEL)
