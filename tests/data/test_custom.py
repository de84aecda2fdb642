"""Data of your own: tensors, Datasets and image folders become DataSelections."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from faultzoo.exceptions import DatasetError, FaultzooError, OptionError
from faultzoo.data.custom import (
    load_data, parse_transform, selection_from_dataset, selection_from_imagefolder, selection_from_tensors,
)


def test_tensors_become_a_selection_with_a_fingerprint():
    x, y = torch.rand(5, 3, 8, 8), torch.tensor([0, 1, 2, 1, 0])
    sel = selection_from_tensors(x, y)
    assert sel.x.dtype == torch.float32 and torch.equal(sel.x, x) and sel.y.tolist() == [0, 1, 2, 1, 0]
    assert sel.fingerprint() == selection_from_tensors(x.clone(), y.clone()).fingerprint()
    assert sel.fingerprint() != selection_from_tensors(x + 1, y).fingerprint()


@pytest.mark.parametrize(("x", "y", "message"), [
    (torch.rand(2, 3, 8), torch.tensor([0, 1]), "N×C×H×W"),
    (torch.rand(0, 3, 8, 8), torch.zeros(0, dtype=torch.int64), "no images"),
    (torch.rand(2, 3, 8, 8), torch.tensor([0.5, 1.0]), "integers"),
    (torch.rand(2, 3, 8, 8), torch.tensor([0, -1]), ">= 0"),
])
def test_bad_tensors_are_refused(x, y, message):
    with pytest.raises(DatasetError, match=message):
        selection_from_tensors(x, y)


def test_a_dataset_is_materialised_in_index_order():
    data = [(torch.full((3, 4, 4), float(i)), i % 3) for i in range(7)]
    sel = selection_from_dataset(data, limit=5)
    assert sel.x[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4] and sel.y.tolist() == [0, 1, 2, 0, 1]
    with pytest.raises(DatasetError, match=r"\[1\]: image shape"):
        selection_from_dataset([(torch.zeros(3, 4, 4), 0), (torch.zeros(3, 5, 4), 1)])
    with pytest.raises(DatasetError, match="expected \\(image, label\\)"):
        selection_from_dataset([torch.zeros(3, 4, 4)])


def test_imagefolder_with_transform_steps(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for k in range(2):
            Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / cls / f"{k}.png")
    sel = selection_from_imagefolder(tmp_path, "resize=36,crop=32,mean=0.5:0.5:0.5,std=0.25:0.25:0.25")
    assert tuple(sel.x.shape) == (4, 3, 32, 32) and sel.y.tolist() == [0, 0, 1, 1]
    assert float(sel.x.min()) >= -2.0 - 1e-6 and float(sel.x.max()) <= 2.0 + 1e-6
    with pytest.raises(DatasetError, match="no such folder"):
        selection_from_imagefolder(tmp_path / "nope", "resize=32")


def test_weights_name_transform():
    transform = parse_transform("ResNet18_Weights.IMAGENET1K_V1")
    out = transform(Image.new("RGB", (300, 260)))
    assert tuple(out.shape) == (3, 224, 224)
    with pytest.raises(DatasetError, match="not a torchvision weights member"):
        parse_transform("ResNet18_Weights.NOPE")


@settings(max_examples=120, deadline=None)
@given(st.text(alphabet="resizcopmnatd=,:.0123456789 -_ResNet", max_size=40))
def test_any_transform_text_parses_or_raises_our_error(text):
    try:
        transform = parse_transform(text)
    except FaultzooError:
        return
    assert callable(transform)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 64), st.integers(1, 64), st.lists(st.floats(0.01, 10), min_size=3, max_size=3))
def test_transform_steps_parse_right(resize, crop, stats):
    spec = f"resize={resize},crop={crop},mean={':'.join(map(repr, stats))},std={':'.join(map(repr, stats))}"
    steps = parse_transform(spec).transforms
    assert steps[0].size == resize and list(steps[1].size) == [crop, crop]
    assert list(steps[3].mean) == stats and list(steps[3].std) == stats


def _image_folder(root, size=(40, 50), classes=("cat", "dog"), per_class=2):
    rng = np.random.default_rng(0)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for k in range(per_class):
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / cls / f"{k}.png")
    return root


def test_an_unreadable_image_is_named(tmp_path):
    folder = _image_folder(tmp_path / "images")
    bad = folder / "dog" / "1.png"
    bad.write_bytes(b"no png at all")
    with pytest.raises(DatasetError) as info:
        selection_from_imagefolder(folder, "resize=32")
    message = str(info.value)
    assert message.startswith(f"Cannot read image file {bad}: not an image PIL can read") and "Reader" not in message
    truncated = folder / "dog" / "0.png"
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(DatasetError, match=f"Cannot read image file {truncated}: OSError"):
        selection_from_imagefolder(folder, "resize=32")


def test_an_image_too_large_for_pil_is_named_not_a_traceback(tmp_path, monkeypatch):
    folder = _image_folder(tmp_path / "images")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 40×50 = 2,000 pixels: PIL calls it a decompression bomb
    with pytest.raises(DatasetError, match=f"Cannot read image file {folder / 'cat' / '0.png'}: Image size"):
        selection_from_imagefolder(folder, "resize=32")


def test_imagefolder_images_must_have_the_zoo_datasets_size(tmp_path):
    folder = _image_folder(tmp_path / "images", size=(64, 64))
    steps = "mean=0.5:0.5:0.5,std=0.25:0.25:0.25"
    with pytest.raises(DatasetError, match=r"imagefolder:.*images \(after the transform\) does not fit cifar10: images "
                                           r"are 64×64, cifar10 models expect 32×32\."):
        selection_from_imagefolder(folder, steps, dataset="cifar10")
    assert tuple(selection_from_imagefolder(folder, f"resize=32,{steps}", dataset="cifar10").x.shape) == (4, 3, 32, 32)
    assert tuple(selection_from_imagefolder(folder, steps).x.shape) == (4, 3, 64, 64)  # no zoo model: any size
    many = _image_folder(tmp_path / "many", size=(32, 32), classes=[f"c{i:02d}" for i in range(11)], per_class=1)
    with pytest.raises(DatasetError, match="it has 11 class folders, cifar10 models have 10 classes"):
        selection_from_imagefolder(many, steps, dataset="cifar10")


def test_imagefolder_per_class_keeps_positions(tmp_path):
    folder = _image_folder(tmp_path / "images", size=(32, 32), classes=("a", "b", "c"), per_class=3)
    sel = selection_from_imagefolder(folder, "mean=0.5:0.5:0.5,std=0.25:0.25:0.25", per_class=1, limit=2)
    assert sel.y.tolist() == [0, 1] and sel.indices.tolist() == [0, 3] and sel.sample_ids.tolist() == [0, 3]
    assert sel.describe()["per_class"] == 1 and sel.describe()["limit"] == 2


def test_load_data_reads_every_form_of_data(tmp_path):
    folder = _image_folder(tmp_path / "images", size=(32, 32))
    steps = "mean=0.5:0.5:0.5,std=0.25:0.25:0.25"
    assert len(load_data(f"imagefolder:{folder}", dataset=None, transform=steps)) == 4
    assert len(load_data(f"imagefolder:{folder}", dataset="cifar10", transform=steps, limit=3)) == 3
    with pytest.raises(OptionError, match="needs a transform"):
        load_data(f"imagefolder:{folder}", dataset=None)
    with pytest.raises(OptionError, match="applies to imagefolder:PATH data only"):
        load_data("cifar10", dataset="cifar10", transform=steps)
    with pytest.raises(DatasetError, match="A model outside the zoo has no dataset of its own.*Found 'x.npz'"):
        load_data("x.npz", dataset=None)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "s.npz", x=rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8), y=np.arange(6) % 3)
    assert len(load_data(tmp_path / "s.npz", dataset="cifar10", per_class=1)) == 3
