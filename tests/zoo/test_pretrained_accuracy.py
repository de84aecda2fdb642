"""Real upstream checkpoints, end to end: mirror -> hash-checked cache -> strict load -> exact top-1 counts.

The counts are exact numbers of correctly classified images, measured once for this build
(batch size 128, one thread: conftest pins it) and asserted exactly: the forward pass is
deterministic, so any drift means the architecture, the checkpoint adapter or the
preprocessing changed what the model computes. The logits are computed once per test run
(``checkpoint_logits``): the Keras twin tests compare against the very same arrays.
"""

from __future__ import annotations

import csv

import pytest
import torch

from faultzoo import _hub
from faultzoo.data import DataSelection, load_selection
from faultzoo.inference import predict_logits, topk_correct
from faultzoo.zoo import WEIGHTS, get_model
from faultzoo.zoo.checkpoints import read_checkpoint
from tests.conftest import checkpoint_logits, require_shared

BATCH = 128

# Correct top-1 predictions on test-first1000-exact.npz (CIFAR-10 test images 0-999, exact pixels).
# For scale, the upstream claims on the full 10,000 images: 91.5, 92.3, 92.8, 93.3 %.
EXACT_1000_CORRECT = {
    "cifar10/resnet20": 912,
    "cifar10/resnet32": 924,
    "cifar10/resnet44": 928,
    "cifar10/resnet56": 932,
}

# Correct top-1 predictions on test-jpeg-approx.npz (all 10,000 test images, decoded from a
# quality-75 JPEG copy). These are NOT the models' accuracies: the images are lossy and every
# model loses about 10 points on them. They pin the function computed on realistic input only.
JPEG_10000_CORRECT = {
    "cifar10/resnet20": 8079,
    "cifar10/resnet32": 8231,
    "cifar10/resnet44": 8297,
    "cifar10/resnet56": 8332,
}


@pytest.fixture(scope="module")
def exact_1000() -> DataSelection:
    path = require_shared("datasets", "cifar10", "test-first1000-exact.npz")
    return load_selection(path, dataset="cifar10")


@pytest.fixture(scope="module")
def jpeg_10000() -> DataSelection:
    path = require_shared("datasets", "cifar10", "test-jpeg-approx.npz")
    return load_selection(path, dataset="cifar10")


def _pretrained(model_id: str) -> torch.nn.Module:
    """Fetch the upstream checkpoint the normal way and check every step of the way."""
    require_shared("mirror")
    w = WEIGHTS[model_id]
    assert w.availability() == "mirror"  # each test starts from an empty cache (conftest)
    model = get_model(model_id)
    cached = _hub.weights_dir() / w.filename
    assert cached.is_file() and w.availability() == "cache"
    assert _hub.sha256_file(cached) == w.sha256 == model.faultzoo.weights_file_sha256
    assert model.faultzoo.weights_source == w.urls[0]
    assert not model.training
    # Strict load, checked independently: every tensor of the file sits in the model bit for bit,
    # and the only model entries the file lacks are BatchNorm counters (akamaster files predate them).
    state = read_checkpoint(cached, w.checkpoint_format)
    loaded = model.state_dict()
    assert set(state) == {k for k in loaded if not k.endswith("num_batches_tracked")}
    for key, tensor in state.items():
        assert torch.equal(loaded[key], tensor), key
    return model


def _correct(computed_once, model_id: str, data_name: str, selection: DataSelection) -> tuple[int, int]:
    """(images, correct top-1 predictions) of the real checkpoint, loaded and checked by this test."""
    logits = checkpoint_logits(computed_once, model_id, data_name, _pretrained(model_id), selection.x)
    return len(logits), topk_correct(torch.from_numpy(logits), selection.y, 1)


@pytest.mark.parametrize("model_id", sorted(EXACT_1000_CORRECT))
def test_exact_top1_count_on_first_1000_test_images(model_id, exact_1000, computed_once):
    assert torch.get_num_threads() == 1  # the counts were measured single-threaded
    n, correct = _correct(computed_once, model_id, "test-first1000-exact", exact_1000)
    assert n == 1000
    # Close to the upstream claim for the whole test set (a 1,000-image sample: within 1.5 points)...
    assert abs(100 * correct / n - WEIGHTS[model_id].claimed_top1) <= 1.5
    # ...and exactly the count this build computes.
    assert correct == EXACT_1000_CORRECT[model_id]


@pytest.mark.slow  # ~50 s per model on one CPU thread (about 3.5 min for the four)
@pytest.mark.parametrize("model_id", sorted(JPEG_10000_CORRECT))
def test_top1_count_on_lossy_jpeg_test_set(model_id, jpeg_10000, computed_once):
    # NOT the model's accuracy: lossy JPEG-decoded pixels, ~10 points below the true figure.
    n, correct = _correct(computed_once, model_id, "test-jpeg-approx", jpeg_10000)
    assert n == 10_000
    assert correct == JPEG_10000_CORRECT[model_id]


def test_gtsrb_pipeline_fits_resnet20():
    """Real GTSRB test images through the seed's test transform fit gtsrb/resnet20 (untrained)."""
    datasets = require_shared("datasets")
    csv_path = require_shared("datasets", "gtsrb", "GT-final_test.csv")
    selection = load_selection("gtsrb", dataset="gtsrb", root=datasets, limit=8)
    assert tuple(selection.x.shape) == (8, 3, 50, 50)
    with open(csv_path, newline="") as handle:
        labels = [int(row["ClassId"]) for _, row in zip(range(8), csv.DictReader(handle, delimiter=";"))]
    assert selection.y.tolist() == labels  # the first 8 rows of the ground truth, in order
    model = get_model("gtsrb/resnet20", weights=None)
    logits = predict_logits(model, selection.x, batch_size=BATCH)
    assert tuple(logits.shape) == (8, 43)
    assert torch.isfinite(logits).all()
