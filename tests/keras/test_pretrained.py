"""Real upstream checkpoints: the Keras twin classifies real images as the PyTorch model does.

On the 1,000 exact CIFAR-10 test images, top-1 must agree on every image; on the 10,000 JPEG
copies (lossy, real-world-like input) on at least 99.9 % of them. Both frameworks run their
documented inference paths (PyTorch: faultzoo.inference.predict_logits; Keras:
faultzoo.keras.predict_logits) on the same tensors (NCHW for PyTorch, to_nhwc for Keras); the PyTorch
logits are those the zoo's accuracy tests compute (once per test run, ``checkpoint_logits``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from faultzoo.data import load_selection
from faultzoo.zoo import WEIGHTS, get_model
from tests.conftest import checkpoint_logits
from tests.keras.conftest import needs_tensorflow

needs_tensorflow()

from faultzoo.keras import convert, keras_weights_sha256, predict_logits  # noqa: E402

MODEL_IDS = ["cifar10/resnet20", "cifar10/resnet32", "cifar10/resnet44", "cifar10/resnet56"]
# Cheapest measured here: resnet56 on 1,000 images costs 7.6 s CPU (Keras, 1 thread) in batches of 250,
# against 9.2 s in batches of 1,000.
BATCH = 250


@dataclass
class Agreement:
    n: int
    same_top1: int
    max_abs_diff: float
    max_abs_logit: float


def _agreement(torch_out: np.ndarray, keras_out: np.ndarray) -> Agreement:
    return Agreement(len(torch_out), int((torch_out.argmax(1) == keras_out.argmax(1)).sum()),
                     float(np.abs(torch_out - keras_out).max()), float(np.abs(torch_out).max()))


@pytest.fixture(scope="session")
def pretrained(offline_env):
    """model id -> (PyTorch model, its twin), real upstream weights, built once per session."""
    cache = {}

    def get(model_id: str):
        if model_id not in cache:
            model = get_model(model_id)
            cache[model_id] = (model, convert(model, (3, 32, 32), name=model_id.replace("/", "_")))
        return cache[model_id]

    return get


def _compare(pretrained, computed_once, model_id: str, data_name: str, selection) -> Agreement:
    model, twin = pretrained(model_id)
    got = predict_logits(twin, selection.x, batch_size=BATCH)  # first: the PyTorch side is often computed meanwhile
    expected = checkpoint_logits(computed_once, model_id, data_name, model, selection.x)
    return _agreement(expected, got)


def test_get_model_returns_the_twin_of_the_real_checkpoint(offline_env):
    """The public path: hash-checked upstream file -> PyTorch model -> twin, with provenance."""
    model_id = "cifar10/resnet20"
    twin = get_model(model_id, framework="keras")
    prov = twin.faultzoo
    assert prov.model_id == model_id and prov.framework == "keras"
    assert prov.weights_file_sha256 == WEIGHTS[model_id].sha256
    assert prov.torch_state_sha256 == get_model(model_id).faultzoo.state_sha256
    assert prov.keras_weights_sha256 == keras_weights_sha256(twin)
    assert prov.backend == "tensorflow" and prov.keras.startswith("3.")
    assert twin.input_shape == (None, 32, 32, 3) and twin.output_shape == (None, 10)


@pytest.fixture(scope="module")
def exact_1000(offline_env):
    return load_selection(offline_env / "datasets" / "cifar10" / "test-first1000-exact.npz", dataset="cifar10")


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_same_top1_on_every_exact_test_image(model_id, pretrained, exact_1000, computed_once):
    result = _compare(pretrained, computed_once, model_id, "test-first1000-exact", exact_1000)
    assert result.n == 1000
    assert result.same_top1 == 1000, f"{model_id}: {1000 - result.same_top1} images classified differently"
    assert result.max_abs_diff <= 1e-4 * result.max_abs_logit, result


@pytest.fixture(scope="module")
def jpeg_10000(offline_env):
    return load_selection(offline_env / "datasets" / "cifar10" / "test-jpeg-approx.npz", dataset="cifar10")


@pytest.mark.slow  # 10,000 images x 4 models x 2 frameworks: several minutes on 2 cores
@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_top1_agreement_on_lossy_jpeg_test_set(model_id, pretrained, jpeg_10000, computed_once):
    result = _compare(pretrained, computed_once, model_id, "test-jpeg-approx", jpeg_10000)
    assert result.n == 10_000
    assert result.same_top1 >= 9_990, f"{model_id}: agreement {result.same_top1 / 100:.2f} % < 99.9 %"
    assert result.max_abs_diff <= 1e-4 * result.max_abs_logit, result
