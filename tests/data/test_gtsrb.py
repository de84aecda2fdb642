"""The real GTSRB test set (12,630 PPM images) read offline from the shared folder."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from faultzoo.data import dataset_info, dataset_labels, load_dataset, load_selection
from faultzoo.exceptions import DatasetError
from tests.conftest import require_shared


@pytest.fixture(scope="module")
def root():
    require_shared("datasets", "gtsrb", "GT-final_test.csv")
    return require_shared("datasets")


@pytest.fixture(scope="module")
def csv_rows(root):
    with open(root / "gtsrb" / "GT-final_test.csv", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


@pytest.fixture(scope="module")
def test_set(root):
    return load_dataset("gtsrb", root=root)


def test_count_and_label_histogram(test_set, csv_rows):
    # Read from the dataset's sample list: decoding all 12,630 images here would be slow.
    labels = dataset_labels(test_set)
    assert len(test_set) == len(labels) == dataset_info("gtsrb").test_size == 12630
    expected = Counter(int(r["ClassId"]) for r in csv_rows)
    assert len(csv_rows) == 12630
    assert Counter(labels.tolist()) == expected
    assert np.bincount(labels, minlength=43).tolist() == [expected[c] for c in range(43)]
    assert labels[:4].tolist() == [int(r["ClassId"]) for r in csv_rows[:4]]


def test_known_pixel_by_hand(test_set, csv_rows, root):
    n = 2  # 00002.ppm, a 48×52 image: the resize is a real downscale
    path = root / "gtsrb" / "GTSRB" / "Final_Test" / "Images" / csv_rows[n]["Filename"]
    small = np.asarray(Image.open(path).convert("RGB").resize((50, 50), Image.BILINEAR))
    img, label = test_set[n]
    assert img.shape == (3, 50, 50) and img.dtype == torch.float32 and label == int(csv_rows[n]["ClassId"])
    info = dataset_info("gtsrb")
    for h, w, c in [(0, 0, 0), (25, 17, 1), (49, 49, 2)]:
        expected = (np.float32(small[h, w, c]) / np.float32(255) - np.float32(info.mean[c])) / np.float32(info.std[c])
        assert img[c, h, w].item() == float(expected)


def test_selection_matches_per_item_path(test_set, root, csv_rows):
    sel = load_selection("gtsrb", dataset="gtsrb", root=root, per_class=1)
    first_of_class = sorted({int(r["ClassId"]): i for i, r in reversed(list(enumerate(csv_rows)))}.values())
    assert sel.indices.tolist() == first_of_class and sorted(sel.y.tolist()) == list(range(43))
    per_item = torch.stack([test_set[i][0] for i in sel.indices.tolist()])
    assert sel.x.shape == (43, 3, 50, 50)
    assert torch.equal(per_item.view(torch.int32), sel.x.view(torch.int32))
    assert sel.kind == "torchvision" and sel.split == "test" and str(root) in sel.source


def test_train_split_layout(root):
    train_dir = require_shared("datasets", "gtsrb", "GTSRB", "Training")
    n_files = sum(1 for _ in train_dir.rglob("*.ppm"))
    ds = load_dataset("gtsrb", "train", root=root)
    assert len(ds) == n_files
    torch.manual_seed(0)
    img, label = ds[0]  # seed's random training augmentations
    assert img.shape == (3, 50, 50) and 0 <= label < 43


def test_incomplete_folder_errors(tmp_path, root):
    images = tmp_path / "gtsrb" / "GTSRB" / "Final_Test" / "Images"
    images.mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"GT-final_test\.csv") as exc:
        load_dataset("gtsrb", root=tmp_path)
    assert str(tmp_path) in str(exc.value)
    # The csv without its images: the first decode names the missing file.
    (tmp_path / "gtsrb" / "GT-final_test.csv").write_bytes((root / "gtsrb" / "GT-final_test.csv").read_bytes())
    with pytest.raises(DatasetError, match=r"Cannot decode image 0 .*00000\.ppm"):
        load_selection("gtsrb", dataset="gtsrb", root=tmp_path, limit=2)
