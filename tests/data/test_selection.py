"""Selection rules, data roots, and the errors for mismatched or missing data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faultzoo.data import DataSelection, default_data_root, load_dataset, load_selection, select_indices
from faultzoo.exceptions import DatasetError, UnknownDatasetError

LABELS = np.array([2, 0, 2, 1, 0, 2, 1, 1, 0, 2])


def test_select_all_and_first_n():
    assert select_indices(LABELS).tolist() == list(range(10))
    assert select_indices(LABELS, limit=3).tolist() == [0, 1, 2]
    assert select_indices(LABELS, limit=100).tolist() == list(range(10))
    assert select_indices(LABELS).dtype == np.int64


def test_select_per_class_keeps_dataset_order():
    assert select_indices(LABELS, per_class=1).tolist() == [0, 1, 3]
    assert select_indices(LABELS, per_class=2).tolist() == [0, 1, 2, 3, 4, 6]
    assert select_indices(LABELS, per_class=3).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    # per_class first, then the first `limit` of that.
    assert select_indices(LABELS, per_class=2, limit=4).tolist() == [0, 1, 2, 3]
    # A class with fewer images keeps all of them.
    assert select_indices(np.array([5, 5, 7]), per_class=2).tolist() == [0, 1, 2]


@pytest.mark.parametrize("kw", [{"limit": 0}, {"limit": -3}, {"per_class": 0}, {"per_class": -1}])
def test_select_rejects_non_positive(kw):
    with pytest.raises(DatasetError, match="positive integer"):
        select_indices(LABELS, **kw)


@pytest.mark.parametrize("kw", [{"limit": 2.5}, {"limit": True}, {"per_class": "3"}])
def test_select_rejects_non_integers(kw):
    with pytest.raises(DatasetError, match="positive integer"):
        select_indices(LABELS, **kw)


def test_select_rejects_bad_labels():
    with pytest.raises(DatasetError, match="1-D integer"):
        select_indices(np.zeros((2, 2), np.int64))
    with pytest.raises(DatasetError, match="1-D integer"):
        select_indices(np.array([0.5, 1.0]))


def test_default_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("FAULTZOO_DATA", str(tmp_path / "d"))
    assert default_data_root() == tmp_path / "d"
    monkeypatch.delenv("FAULTZOO_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_root() == tmp_path / ".cache" / "faultzoo" / "data"


def test_dataset_model_mismatch():
    with pytest.raises(DatasetError) as exc:
        load_selection("cifar10", dataset="gtsrb")
    msg = str(exc.value)
    assert "expected gtsrb images (3×50×50, 43 classes)" in msg and "found cifar10 (3×32×32, 10 classes)" in msg


def test_unknown_data_and_model_dataset():
    with pytest.raises(UnknownDatasetError, match="Did you mean 'cifar10'"):
        load_selection("cifr10", dataset="cifar10")
    with pytest.raises(UnknownDatasetError, match="Unknown dataset 'mnist'"):
        load_selection("cifar10", dataset="mnist")
    with pytest.raises(UnknownDatasetError, match="Valid datasets"):
        load_dataset("svhn")


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "gtsrb"])
def test_missing_root_names_root_and_remedy(tmp_path, name):
    with pytest.raises(DatasetError) as exc:
        load_dataset(name, root=tmp_path)
    msg = str(exc.value)
    assert str(tmp_path) in msg and "download=True" in msg and "--download" in msg and "FAULTZOO_DATA" in msg


def test_missing_default_root_via_env(tmp_path, monkeypatch):
    monkeypatch.setenv("FAULTZOO_DATA", str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="empty"):
        load_selection("cifar100", dataset="cifar100")


def test_download_refused_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("FAULTZOO_OFFLINE", "1")
    with pytest.raises(DatasetError, match="FAULTZOO_OFFLINE"):
        load_dataset("cifar10", root=tmp_path, download=True)


def test_unknown_split(tmp_path):
    with pytest.raises(DatasetError, match="Unknown split 'val'"):
        load_dataset("cifar10", "val", root=tmp_path)


def test_progress_callback(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", x=rng.integers(0, 256, (250, 32, 32, 3), dtype=np.uint8), y=np.arange(250) % 10)
    calls: list[tuple[int, int]] = []
    sel = load_selection(tmp_path / "s.npz", dataset="cifar10", progress=lambda d, t: calls.append((d, t)))
    assert len(sel) == 250 and calls[-1] == (250, 250)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and {t for _, t in calls} == {250}


def test_data_selection_validates_and_freezes():
    x = torch.zeros(2, 3, 4, 4)
    sel = DataSelection(x=x, y=torch.zeros(2, dtype=torch.int64), indices=[3, 5], source="t", dataset="cifar10")
    assert sel.sample_ids.tolist() == [3, 5]
    with pytest.raises(ValueError):
        sel.indices[0] = 0  # read-only: the fingerprint must keep matching
    with pytest.raises(DatasetError, match="contiguous float32"):
        DataSelection(x=x.permute(0, 2, 3, 1), y=sel.y, indices=[0, 1], source="t", dataset="cifar10")
    with pytest.raises(DatasetError, match="int64"):
        DataSelection(x=x, y=torch.zeros(2, dtype=torch.int32), indices=[0, 1], source="t", dataset="cifar10")
    with pytest.raises(DatasetError, match="indices"):
        DataSelection(x=x, y=sel.y, indices=[0], source="t", dataset="cifar10")


def test_path_without_npz_suffix_that_exists_is_read_as_npz(tmp_path):
    p: Path = tmp_path / "images.bin"
    p.write_bytes(b"junk")
    with pytest.raises(DatasetError, match="Cannot read"):
        load_selection(p, dataset="cifar10")


def test_fewer_images_than_the_limit_says_what_was_selected_and_why(tmp_path, caplog):
    rng = np.random.default_rng(0)
    path = tmp_path / "s.npz"
    np.savez(path, x=rng.integers(0, 256, (1000, 32, 32, 3), dtype=np.uint8), y=np.arange(1000) % 10)
    with caplog.at_level("WARNING", logger="faultzoo.data.selection"):
        sel = load_selection(path, dataset="cifar10", per_class=3, limit=50)
    assert len(sel) == 30
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "offers" not in text
    assert f"30 images selected from npz file {path.resolve()}: 3 per class of 10 classes (limit 50)." in text
    caplog.clear()
    with caplog.at_level("WARNING", logger="faultzoo.data.selection"):
        load_selection(path, dataset="cifar10", limit=2000)
    assert "1,000 images selected from npz file" in caplog.text and "all it holds (limit 2000)" in caplog.text
    caplog.clear()
    np.savez(path, x=rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8), y=np.array([0, 0, 0, 1, 2]))
    with caplog.at_level("WARNING", logger="faultzoo.data.selection"):
        load_selection(path, dataset="cifar10", per_class=2, limit=50)
    assert "4 images selected" in caplog.text and "up to 2 per class of 3 classes (limit 50)" in caplog.text
