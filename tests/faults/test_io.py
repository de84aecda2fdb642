"""Formats: our own round trip, upstream lists and results, validation errors naming file and line."""

from __future__ import annotations

import os

import pytest

from faultzoo.exceptions import FaultListFormatError
from faultzoo.faults import (
    Fault,
    FaultKind,
    FaultList,
    FaultListMeta,
    read_fault_list,
    sample_layer_bits,
    validate,
    write_fault_list,
)

HEADER = "Injection,Layer,TensorIndex,Bit\n"


def _write(tmp_path, text, name="list.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_faultzoo_format_round_trip_keeps_everything(tiny, tmp_path):
    fl = sample_layer_bits(tiny, targets="all", bits="30-31", n=20, seed=2, kind="stuck-at-0",
                           model_id="tiny", weights_sha256="ab" * 32)
    fl = FaultList(fl.faults + (Fault("fc.bias", (1,), (3, 31), "stuck-at-1"),), fl.meta,
                   ids=[i * 3 for i in range(len(fl) + 1)], extra={"note": ["a,b"] + ["x"] * len(fl)})
    path = write_fault_list(fl, tmp_path / "sub" / "ours.csv")
    again = read_fault_list(path, tiny, model_id="tiny")
    assert list(again) == list(fl) and again.ids == fl.ids and again.extra == fl.extra
    assert again.meta == fl.meta.__class__(**{**fl.meta.__dict__, "source_file": str(path),
                                              "source_format": "faultzoo"})
    assert again.fingerprint() == fl.fingerprint()
    assert path.read_text().splitlines()[0] == "# faultzoo fault list v1"
    assert [p for p in os.listdir(path.parent) if p != "ours.csv"] == []  # no temp files left


def test_faultzoo_format_detects_edits_and_model_mismatch(tiny, tmp_path):
    fl = sample_layer_bits(tiny, n=10, model_id="tiny")
    path = write_fault_list(fl, tmp_path / "ours.csv")
    lines = path.read_text().splitlines(keepends=True)
    edited = _write(tmp_path, "".join(lines[:3] + lines[4:]), "edited.csv")
    with pytest.raises(FaultListFormatError, match="do not match the fingerprint"):
        read_fault_list(edited)
    with pytest.raises(FaultListFormatError, match="made for model 'tiny', not 'cifar10/resnet20'"):
        read_fault_list(path, model_id="cifar10/resnet20")
    broken = _write(tmp_path, lines[0] + "# meta: {not json\n" + "".join(lines[2:]), "broken.csv")
    with pytest.raises(FaultListFormatError, match=r"broken.csv, line 2: the metadata is not valid JSON"):
        read_fault_list(broken)


def test_upstream_results_list_keeps_results_and_ids(tiny, tmp_path):
    text = ("Injection,Layer,TensorIndex,Bit,n_injections,masked,non_critical,critical\n"
            '5,conv,"(3, 0, 2, 1)",15,10000,14,9985,1\n'
            '9,fc,"(4, 3)",31,10000,0,9000,1000\n')
    fl = read_fault_list(_write(tmp_path, text), tiny)
    assert fl.ids == (5, 9) and fl.meta.source_format == "torch" and fl.meta.design == "unknown"
    assert fl[0] == Fault("conv.weight", (3, 0, 2, 1), (15,), FaultKind.BITFLIP)
    assert fl.extra == {"n_injections": (10000, 10000), "masked": (14, 0), "non_critical": (9985, 9000),
                        "critical": (1, 1000)}
    out = write_fault_list(fl, tmp_path / "back.csv", format="torch")
    assert out.read_text() == text


def test_pandas_index_column_and_crlf_are_tolerated(tiny, tmp_path):
    text = ',Injection,Layer,TensorIndex,Bit\r\n0,0,conv,"(3, 0, 2, 1)",15\r\n1,1,fc,"(4, 3)",2\r\n\r\n'
    fl = read_fault_list(_write(tmp_path, text), tiny)
    assert [f.param for f in fl] == ["conv.weight", "fc.weight"]


def test_keras_list_needs_the_model(tiny, tmp_path):
    path = _write(tmp_path, HEADER + '0,conv2d,"(2, 1, 0, 3)",15\n1,dense,"(3, 4)",2\n')
    with pytest.raises(FaultListFormatError, match="Keras fault list.*needs the PyTorch model"):
        read_fault_list(path)
    fl = read_fault_list(path, tiny)
    assert list(fl) == [Fault("conv.weight", (3, 0, 2, 1), (15,)), Fault("fc.weight", (4, 3), (2,))]
    bad = _write(tmp_path, HEADER + '0,conv2d_7,"(2, 1, 0, 3)",15\n', "bad.csv")
    with pytest.raises(FaultListFormatError, match="bad.csv, line 2: unknown Keras layer 'conv2d_7'"):
        read_fault_list(bad, tiny, format="keras")


@pytest.mark.parametrize(("body", "message"), [
    ('0,conv,"(3, 0, 2, 1)"\n', r"line 2: wrong number of columns; expected 4"),
    ('0,conv,"(3, 0, 2, 1)",x\n', r"line 2: Bit is not a bit number.*found 'x'"),
    ('0,conv,"(3, 0, 2, 1)",15\nzero,conv,"(3, 0, 2, 1)",14\n', r"line 3: Injection is not an integer"),
    ('0,conv,"3, 0, 2, 1",15\n', r"line 2: malformed TensorIndex.*found '3, 0, 2, 1'"),
    ('0,conv,"(3, a)",15\n', r"line 2: malformed TensorIndex"),
    ('0,conv,"(3, -1, 2, 1)",15\n', r"line 2: negative TensorIndex entry"),
    ('0,conv,"(3, 0, 2, 1)",99\n', r"line 2: Bit out of range"),
    ('0,,"(3, 0, 2, 1)",1\n', r"line 2: empty Layer"),
])
def test_malformed_rows_name_file_and_line(tmp_path, body, message):
    path = _write(tmp_path, HEADER + body)
    with pytest.raises(FaultListFormatError, match=f"list.csv, {message}"):
        read_fault_list(path)


def test_missing_columns_and_files(tmp_path):
    with pytest.raises(FaultListFormatError, match=r"line 1: missing column\(s\) TensorIndex"):
        read_fault_list(_write(tmp_path, "Injection,Layer,Bit\n0,conv,1\n"))
    with pytest.raises(FaultListFormatError, match="does not exist"):
        read_fault_list(tmp_path / "nope.csv")
    with pytest.raises(FaultListFormatError, match="no header row"):
        read_fault_list(_write(tmp_path, "", "empty.csv"))


def test_duplicate_ids_are_rejected_even_without_a_model(tmp_path):
    path = _write(tmp_path, HEADER + '0,conv,"(3, 0, 2, 1)",15\n1,conv,"(3, 0, 2, 1)",14\n0,fc,"(1, 1)",1\n')
    with pytest.raises(FaultListFormatError, match=r"line 4 \(Injection 0\): duplicate Injection id 0.*line 2"):
        read_fault_list(path)


@pytest.mark.parametrize(("row", "message"), [
    ('conv1,"(0, 0, 0, 0)",1', r"unknown layer 'conv1': the model has no tensor 'conv1.weight'; did you mean 'conv.weight'"),
    ('conv,"(4, 0, 0, 0)",1', r"out of bounds for 'conv' of shape \(4, 3, 3, 3\): dimension 0 is 4, expected 0..3"),
    ('fc,"(1, 1, 1)",1', r"has 3 dimensions; expected 2"),
    ('fc,"(1, 1)",32', r"bit 32 of 'fc' is outside its 32-bit torch.float32 word; expected 0..31"),
])
def test_validation_against_the_model(tiny, tmp_path, row, message):
    path = _write(tmp_path, HEADER + '0,conv,"(0, 0, 0, 0)",1\n' + f"1,{row}\n")
    with pytest.raises(FaultListFormatError, match=rf"1 problem in .*list.csv:\n  .*list.csv, line 3 \(Injection 1\): .*{message}"):
        read_fault_list(path, tiny)
    read_fault_list(path)  # without a model only the syntax is checked


def test_validate_reports_many_problems_and_duplicates(tiny):
    faults = [Fault("conv.weight", (9, 0, 0, 0), (1,))] * 12 + [Fault("fc.weight", (0, 0), (1,))] * 2
    # 12 out-of-bounds rows + 1 repeated fault; the message shows the first 10.
    with pytest.raises(FaultListFormatError, match=r"(?s)13 problems in the fault list.*and 3 more") as info:
        validate(FaultList(faults), tiny)
    assert "row 0 (Injection 0)" in str(info.value)
    with pytest.raises(FaultListFormatError, match=r"row 1 \(Injection 8\): repeats the fault of .*row 0"):
        validate(FaultList(faults[-2:], ids=[7, 8]), tiny)
    validate(FaultList(faults[-2:]), tiny, allow_duplicate_faults=True)


def test_upstream_formats_refuse_faults_they_cannot_hold(tiny, tmp_path):
    target = _write(tmp_path, "keep me\n", "existing.csv")
    for fault in (Fault("conv.weight", (0, 0, 0, 0), (1,), "stuck-at-1"), Fault("conv.weight", (0, 0, 0, 0), (1, 2))):
        with pytest.raises(FaultListFormatError, match="single bit flips only.*format='faultzoo'"):
            write_fault_list(FaultList((fault,)), target, format="torch")
    with pytest.raises(FaultListFormatError, match="needs the PyTorch model"):
        write_fault_list(FaultList((Fault("conv.weight", (0, 0, 0, 0), (1,)),)), target, format="keras")
    with pytest.raises(FaultListFormatError, match="no Keras twin"):
        write_fault_list(FaultList((Fault("conv.bias", (0,), (1,)),)), target, format="keras", model=tiny)
    with pytest.raises(FaultListFormatError, match="Unknown fault-list format 'csv'"):
        write_fault_list(FaultList(()), target, format="csv")
    assert target.read_text() == "keep me\n"  # a failed write leaves the old file alone


def test_bias_faults_round_trip_through_torch_format_without_model(tmp_path):
    fl = FaultList((Fault("conv.bias", (2,), (31,)), Fault("conv.weight", (0, 0, 0, 0), (0,))),
                   FaultListMeta(design="network"))
    path = write_fault_list(fl, tmp_path / "t.csv", format="torch")
    assert path.read_text().splitlines()[1] == '0,conv.bias,"(2,)",31'
    assert list(read_fault_list(path)) == list(fl)


def test_a_file_model_is_known_by_file_and_function_wherever_the_file_lies(tiny, tmp_path):
    fl = sample_layer_bits(tiny, n=5, model_id=str(tmp_path / "nets" / "lab_nets.py") + ":build")
    assert fl.meta.model_id == "lab_nets.py:build"  # recorded without the folders
    path = write_fault_list(fl, tmp_path / "lab_FL.csv")
    for model_id in ("lab_nets.py:build", "./lab_nets.py:build", f"{tmp_path}/lab_nets.py:build"):
        assert read_fault_list(path, tiny, model_id=model_id).meta.model_id == "lab_nets.py:build"
    with pytest.raises(FaultListFormatError, match="made for model 'lab_nets.py:build', not 'other.py:build'"):
        read_fault_list(path, tiny, model_id="other.py:build")
    with pytest.raises(FaultListFormatError, match="not './lab_nets.py:other'"):
        read_fault_list(path, tiny, model_id="./lab_nets.py:other")
    upstream = write_fault_list(fl, tmp_path / "lab_torch.csv", format="torch")
    assert read_fault_list(upstream, tiny, model_id="./lab_nets.py:build").meta.model_id == "lab_nets.py:build"


def test_the_repeat_advice_is_a_command_for_the_list_at_hand(tiny, tmp_path):
    fault = Fault("fc.weight", (0, 0), (1,))
    with pytest.raises(FaultListFormatError, match=r"FaultList.without_repeats\(\) drops them"):
        validate(FaultList([fault, fault]), tiny)  # no file: the Python call
    path = write_fault_list(FaultList([fault, fault]), tmp_path / "my list.csv")
    with pytest.raises(FaultListFormatError) as info:
        read_fault_list(path, tiny)
    assert (f"`faultzoo faultlist convert '{path}' --dedupe -o '{tmp_path}/my list_unique.csv'` writes the list "
            "without repeats") in str(info.value)
