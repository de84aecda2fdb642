"""Exact-pixel .npz sources: CIFAR-10 first 1000, CIFAR-100 166, and validation of malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from faultzoo.data import NpzDataset, dataset_info, load_selection, to_nhwc
from faultzoo.exceptions import DatasetError
from tests.conftest import require_shared


@pytest.fixture(scope="module")
def c10_path() -> Path:
    return require_shared("datasets", "cifar10", "test-first1000-exact.npz")


@pytest.fixture(scope="module")
def c10_raw(c10_path):
    with np.load(c10_path) as f:
        return f["x"], f["y"], f["idx"]


@pytest.fixture(scope="module")
def c10_full(c10_path):
    return load_selection(c10_path, dataset="cifar10")


def _by_hand(v: int, dataset: str, c: int) -> float:
    info = dataset_info(dataset)
    return float((np.float32(v) / np.float32(255) - np.float32(info.mean[c])) / np.float32(info.std[c]))


def test_npz_dataset_items(c10_path, c10_raw):
    x, y, idx = c10_raw
    ds = NpzDataset(c10_path, "cifar10")
    assert len(ds) == 1000 and ds.dataset == "cifar10"
    img, label = ds[7]
    assert img.shape == (3, 32, 32) and img.dtype == torch.float32
    assert label == int(y[7]) and isinstance(label, int)
    assert np.array_equal(ds.idx, idx)
    assert img[2, 31, 0].item() == _by_hand(int(x[7, 31, 0, 2]), "cifar10", 2)


def test_selection_shapes_and_labels(c10_full, c10_raw):
    x, y, idx = c10_raw
    sel = c10_full
    assert sel.x.shape == (1000, 3, 32, 32) and sel.x.dtype == torch.float32 and sel.x.is_contiguous()
    assert sel.y.dtype == torch.int64 and np.array_equal(sel.y.numpy(), y)
    assert np.array_equal(sel.indices, np.arange(1000)) and np.array_equal(sel.sample_ids, idx)
    assert sel.dataset == "cifar10" and sel.kind == "npz" and sel.split is None
    assert "test-first1000-exact.npz" in sel.source
    # CIFAR-10 test labels start 3 8 8 0 6 (cat, ship, ship, airplane, frog).
    assert sel.y[:5].tolist() == [3, 8, 8, 0, 6]


def test_normalisation_of_known_pixel(c10_full, c10_raw):
    x, _, _ = c10_raw
    for n, h, w, c in [(0, 0, 0, 0), (3, 16, 9, 1), (999, 31, 31, 2)]:
        assert c10_full.x[n, c, h, w].item() == _by_hand(int(x[n, h, w, c]), "cifar10", c)


def test_vectorized_equals_per_item_torchvision(c10_path, c10_full):
    ds = NpzDataset(c10_path, "cifar10")
    per_item = torch.stack([ds[i][0] for i in range(len(ds))])
    assert torch.equal(per_item.view(torch.int32), c10_full.x.view(torch.int32))


def test_first_n_selection(c10_path, c10_full):
    sel = load_selection(c10_path, dataset="cifar10", limit=100)
    assert np.array_equal(sel.indices, np.arange(100))
    assert torch.equal(sel.x, c10_full.x[:100]) and torch.equal(sel.y, c10_full.y[:100])
    assert sel.limit == 100 and sel.describe()["num_samples"] == 100


def test_per_class_selection(c10_path, c10_full, c10_raw):
    _, y, _ = c10_raw
    sel = load_selection(c10_path, dataset="cifar10", per_class=5)
    expected = sorted(i for c in range(10) for i in [j for j in range(len(y)) if y[j] == c][:5])
    assert sel.indices.tolist() == expected
    assert np.bincount(sel.y.numpy(), minlength=10).tolist() == [5] * 10
    assert torch.equal(sel.x, c10_full.x[expected])


def test_fingerprint_tracks_selection_and_content(c10_path, c10_raw, c10_full, tmp_path):
    first = load_selection(c10_path, dataset="cifar10", limit=50)
    again = load_selection(c10_path, dataset="cifar10", limit=50)
    assert first.fingerprint() == again.fingerprint()
    assert len(first.fingerprint()) == 64
    assert load_selection(c10_path, dataset="cifar10", limit=51).fingerprint() != first.fingerprint()
    assert load_selection(c10_path, dataset="cifar10", per_class=5).fingerprint() != first.fingerprint()
    x, y, idx = c10_raw
    # Same bytes at another path: same data, same fingerprint (moving files must not block a resume).
    np.savez(tmp_path / "copy.npz", x=x, y=y, idx=idx)
    assert load_selection(tmp_path / "copy.npz", dataset="cifar10", limit=50).fingerprint() == first.fingerprint()
    # One pixel level changed in image 10: different data.
    x2 = x.copy()
    x2[10, 3, 3, 0] ^= 1
    np.savez(tmp_path / "edited.npz", x=x2, y=y, idx=idx)
    assert load_selection(tmp_path / "edited.npz", dataset="cifar10", limit=50).fingerprint() != first.fingerprint()
    # Mutating the tensor in place is seen too (the fingerprint is recomputed).
    before = c10_full.fingerprint()
    saved = c10_full.x[0, 0, 0, 0].clone()
    c10_full.x[0, 0, 0, 0] += 1
    try:
        assert c10_full.fingerprint() != before
    finally:
        c10_full.x[0, 0, 0, 0] = saved
    assert c10_full.fingerprint() == before


def test_describe_is_json(c10_full):
    d = json.loads(json.dumps(c10_full.describe()))
    assert d["dataset"] == "cifar10" and d["kind"] == "npz" and d["num_samples"] == 1000
    assert d["input_shape"] == [3, 32, 32] and d["fingerprint"] == c10_full.fingerprint()


def test_nhwc_bit_identical(c10_full):
    nhwc = to_nhwc(c10_full.x)
    assert nhwc.shape == (1000, 32, 32, 3) and nhwc.flags.c_contiguous
    assert np.array_equal(nhwc.view(np.uint32), c10_full.x.numpy().transpose(0, 2, 3, 1).view(np.uint32))


def test_cifar100_npz_uses_cifar100_stats():
    path = require_shared("datasets", "cifar100", "test-166-exact.npz")
    with np.load(path) as f:
        x, y = f["x"], f["y"]
    sel = load_selection(path, dataset="cifar100")
    assert sel.x.shape == (166, 3, 32, 32) and np.array_equal(sel.y.numpy(), y)
    assert sel.x[5, 1, 10, 20].item() == _by_hand(int(x[5, 10, 20, 1]), "cifar100", 1)
    assert sel.x[5, 1, 10, 20].item() != _by_hand(int(x[5, 10, 20, 1]), "cifar10", 1)
    # Its labels go up to 98: a CIFAR-10 model cannot take it.
    with pytest.raises(DatasetError, match=r"expected labels 0\.\.9"):
        load_selection(path, dataset="cifar10")


# --- validation of malformed files (tmp files, no shared data needed) ---------------------------------------


def _write(tmp_path, **arrays) -> Path:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


def _good(n=4, hw=32):
    return np.zeros((n, hw, hw, 3), np.uint8), np.arange(n, dtype=np.int64) % 10


def test_missing_key(tmp_path):
    x, _ = _good()
    path = _write(tmp_path, x=x)
    with pytest.raises(DatasetError) as exc:
        NpzDataset(path, "cifar10")
    msg = str(exc.value)
    assert str(path) in msg and "missing key(s) 'y'" in msg and "found ['x']" in msg


def test_wrong_dtype(tmp_path):
    x, y = _good()
    path = _write(tmp_path, x=x.astype(np.float32), y=y)
    with pytest.raises(DatasetError, match=r"'x' must be uint8.*found dtype float32") as exc:
        load_selection(path, dataset="cifar10")
    assert str(path) in str(exc.value)


def test_label_out_of_range(tmp_path):
    x, y = _good()
    y[2] = 10
    path = _write(tmp_path, x=x, y=y)
    with pytest.raises(DatasetError) as exc:
        load_selection(path, dataset="cifar10")
    msg = str(exc.value)
    assert str(path) in msg and "label 10 at position 2" in msg and "expected labels 0..9" in msg


def test_image_size_differs_from_model(tmp_path):
    x, y = _good(hw=50)
    path = _write(tmp_path, x=x, y=y)
    with pytest.raises(DatasetError) as exc:
        load_selection(path, dataset="cifar10")
    msg = str(exc.value)
    assert str(path) in msg and "images are 50×50" in msg and "expect 32×32" in msg
    # The same file fits a GTSRB model.
    assert load_selection(path, dataset="gtsrb").x.shape == (4, 3, 50, 50)


@pytest.mark.parametrize(
    ("arrays", "pattern"),
    [
        ({"x": np.zeros((4, 32, 32), np.uint8), "y": np.zeros(4, np.int64)}, r"N×H×W×3.*\(4, 32, 32\)"),
        ({"x": np.zeros((4, 32, 32, 3), np.uint8), "y": np.zeros(3, np.int64)}, r"'y' must have shape \(4,\)"),
        ({"x": np.zeros((4, 32, 32, 3), np.uint8), "y": np.zeros(4, np.float32)}, "integer labels"),
        ({"x": np.zeros((2, 32, 32, 3), np.uint8), "y": np.zeros(2, np.int64), "idx": np.zeros(3)}, "'idx' must be"),
    ],
)
def test_other_malformed_files(tmp_path, arrays, pattern):
    with pytest.raises(DatasetError, match=pattern):
        NpzDataset(_write(tmp_path, **arrays), "cifar10")


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        NpzDataset(tmp_path / "nope.npz", "cifar10")
    with pytest.raises(DatasetError, match="no such file"):
        load_selection(tmp_path / "nope.npz", dataset="cifar10")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(DatasetError, match=r"Cannot read .*junk\.npz"):
        NpzDataset(junk, "cifar10")
