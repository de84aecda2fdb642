"""The Keras engines agree exactly: keras-fast gives keras-reference's outcome for every (fault, image).

Real cifar10/resnet20 weights, 100 exact CIFAR-10 test images in batches of 48 (three golden batches
of two sizes), faults on every conv and linear layer and on batch-norm tensors, over sign, exponent
and mantissa bits. The twin, the golden run and the reference outcomes are computed once per module.
"""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch

from faultzoo.outcome import Outcome
from faultzoo.exceptions import ExactnessError, FaultError
from faultzoo.faults import Fault, FaultKind, FaultList, read_fault_list, to_keras, write_fault_list
from tests.conftest import require_shared
from tests.keras.conftest import needs_tensorflow

needs_tensorflow()

from faultzoo.backends.keras import (  # noqa: E402
    BatchCheck,
    KerasFastEngine,
    KerasReferenceEngine,
    check_batch_dependence,
    exact_numerics,
    keras_golden_run,
    keras_numerics,
)
from faultzoo.backends.keras.fast_pack import rows_equal  # noqa: E402
from faultzoo.backends.keras.golden import forward_batches, nhwc_images, twin_forward  # noqa: E402

MODEL_ID = "cifar10/resnet20"
IMAGES, BATCH = 100, 48  # golden batches of 48, 48 and 4 images
BITS = (31, 30, 23, 26, 29, 22, 12, 5, 0, 30, 27, 16)  # sign, exponent (30: the catastrophic one), mantissa


class Setup:
    def __init__(self):
        import faultzoo
        from faultzoo.data import load_selection

        self.model = faultzoo.get_model(MODEL_ID)
        self.twin = faultzoo.get_model(MODEL_ID, framework="keras")
        path = require_shared("datasets", "cifar10", "test-first1000-exact.npz")
        data = load_selection(path, dataset="cifar10", limit=IMAGES)
        self.x, self.y = data.x, data.y
        self.golden = keras_golden_run(self.twin, self.x, self.y, batch_size=BATCH)
        self.faults = _faults(self.model)
        self.reference = KerasReferenceEngine(self.model, self.x, self.golden, batch_size=BATCH, twin=self.twin)
        self.expected = self.reference.run(self.faults)


def _faults(model) -> list[tuple[int, Fault]]:
    """Two faults per conv/linear weight (bits cycling over the classes), three on batch norms, one no-op."""
    rng = random.Random(7)
    state = model.state_dict()
    out: list[Fault] = []
    weights = [name for name, t in state.items() if name.endswith(".weight") and t.dim() >= 2]
    for k, name in enumerate(weights):
        shape = state[name].shape
        for j in range(2):
            index = tuple(rng.randrange(n) for n in shape)
            out.append(Fault(name, index, (BITS[(2 * k + j) % len(BITS)],)))
    out.append(Fault("bn1.weight", (3,), (30,)))
    out.append(Fault("layer2.1.bn2.running_var", (7,), (24,)))
    out.append(Fault("layer3.2.bn1.bias", (11,), (31,)))
    # Stuck-at-1 on a bit that is already 1 (the exponent's top bits of a small weight): changes nothing.
    word = int(np.asarray(state["layer1.0.conv1.weight"][0, 0, 0, 0].reshape(1).numpy()).view(np.uint32)[0])
    set_bit = next(b for b in range(29, 22, -1) if word >> b & 1)
    out.append(Fault("layer1.0.conv1.weight", (0, 0, 0, 0), (set_bit,), FaultKind.STUCK_AT_1))
    return list(enumerate(out))


@pytest.fixture(scope="module")
def setup(offline_env) -> Setup:
    return Setup()


@pytest.fixture(scope="module")
def fast(setup) -> tuple[KerasFastEngine, dict]:
    """The fast engine and its outcomes on every fault (its compiled pieces are reused by later tests)."""
    engine = KerasFastEngine(setup.model, setup.x, setup.golden, batch_size=BATCH, twin=setup.twin)
    return engine, engine.run(setup.faults)


def _same(a, b) -> bool:
    return (np.array_equal(a.codes, b.codes) and np.array_equal(a.nonfinite, b.nonfinite)
            and np.array_equal(a.top1, b.top1))


def _assert_identical(got: dict, expected: dict, faults) -> None:
    differ = [str(f) for fid, f in faults if not _same(got[fid], expected[fid])]
    assert not differ, f"{len(differ)} faults differ from the reference, first: {differ[:3]}"


# --------------------------------------------------------------------------- numerics and golden run


def test_numerics_are_applied_recorded_and_restored(setup):
    import tensorflow as tf

    before = tf.config.optimizer.get_experimental_options()
    with exact_numerics():
        assert tf.config.optimizer.get_experimental_options()["disable_meta_optimizer"] is True
        assert tf.config.experimental.tensor_float_32_execution_enabled() is False
    assert tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False) == \
        before.get("disable_meta_optimizer", False)
    info = keras_numerics()
    assert info["framework"] == "keras" and info["dtype"] == "float32" and info["tf32"] is False
    for key in ("tensorflow", "keras", "onednn", "TF_ENABLE_ONEDNN_OPTS", "intra_op_threads", "inter_op_threads"):
        assert key in info


def test_golden_run_is_the_compiled_function_in_golden_batches(setup):
    x = nhwc_images(setup.twin, setup.x)
    with exact_numerics():
        again = forward_batches(twin_forward(setup.twin), x, [slice(0, 48), slice(48, 96), slice(96, 100)])
    assert setup.golden.logits.dtype == torch.float32 and setup.golden.batch_size == BATCH
    assert rows_equal(again, setup.golden.logits.numpy()).all()
    assert torch.equal(setup.golden.labels, setup.y)
    assert setup.golden.accuracy > 85  # resnet20's real weights


def test_batch_check_sees_rows_that_mix():
    x = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    batches = [slice(0, 4), slice(4, 10)]

    def rowwise(rows):
        return rows * np.float32(2)

    def mixing(rows):
        return rows + rows.mean(axis=0, keepdims=True)

    golden = forward_batches(rowwise, x, batches)
    check = check_batch_dependence(rowwise, x, golden, batches)
    assert check.mode == "slots" and check.rows_independent is True
    golden = forward_batches(mixing, x, batches)
    assert check_batch_dependence(mixing, x, golden, batches).mode == "aligned"


def test_the_twins_batch_check(fast):
    engine = fast[0]
    assert engine.batch_check.mode in ("slots", "aligned")
    assert engine.describe()["batch_check"]["detail"]


def test_a_layer_called_twice_is_not_cut():
    import keras

    from faultzoo.backends.keras.graph import TwinGraph

    inputs = keras.Input((4,))
    shared = keras.layers.Dense(4, name="shared")
    hidden = shared(keras.layers.Dense(4, name="first")(inputs))
    outputs = keras.layers.Dense(2, name="last")(shared(hidden))
    graph = TwinGraph(keras.Model(inputs, outputs))
    assert "called 2 times" in graph.cut("shared")
    cut = graph.cut("first")
    assert not isinstance(cut, str) and [n.operation.name for n in cut.partial] == []  # its output is a boundary
    assert cut.macs == 4 * 4 * 3 + 4 * 2 and graph.total_macs == cut.macs


# --------------------------------------------------------------------------- the engines agree


def test_reference_outcomes_cover_every_class(setup):
    codes = np.concatenate([setup.expected[fid].codes for fid, _ in setup.faults])
    assert {int(c) for c in np.unique(codes)} == {Outcome.MASKED, Outcome.NON_CRITICAL, Outcome.CRITICAL}
    assert any(setup.expected[fid].nonfinite.any() for fid, _ in setup.faults)  # exponent bit 30 gives Inf/NaN
    noop = setup.faults[-1][0]
    assert (setup.expected[noop].codes == Outcome.MASKED).all()


def test_fast_engine_equals_reference(setup, fast):
    engine, got = fast
    _assert_identical(got, setup.expected, setup.faults)
    info = engine.describe()
    assert info["fallback"] is None
    layers = {layer.name for layer in setup.twin.layers if layer.name.startswith(("conv2d", "dense"))}
    assert layers <= set(info["layers"])  # every conv and dense layer was exercised
    assert all(not mode.startswith("reference") for mode in info["layers"].values()), info["layers"]
    assert 0 < info["stats"]["rows_dropped"] < info["stats"]["rows"]
    # Every fault was restored: the twin still computes the golden logits.
    x = nhwc_images(setup.twin, setup.x)
    with exact_numerics():
        again = forward_batches(twin_forward(setup.twin), x, [slice(0, 48), slice(48, 96), slice(96, 100)])
    assert rows_equal(again, setup.golden.logits.numpy()).all()


def test_fast_engine_in_small_chunks_and_golden_batches(setup):
    """A tiny memory budget (images in chunks, faults in small groups) and rows kept in their golden
    batches (the fallback when rows depend on each other) give the same outcomes."""
    faults = setup.faults[::5]
    engine = KerasFastEngine(setup.model, setup.x, setup.golden, batch_size=BATCH, twin=setup.twin,
                             memory_budget=3 << 20)
    _assert_identical(engine.run(faults), setup.expected, faults)
    aligned = KerasFastEngine(setup.model, setup.x, setup.golden, batch_size=BATCH, twin=setup.twin)
    aligned.start()
    aligned.batch_check = BatchCheck("aligned", False, "forced by the test")
    _assert_identical(aligned.run(faults), setup.expected, faults)
    assert set(aligned.describe()["layers"].values()) == {"aligned"}


def test_a_keras_list_gives_the_same_results(setup, fast, tmp_path):
    """The PyTorch list, written as an upstream Keras list and read back, drives the same kernels."""
    torch_faults = [(fid, f) for fid, f in setup.faults if f.param.endswith(".weight") and f.kind is FaultKind.BITFLIP
                    and setup.model.state_dict()[f.param].dim() >= 2]
    fault_list = FaultList(tuple(f for _, f in torch_faults), ids=tuple(fid for fid, _ in torch_faults))
    rows = to_keras(fault_list, setup.model)
    assert {r.layer for r in rows} >= {"conv2d", "conv2d_18", "dense"}
    path = write_fault_list(fault_list, tmp_path / "resnet20_keras_FL.csv", format="keras", model=setup.model)
    keras_list = read_fault_list(path, setup.model, format="keras")
    assert list(keras_list) == [f for _, f in torch_faults]
    got = fast[0].run(list(zip(keras_list.ids, keras_list)))
    _assert_identical(got, setup.expected, torch_faults)


# --------------------------------------------------------------------------- refusals


def test_a_golden_run_of_another_function_is_refused(setup):
    other = copy.copy(setup.golden)
    object.__setattr__(other, "logits", setup.golden.logits.clone())
    other.logits[0, 0] = torch.nextafter(other.logits[0, 0], torch.tensor(np.inf))
    engine = KerasReferenceEngine(setup.model, setup.x, other, batch_size=BATCH, twin=setup.twin)
    with pytest.raises(ExactnessError, match="golden logits are not reproduced"):
        engine.start()


def test_a_twin_of_other_weights_is_refused(setup):
    model = copy.deepcopy(setup.model)
    with torch.no_grad():
        model.layer1[0].conv1.weight[1, 2, 0, 1] += 1.0
    engine = KerasReferenceEngine(model, setup.x, setup.golden, batch_size=BATCH, twin=setup.twin)
    with pytest.raises(ExactnessError, match="not built from this model's weights"):
        engine.run([(0, Fault("layer1.0.conv1.weight", (1, 2, 0, 1), (3,)))])


def test_faults_without_a_twin_element_are_refused(setup):
    engine = KerasReferenceEngine(setup.model, setup.x, setup.golden, batch_size=BATCH, twin=setup.twin)
    with pytest.raises(FaultError, match="outside"):
        engine.run([(0, Fault("conv1.weight", (16, 0, 0, 0), (3,)))])
    with pytest.raises(FaultError, match="no variable in the Keras twin"):
        engine.run([(0, Fault("bn1.num_batches_tracked", (), (3,)))])


def test_engines_are_registered(setup):
    import faultzoo.backends.keras.engines  # noqa: F401  (registration)
    from faultzoo.backends.engines import engine_entry, engine_names, make_engine

    assert {"fast", "reference"} <= set(engine_names("keras")) and engine_entry("keras", "fast").label == "keras-fast"
    engine = make_engine("keras", "fast", setup.model, setup.x, setup.golden, batch_size=BATCH, twin=setup.twin)
    assert isinstance(engine, KerasFastEngine)
    fid, fault = setup.faults[0]
    assert 0 < engine.cost(fault) <= 1.02
    _assert_identical(engine.run([(fid, fault)]), setup.expected, [(fid, fault)])
