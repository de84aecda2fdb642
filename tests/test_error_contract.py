"""The error contract of the lower layers (zoo, data, fault lists): whatever a caller passes to a public
entry point, it either works or raises a FaultzooError subclass with a message; never a TypeError,
KeyError, AttributeError, ... from deep inside, nor an exception of numpy, torch, PIL or csv.

Property tests: Hypothesis feeds wrong types and values (None, bools, ints, huge ints, floats, NaN,
bytes, lists, dicts, garbage strings, nonexistent paths, files of garbage, wrong model objects) to
one argument at a time, the others valid, and accepts only a result or a FaultzooError. Downloads
never happen: tests/conftest.py sets FAULTZOO_OFFLINE=1, and no example asks for weights="default".
"""

from __future__ import annotations

import io
import math
import os
import string
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import faultzoo
from faultzoo.data import NpzDataset, dataset_info, load_selection, select_indices
from faultzoo.data.custom import parse_transform, selection_from_tensors
from faultzoo.exceptions import FaultzooError
from faultzoo.faults import (
    DESIGNS, Fault, FaultKind, FaultList, format_fault_list, injected, parse_bits, read_fault_list, write_fault_list,
)
from faultzoo.faults.sampling import sample_size
from faultzoo.zoo.recipes import parse_model_spec

MODEL_ID = "cifar10/resnet20"
# FAULTZOO_CONTRACT_EXAMPLES=1000 searches longer (the default keeps the file at about 15 s).
EXAMPLES = int(os.environ.get("FAULTZOO_CONTRACT_EXAMPLES", "60"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FEW = settings(SETTINGS, max_examples=max(1, EXAMPLES // 2))


def holds(call, *args, **kwargs):
    """``call(*args, **kwargs)``'s result, or the FaultzooError it raised (with a message); any other
    exception propagates and fails the test with the falsifying example."""
    try:
        return call(*args, **kwargs)
    except FaultzooError as exc:
        message = str(exc)
        assert message.strip() and len(message) < 20_000, f"{type(exc).__name__} without a usable message"
        return exc


# --------------------------------------------------------------------------- values of every kind

HUGE = st.sampled_from([10**30, -(10**30), 2**64, 10**5000, -(10**5000)])
numbers_ = st.one_of(
    st.integers(), HUGE, st.floats(), st.sampled_from([0, -1, 1, 0.0, -0.0, 0.5, 1.0, float("nan"), float("inf")]),
    st.builds(np.float32, st.floats(-1e6, 1e6, width=32)), st.builds(np.int64, st.integers(-2**63, 2**63 - 1)),
    st.complex_numbers(max_magnitude=10),
)
containers = st.one_of(
    st.lists(st.integers() | st.text(max_size=4) | st.none(), max_size=4).flatmap(
        lambda xs: st.sampled_from([xs, tuple(xs), set(map(str, xs))])),
    st.dictionaries(st.text(max_size=4) | st.integers(-3, 70), st.integers() | st.floats() | st.text(max_size=3),
                    max_size=3),
    st.builds(lambda xs: np.asarray(xs, dtype=np.float64), st.lists(st.floats(), max_size=3)),
)
junk = st.one_of(
    st.none(), st.booleans(), numbers_, st.binary(max_size=8), st.text(max_size=16), containers,
    st.sampled_from([object(), torch.tensor(1.5), torch.zeros(2, 2), torch.nn.Linear(2, 2), type, print,
                     "", " ", "\x00", "a" * 5000, "~nobody-here/x", "é,;\n\"", "-1", "3.5", "1e999", "nan"]),
)
names = st.text(string.ascii_letters + string.digits + "._*-/,:?[]", max_size=14)


@pytest.fixture(autouse=True)
def _offline_and_no_datasets(tmp_path_factory, monkeypatch):
    """No download ever (tests/conftest.py sets FAULTZOO_OFFLINE=1: checked here), and dataset names resolve
    under an empty data root, never the user's own (possibly large) datasets."""
    assert os.environ.get("FAULTZOO_OFFLINE") == "1", "tests/conftest.py no longer turns downloads off"
    monkeypatch.setenv("FAULTZOO_DATA", str(tmp_path_factory.mktemp("no-data")))


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """A small untrained zoo model, built once (no weights: nothing to fetch)."""
    return faultzoo.get_model(MODEL_ID, weights=None)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("contract")


@pytest.fixture(scope="module")
def small_list(model) -> FaultList:
    return faultzoo.sample_network(model, n=6, layers="linear", seed=3, model_id=MODEL_ID)


@pytest.fixture(scope="module")
def list_files(work, small_list, model) -> dict[str, Path]:
    return {fmt: write_fault_list(small_list, work / f"list_{fmt}.csv", format=fmt, model=model)
            for fmt in ("faultzoo", "torch", "keras")}


@pytest.fixture(scope="module")
def npz_file(work) -> Path:
    rng = np.random.default_rng(0)
    path = work / "images.npz"
    np.savez(path, x=rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8), y=np.array([0, 1, 2, 3, 4, 5]))
    return path


def inside(folder: Path):
    """Text as a path inside ``folder`` (never elsewhere: no '/', so no absolute path or sub-folder)."""
    return st.text(max_size=12).map(lambda t: str(folder / t.replace("/", "_").replace("\x00", "_")))


def affordable(design: str, option: str, value: object) -> bool:
    """False for valid values that would make the dnn-benchmarks design sample (most of) its 17 million faults:
    they are correct but slow, and this file is about wrong values."""
    if design != "dnn-benchmarks" or isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        return True
    try:
        v = float(value)
    except OverflowError:
        return True
    if not math.isfinite(v):
        return True
    return not ((option == "error" and 0 < v < 0.02) or (option == "t" and v > 4)
                or (option == "confidence" and 0.999 < v < 1))


# --------------------------------------------------------------------------- zoo


@SETTINGS
@given(st.one_of(junk, names, st.sampled_from(["cifar10/resnet2", "CIFAR10/resnet20", "cifar10/", "/"])))
def test_get_model_model_id(model_id):
    result = holds(faultzoo.get_model, model_id, weights=None)
    assert isinstance(result, (FaultzooError, torch.nn.Module))


@SETTINGS
@given(st.one_of(junk, names))
def test_get_model_weights(weights):
    # "default" is the real checkpoint: valid, read from the mirror, and not what this file tests.
    assume(not (isinstance(weights, str) and weights == "default"))
    holds(faultzoo.get_model, MODEL_ID, weights=weights)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@FEW
@given(st.one_of(st.binary(max_size=64), st.binary(min_size=1, max_size=64).map(lambda b: b"PK\x03\x04" + b),
                 st.binary(max_size=64).map(lambda b: b"\x80" + b)))
def test_get_model_weights_garbage_file(work, content):
    path = work / "garbage.pth"
    path.write_bytes(content)
    assert isinstance(holds(faultzoo.get_model, MODEL_ID, weights=path), FaultzooError)


checkpoint_objects = st.one_of(
    st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=8) | st.integers(), st.integers() | st.text(max_size=3) | st.just(torch.ones(2)),
                    max_size=3),
    st.sampled_from(["state_dict", "net", "model"]).flatmap(
        lambda key: st.builds(lambda v: {key: v}, st.integers() | st.just({"conv1.weight": 1})
                              | st.just({5: torch.ones(1)}) | st.just({"conv1.weight": torch.ones(3)}))),
)


@FEW
@given(checkpoint_objects)
def test_get_model_weights_checkpoint_of_junk(work, obj):
    path = work / "junk.pt"
    torch.save(obj, path)
    assert isinstance(holds(faultzoo.get_model, MODEL_ID, weights=str(path)), FaultzooError)


@FEW
@given(junk.filter(lambda v: not (isinstance(v, str) and v in ("torch", "keras"))
                   and not isinstance(v, np.ndarray)))  # get_model compares framework with != (not ours to change)
def test_get_model_framework(framework):
    assert isinstance(holds(faultzoo.get_model, MODEL_ID, weights=None, framework=framework), FaultzooError)


@SETTINGS
@given(st.one_of(junk, names), st.one_of(junk, names))
def test_list_models(dataset, pattern):
    result = holds(faultzoo.list_models, dataset, pattern)
    assert isinstance(result, (FaultzooError, list))


@SETTINGS
@given(st.one_of(junk, names, st.sampled_from(faultzoo.list_models())))
def test_model_info(model_id):
    holds(faultzoo.model_info, model_id)


@SETTINGS
@given(st.one_of(junk, names), st.one_of(junk, st.none(), st.sampled_from(["default", "w.pth"])),
       st.one_of(st.none(), junk))
def test_parse_model_spec(spec, weights, num_classes):
    holds(parse_model_spec, spec, weights=weights, num_classes=num_classes)


# --------------------------------------------------------------------------- bits, sample sizes, single faults

bit_text = st.text(string.digits + ",- ", max_size=14) | st.sampled_from(["0-99999999999", "31", "1" * 5000, "3-1"])


@SETTINGS
@given(st.one_of(junk, bit_text, st.lists(st.integers(-3, 70) | numbers_, max_size=4)),
       st.one_of(st.none(), st.integers(-2, 70), junk))
def test_parse_bits(spec, width):
    result = holds(parse_bits, spec, width)
    if isinstance(result, tuple):
        assert list(result) == sorted(set(result)) and all(0 <= b < (width or 64) for b in result)


@SETTINGS
@given(st.one_of(st.integers(-5, 10**12), junk), st.one_of(numbers_, junk), st.one_of(st.none(), numbers_, junk),
       st.one_of(st.none(), numbers_, junk), st.one_of(numbers_, junk))
def test_sample_size(population, error, t, confidence, p):
    result = holds(sample_size, population, error, t=t, confidence=confidence, p=p)
    assert isinstance(result, (FaultzooError, int))


@SETTINGS
@given(st.one_of(junk, names), st.one_of(junk, st.tuples(st.integers(-2, 70), st.integers(0, 3))),
       st.one_of(junk, st.integers(-2, 70)), st.one_of(junk, st.sampled_from([k.value for k in FaultKind])))
def test_fault(param, index, bits, kind):
    holds(Fault, param, index, bits, kind)


VALID = object()  # stands for the valid argument


@FEW
@given(st.one_of(junk, st.just(VALID)), st.one_of(junk, st.just(VALID)))
def test_injected(model, small_list, which_model, which_fault):
    target = model if which_model is VALID else which_model
    fault = small_list[0] if which_fault is VALID else which_fault

    def inject():
        with injected(target, fault):
            pass

    holds(inject)


# --------------------------------------------------------------------------- sampling designs

DESIGN_BASE = {  # valid options that keep every list small; the fuzzed option replaces one of them
    "dnn-benchmarks": {"error": 0.05},
    "network": {"error": 0.05, "layers": "linear"},
    "layer": {"error": 0.05, "layers": "linear"},
    "layer-bit": {"error": 0.05, "layers": "linear"},
    "exhaustive": {"layers": "linear", "bits": "31", "max_faults": 50_000},
}
OPTION_VALUES = {
    "error": numbers_, "t": numbers_, "confidence": numbers_, "p": numbers_, "seed": numbers_,
    "n": st.integers(-5, 10**6) | HUGE, "min_per_stratum": st.integers(-5, 10**5) | HUGE,
    "max_faults": st.integers(-5, 10**6) | HUGE,
    "kind": st.sampled_from(["bitflip", "stuck-at-0", "stuck-at-1", "flip", FaultKind.STUCK_AT_1]),
    "targets": st.sampled_from(["weights", "bias", "bn", "bn-stats", "all", "weights,bias", "x", ["bias"], ["bn", 3]]),
    "layers": st.sampled_from(["linear", "conv1", "layer1.0.conv1", "nope*", ["linear"], [3], ""]) | names,
    "bits": bit_text | st.lists(st.integers(-3, 70), max_size=3),
    "allocation": st.sampled_from(["proportional", "neyman", "optimal"]),
    "prior": st.one_of(st.floats(), st.dictionaries(st.integers(-3, 70), st.floats(), max_size=3),
                       st.dictionaries(st.tuples(st.sampled_from(["linear", "linear.weight", "x"]), st.integers(0, 40)),
                                       st.floats(0, 1), max_size=2),
                       st.just(lambda param, bit: 0.3), st.just(lambda param, bit: "high"),
                       st.just(lambda param, bit: float("nan"))),
    "model_id": names, "weights_sha256": names,
}


@st.composite
def design_call(draw):
    design = draw(st.sampled_from(sorted(DESIGNS)))
    option = draw(st.sampled_from([*DESIGNS[design].options, "bogus"]))
    value = draw(junk | OPTION_VALUES.get(option, junk))
    return design, option, value


@SETTINGS
@given(design_call())
def test_make_fault_list_options(model, call):
    design, option, value = call
    assume(affordable(design, option, value))
    options = {**DESIGN_BASE[design], option: value}
    if design == "layer-bit" and option == "prior":
        options["allocation"] = "neyman"
    result = holds(faultzoo.make_fault_list, model, design, **options)
    assert isinstance(result, (FaultzooError, FaultList))
    if isinstance(result, FaultList):
        assert len(result) > 0
        format_fault_list(result)  # whatever a design accepted, its metadata can be written


@FEW
@given(junk)
def test_designs_reject_wrong_models(model_like):
    for build in (faultzoo.make_fault_list, faultzoo.dnn_benchmarks_fault_list, faultzoo.sample_network,
                  faultzoo.sample_layers, faultzoo.sample_layer_bits, faultzoo.exhaustive):
        assert isinstance(holds(build, model_like), FaultzooError) or isinstance(model_like, torch.nn.Module)


@FEW
@given(st.one_of(junk, names))
def test_make_fault_list_design_name(model, design):
    known = isinstance(design, str) and design in DESIGNS
    assume(not known or design in ("network", "layer-bit", "exhaustive"))
    options = {"network": {"n": 3}, "layer-bit": {"n": 3, "layers": "linear"}, "exhaustive": DESIGN_BASE["exhaustive"]}
    holds(faultzoo.make_fault_list, model, design, **(options[design] if known else {}))


@SETTINGS
@given(st.sampled_from(["sample_network", "sample_layers", "sample_layer_bits", "dnn_benchmarks_fault_list"]),
       st.sampled_from(["error", "t", "confidence", "p", "seed"]), junk)
def test_design_functions_numbers(model, name, option, value):
    design = {"sample_network": "network", "sample_layers": "layer", "sample_layer_bits": "layer-bit",
              "dnn_benchmarks_fault_list": "dnn-benchmarks"}[name]
    assume(affordable(design, option, value))
    holds(getattr(faultzoo, name), model, **{**DESIGN_BASE[design], option: value})


# --------------------------------------------------------------------------- reading and writing fault lists


@SETTINGS
@given(st.sampled_from(["path", "model", "format", "model_id", "which"]), st.one_of(junk, names),
       st.sampled_from(["faultzoo", "torch", "keras"]))
def test_read_fault_list_arguments(model, list_files, work, argument, value, fmt):
    kwargs = {"path": list_files[fmt], "model": model, "format": "auto", "model_id": MODEL_ID}
    if argument == "path" and isinstance(value, str):
        value = work / "missing" / value.replace("/", "_")  # never a file outside the test's folder
    if argument != "which":
        kwargs[argument] = value
    path = kwargs.pop("path")
    result = holds(read_fault_list, path, kwargs.pop("model"), **kwargs)
    assert isinstance(result, (FaultzooError, FaultList))


cells = st.one_of(
    st.integers(-3, 40).map(str), HUGE.map(lambda n: str(n) if abs(n) < 10**4000 else "9" * 5000),
    st.sampled_from(['"(0, 1)"', '"(9, 9, 9, 9)"', "(1,)", "()", "[]", '"(-1, 0)"', "linear", "conv1", "dense",
                     "conv2d_3", "fc", "bitflip", "stuck-at-1", "x", "", " ", '"', "\x00", "1;2", "3.5", "nan"]),
    st.text(max_size=6),
)
header = st.one_of(
    st.just("Injection,Layer,TensorIndex,Bit"), st.just("Injection,Param,TensorIndex,Bits,Kind"),
    st.just(",Injection,Layer,TensorIndex,Bit,n_injections"), st.just("Injection,Injection,Layer,TensorIndex,Bit"),
    st.lists(st.sampled_from(["Injection", "Layer", "TensorIndex", "Bit", "Param", "Bits", "Kind", "x", ""]),
             max_size=6).map(",".join),
)
meta = st.one_of(st.just(""), st.sampled_from([
    "# faultzoo fault list v1\n# meta: {}\n", "# faultzoo fault list v1\n# meta: 5\n",
    "# faultzoo fault list v1\n# meta: {\"fingerprint\": 3}\n", "# faultzoo fault list v1\n# meta: [1, 2]\n",
    "# faultzoo fault list v1\n# meta: {\"strata\": [5]}\n", "# faultzoo fault list v1\n# meta: {\"kind\": \"x\"}\n",
    "# faultzoo fault list v1\n# meta: {\"targets\": 5, \"bits\": [\"a\"]}\n", "# faultzoo fault list v1\n# meta: {\n",
    "# faultzoo fault list v1\n# meta: " + "[" * 5000 + "\n", "# faultzoo fault list v1\n",
    "# faultzoo fault list v1\n# meta: {\"seed\": " + "9" * 5000 + "}\n",
]))
csv_text = st.builds(lambda m, h, rows: m + h + "\n" + "\n".join(",".join(r) for r in rows) + "\n",
                     meta, header, st.lists(st.lists(cells, min_size=1, max_size=6), max_size=5))


@SETTINGS
@given(st.one_of(csv_text, st.text(max_size=200), st.binary(max_size=200)),
       st.sampled_from(["auto", "faultzoo", "torch", "keras"]), st.booleans())
def test_read_fault_list_garbage_contents(model, work, content, fmt, with_model):
    path = work / "garbage_FL.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    result = holds(read_fault_list, path, model if with_model else None, format=fmt)
    assert isinstance(result, (FaultzooError, FaultList))


@SETTINGS
@given(st.data())
def test_read_fault_list_edited_files(model, list_files, work, data):
    """A valid file with one edit (a character replaced, inserted or deleted): read or refused with our error."""
    text = list_files[data.draw(st.sampled_from(sorted(list_files)))].read_text()
    at = data.draw(st.integers(0, len(text)))
    edit = data.draw(st.sampled_from(["replace", "insert", "delete"]))
    char = data.draw(st.sampled_from(list(",\"()-;#\n\x00 9x{}")) | st.characters())
    text = (text[:at] + char + text[at + (edit == "replace"):] if edit != "delete" else text[:at] + text[at + 1:])
    path = work / "edited_FL.csv"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    holds(read_fault_list, path, data.draw(st.sampled_from([model, None])))


@SETTINGS
@given(st.sampled_from(["fault_list", "path", "format", "model"]), junk)
def test_write_fault_list_arguments(model, small_list, work, argument, value):
    kwargs = {"fault_list": small_list, "path": work / "out.csv", "format": "keras", "model": model}
    if argument == "path" and isinstance(value, str):
        value = str(work / value.replace("/", "_"))  # inside the test's folder, NUL characters kept
    kwargs[argument] = value
    result = holds(write_fault_list, kwargs.pop("fault_list"), kwargs.pop("path"), **kwargs)
    assert isinstance(result, (FaultzooError, Path))


@FEW
@given(st.sampled_from(["fault_list", "model"]), junk)
def test_validate_arguments(model, small_list, argument, value):
    from faultzoo.faults import validate

    kwargs = {"fault_list": small_list, "model": model, argument: value}
    holds(validate, kwargs["fault_list"], kwargs["model"])


# --------------------------------------------------------------------------- data


@SETTINGS
@given(st.sampled_from(["data", "dataset", "split", "limit", "per_class", "root", "download", "progress"]),
       st.one_of(junk, names, st.sampled_from(["cifar10", "cifar100", "gtsrb", "test", "train"])))
def test_load_selection_arguments(npz_file, work, argument, value):
    kwargs = {"data": str(npz_file), "dataset": "cifar10", "limit": 3}
    if argument in ("data", "root") and isinstance(value, str) and value not in ("cifar10", "cifar100", "gtsrb"):
        value = str(work / "nothing-here" / value.replace("/", "_"))
    if argument == "root":
        kwargs["data"] = "cifar10"  # a root is looked at for dataset names only
    if argument == "progress" and callable(value):  # a function of the caller's: its own errors are its own
        value = lambda done, total: None  # noqa: E731
    kwargs[argument] = value
    result = holds(load_selection, kwargs.pop("data"), **kwargs)
    assert isinstance(result, (FaultzooError, faultzoo.DataSelection))


npz_arrays = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.int64, np.float32, np.bool_, np.int8, np.uint16, np.dtype("U2")]),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4),
)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["x", "y", "idx", "z"]),
                       npz_arrays | st.just(np.zeros((2, 32, 32, 3), np.uint8)) | st.just(np.array([0, 1])),
                       max_size=3),
       st.sampled_from(["cifar10", "gtsrb"]))
def test_load_selection_npz_of_any_arrays(work, arrays, dataset):
    path = work / "arrays.npz"
    np.savez(path, **arrays)
    holds(load_selection, path, dataset=dataset)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@FEW
@given(st.one_of(st.binary(max_size=300), st.lists(st.tuples(st.sampled_from(["x.npy", "y.npy", "idx.npy", "x"]),
                                                            st.binary(max_size=100)), max_size=3)))
def test_load_selection_garbage_npz(work, content):
    path = work / "garbage.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, member in content:
                archive.writestr(name, b"\x93NUMPY" + member if name.endswith(".npy") and member[:1] == b"\x01"
                                 else member)
        path.write_bytes(buffer.getvalue())
    assert isinstance(holds(load_selection, path, dataset="cifar10"), FaultzooError)


@SETTINGS
@given(st.one_of(junk, names), st.one_of(junk, st.sampled_from(["cifar10", "gtsrb"])))
def test_npz_dataset_and_dataset_info(work, path, dataset):
    if isinstance(path, str):
        path = work / "absent" / path.replace("/", "_")
    holds(NpzDataset, path, dataset)
    holds(dataset_info, dataset)


@SETTINGS
@given(st.one_of(junk, st.lists(st.integers(-2, 5) | st.lists(st.integers(), max_size=2), max_size=5)),
       st.one_of(st.none(), junk), st.one_of(st.none(), junk))
def test_select_indices(labels, limit, per_class):
    holds(select_indices, labels, limit=limit, per_class=per_class)


@SETTINGS
@given(st.one_of(junk, st.just(torch.zeros(2, 3, 4, 4)), st.just(np.zeros((2, 3, 4, 4)))),
       st.one_of(junk, st.just(torch.tensor([0, 1])), st.just([0, 1]), st.just([True, False])))
def test_selection_from_tensors(x, y):
    holds(selection_from_tensors, x, y)


@SETTINGS
@given(st.one_of(junk, st.text(string.ascii_letters + string.digits + "=,:.e-_", max_size=30),
                 st.sampled_from(["resize=" + "9" * 5000, "std=0:1", "mean=1", "ResNet18_Weights.NOPE", "crop=0"])))
def test_parse_transform(text):
    holds(parse_transform, text)


images = st.one_of(junk, st.sampled_from([torch.zeros(3, 4, 4), torch.zeros(3, 5, 4),
                                         torch.zeros(3, 4, 4, dtype=torch.int64)]))
items = st.one_of(junk, st.tuples(images, st.one_of(junk, st.integers(0, 3), st.just(torch.tensor(2)))))


@SETTINGS
@given(st.one_of(junk, st.lists(items, max_size=3)), st.one_of(st.none(), junk))
def test_selection_from_dataset(ds, limit):
    from faultzoo.data.custom import selection_from_dataset

    holds(selection_from_dataset, ds, limit=limit)


@SETTINGS
@given(st.sampled_from(["x", "y", "indices", "source", "dataset", "kind", "split", "sample_ids"]), junk)
def test_data_selection(argument, value):
    kwargs = {"x": torch.zeros(2, 3, 4, 4), "y": torch.tensor([0, 1]), "indices": np.arange(2), "source": "tensors",
              "dataset": "custom", argument: value}
    selection = holds(faultzoo.DataSelection, **kwargs)
    if isinstance(selection, faultzoo.DataSelection):
        selection.describe()  # provenance and fingerprint of whatever was accepted


@FEW
@given(st.lists(st.binary(max_size=40).map(lambda b: b"\x89PNG\r\n\x1a\n" + b) | st.binary(max_size=40),
                min_size=1, max_size=3),
       st.one_of(junk, st.just("resize=4,crop=4"), st.just(lambda image: image)))
def test_imagefolder_of_garbage_images(work, contents, transform):
    from faultzoo.data.custom import selection_from_imagefolder

    folder = work / "imagefolder"
    for i, content in enumerate(contents):
        (folder / f"class{i % 2}").mkdir(parents=True, exist_ok=True)
        (folder / f"class{i % 2}" / f"{i}.png").write_bytes(content)
    holds(selection_from_imagefolder, folder, transform)


# --------------------------------------------------------------------------- word-level helpers and the Keras mapping


@SETTINGS
@given(st.one_of(junk, st.sampled_from([torch.ones(2), torch.ones((), dtype=torch.float16),
                                        torch.ones(2, dtype=torch.int32)])),
       st.one_of(junk, st.integers(-2, 70), st.lists(st.integers(-2, 70), max_size=3)),
       st.one_of(junk, st.sampled_from([k.value for k in FaultKind])))
def test_corrupt_and_word_helpers(values, bits, kind):
    from faultzoo.faults import corrupt, same_bits, word_bits

    holds(corrupt, values, bits, kind)
    holds(word_bits, values)
    holds(same_bits, values, torch.ones(2))


@SETTINGS
@given(st.one_of(junk, st.lists(st.one_of(junk, st.tuples(st.sampled_from(["conv2d", "dense", "conv2d_99", "x"]) | junk,
                                                          st.tuples(*[st.integers(-1, 3)] * 4) | junk,
                                                          st.integers(-1, 40) | junk)), max_size=3)),
       st.one_of(junk, st.just(VALID)))
def test_keras_mapping(model, small_list, rows, which_model):
    from faultzoo.faults import from_keras, keras_layer_names, to_keras

    target = model if which_model is VALID else which_model
    holds(from_keras, rows, target)
    holds(to_keras, small_list if which_model is VALID else rows, target)
    holds(keras_layer_names, target)


@SETTINGS
@given(st.one_of(junk, st.sampled_from(["cifar10", "cifar100", "gtsrb", "mnist"])),
       st.one_of(junk, st.sampled_from(["test", "train", "val"])), st.one_of(st.none(), junk), st.booleans())
def test_load_dataset(work, name, split, root, download):
    from faultzoo.data import load_dataset

    if isinstance(root, str):
        root = str(work / "no-datasets" / root.replace("/", "_"))
    assert isinstance(holds(load_dataset, name, split, root=root, download=download), FaultzooError)
