"""Transforms equal the seed's, the batched tensor stage is bit-identical, NHWC copies keep every bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from faultzoo.data import dataset_info, test_transform, to_nhwc, train_transform
from faultzoo.data.transforms import batch_to_tensor, split_at_to_tensor


def _types(compose):
    return [type(t) for t in compose.transforms]


def test_test_transforms_structure():
    c10 = test_transform("cifar10")
    assert _types(c10) == [T.CenterCrop, T.ToTensor, T.Normalize]
    assert c10.transforms[0].size == (32, 32)
    assert _types(test_transform("cifar100")) == [T.ToTensor, T.Normalize]
    gtsrb = test_transform("gtsrb")
    assert _types(gtsrb) == [T.Resize, T.ToTensor, T.Normalize]
    assert list(gtsrb.transforms[0].size) == [50, 50]
    assert gtsrb.transforms[0].interpolation == InterpolationMode.BILINEAR
    for name in ("cifar10", "cifar100", "gtsrb"):
        norm = test_transform(name).transforms[-1]
        assert tuple(norm.mean) == dataset_info(name).mean and tuple(norm.std) == dataset_info(name).std


def test_train_transforms_structure():
    assert _types(train_transform("cifar10")) == [T.RandomCrop, T.RandomHorizontalFlip, T.ToTensor, T.Normalize]
    assert _types(train_transform("cifar100")) == [
        T.RandomCrop, T.RandomHorizontalFlip, T.RandomRotation, T.ToTensor, T.Normalize,
    ]  # fmt: skip
    assert _types(train_transform("gtsrb")) == [
        T.ColorJitter, T.RandomEqualize, T.AugMix, T.RandomHorizontalFlip, T.RandomVerticalFlip,
        T.GaussianBlur, T.RandomRotation, T.Resize, T.ToTensor, T.Normalize,
    ]  # fmt: skip
    assert train_transform("cifar10").transforms[0].padding == 4
    assert train_transform("gtsrb").transforms[1].p == 0.4


@pytest.mark.parametrize(("name", "size"), [("cifar10", (32, 32)), ("cifar100", (32, 32)), ("gtsrb", (37, 61))])
def test_train_transform_output_shape(name, size):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8))
    out = train_transform(name)(img)
    assert out.dtype == torch.float32 and tuple(out.shape) == dataset_info(name).input_size


def test_known_pixel_by_hand():
    img = np.zeros((32, 32, 3), dtype=np.uint8)
    img[5, 7] = (200, 17, 255)
    out = test_transform("cifar10")(Image.fromarray(img))
    # ToTensor: v / 255 in float32; Normalize: (t - mean) / std with float32 mean and std.
    for c, v in enumerate((200, 17, 255)):
        expected = (np.float32(v) / np.float32(255) - np.float32(dataset_info("cifar10").mean[c])) / np.float32(
            dataset_info("cifar10").std[c]
        )
        assert out[c, 5, 7].item() == float(expected)
    assert out[0, 0, 0].item() == float(-np.float32(0.4914) / np.float32(0.2023))


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "gtsrb"])
def test_batched_tensor_stage_is_bit_identical(name):
    _, h, w = dataset_info(name).input_size
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (16, h, w, 3), dtype=np.uint8)
    images[0] = 0
    images[1] = 255
    pil_stage, norms = split_at_to_tensor(test_transform(name))
    batch = batch_to_tensor(images, norms)
    per_item = torch.stack([test_transform(name)(Image.fromarray(im)) for im in images])
    assert batch.is_contiguous() and batch.dtype == torch.float32
    assert torch.equal(batch.view(torch.int32), per_item.view(torch.int32))


def test_split_rejects_unbatchable_pipelines():
    with pytest.raises(ValueError, match="no ToTensor"):
        split_at_to_tensor(T.Compose([T.CenterCrop(4)]))
    with pytest.raises(ValueError, match="only Normalize"):
        split_at_to_tensor(T.Compose([T.ToTensor(), T.RandomErasing()]))


def test_to_nhwc_keeps_every_bit():
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.standard_normal((3, 3, 5, 4)).astype(np.float32))
    x[0, 0, 0, 0] = -0.0
    x[1, 2, 3, 1] = float("nan")
    x[2, 1, 4, 3] = float("inf")
    x[0, 1, 2, 3] = 1e-45  # subnormal
    out = to_nhwc(x)
    assert out.dtype == np.float32 and out.flags.c_contiguous and out.shape == (3, 5, 4, 3)
    assert np.array_equal(out.view(np.uint32), x.permute(0, 2, 3, 1).numpy().view(np.uint32))
    assert out.view(np.uint32)[0, 0, 0, 0] == 0x80000000
    # A copy: later changes to the tensor do not leak into the array.
    x.zero_()
    assert out.view(np.uint32)[0, 0, 0, 0] == 0x80000000


def test_to_nhwc_copies_channels_last_tensors():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5).to(memory_format=torch.channels_last)
    out = to_nhwc(x)
    assert out.flags.c_contiguous and np.array_equal(out, x.permute(0, 2, 3, 1).numpy())
    x.zero_()
    assert out[1, 3, 4, 2] == 119.0


@pytest.mark.parametrize("bad", [torch.zeros(2, 3, 4), torch.zeros(1, 3, 2, 2, dtype=torch.float64)])
def test_to_nhwc_rejects_other_tensors(bad):
    with pytest.raises(ValueError, match="float32 N×C×H×W"):
        to_nhwc(bad)
