"""The upstream suite's image transforms, and the batched tensor stage that reproduces them bit for bit."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torchvision import transforms as T
from torchvision.transforms import functional as F

from faultzoo.data.info import dataset_info
from faultzoo.exceptions import DatasetError

__all__ = ["test_transform", "train_transform", "to_nhwc"]


def test_transform(name: str) -> T.Compose:
    """The seed's evaluation transform for a dataset (PIL image in, normalised float32 CHW tensor out).

    CIFAR-10 keeps the seed's ``CenterCrop(32)`` (a no-op on 32×32 images); GTSRB is resized to 50×50
    with PIL's antialiased bilinear filter before ``ToTensor``.

    Raises:
        UnknownDatasetError: ``name`` is not a supported dataset.
    """
    info = dataset_info(name)
    normalize = T.Normalize(info.mean, info.std)
    if name == "cifar10":
        return T.Compose([T.CenterCrop(32), T.ToTensor(), normalize])
    if name == "cifar100":
        return T.Compose([T.ToTensor(), normalize])
    # gtsrb: the seed writes Resize([50, 50]); torchvision's default interpolation is bilinear.
    return T.Compose([T.Resize([50, 50]), T.ToTensor(), normalize])


# pytest collects any imported callable named test_*; this one is not a test.
test_transform.__test__ = False  # type: ignore[attr-defined]


def train_transform(name: str) -> T.Compose:
    """The seed's training transform (random augmentations, then the same normalisation as the test one).

    Raises:
        UnknownDatasetError: ``name`` is not a supported dataset.
    """
    info = dataset_info(name)
    normalize = T.Normalize(info.mean, info.std)
    if name == "cifar10":
        return T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), normalize])
    if name == "cifar100":
        return T.Compose(
            [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.RandomRotation(15), T.ToTensor(), normalize]
        )
    return T.Compose(
        [
            T.ColorJitter(brightness=1.0, contrast=0.5, saturation=1, hue=0.1),
            T.RandomEqualize(0.4),
            T.AugMix(),
            T.RandomHorizontalFlip(0.3),
            T.RandomVerticalFlip(0.3),
            T.GaussianBlur((3, 3)),
            T.RandomRotation(30),
            T.Resize([50, 50]),
            T.ToTensor(),
            normalize,
        ]
    )


def split_at_to_tensor(transform: T.Compose) -> tuple[list[Callable], list[T.Normalize]]:
    """Split a PIL -> tensor pipeline into its per-image PIL stage and its batchable tensor stage.

    The tensor stage must be ``ToTensor`` followed only by ``Normalize`` steps: those are element-wise
    IEEE operations, so running them on a stacked batch gives the same bits as running them per image.

    Raises:
        ValueError: the pipeline has no ``ToTensor`` or other steps after it.
    """
    steps = list(transform.transforms)
    cut = next((i for i, t in enumerate(steps) if isinstance(t, T.ToTensor)), None)
    if cut is None:
        raise ValueError(f"transform has no ToTensor step: {transform!r}")
    tail = steps[cut + 1 :]
    if not all(isinstance(t, T.Normalize) for t in tail):
        raise ValueError(f"only Normalize may follow ToTensor to batch the tensor stage: {transform!r}")
    return steps[:cut], tail  # type: ignore[return-value]


def batch_to_tensor(images: np.ndarray, normalizers: Sequence[T.Normalize]) -> torch.Tensor:
    """``ToTensor`` then ``Normalize`` on a whole uint8 N×H×W×C batch.

    Same operations, operands and rounding as torchvision's per-image path (uint8 -> float32,
    divide by 255, subtract the float32 mean, divide by the float32 std), so every element is
    bit-identical to ``Normalize(ToTensor(image))``. Always float32: the seed's models are float32.

    Returns:
        A C-contiguous float32 N×C×H×W tensor.
    """
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"expected a uint8 N×H×W×C array, found {images.dtype} with shape {images.shape}")
    nchw = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    x = nchw.to(torch.float32, memory_format=torch.contiguous_format)
    x.div_(255)
    for norm in normalizers:
        # In place: torchvision's Normalize also ends in sub_/div_, just after a clone we do not need.
        F.normalize(x, norm.mean, norm.std, inplace=True)
    return x


def to_nhwc(x: torch.Tensor) -> np.ndarray:
    """Copy an N×C×H×W float32 tensor into a C-contiguous N×H×W×C float32 array, bit for bit.

    For frameworks with channels-last inputs (Keras): only the layout changes, never a value.

    Raises:
        DatasetError: ``x`` is not a 4-D float32 tensor (a ValueError too).
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.dtype != torch.float32:
        found = f"{x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise DatasetError(f"to_nhwc expects a float32 N×C×H×W tensor, found {found}.")
    # clone, not contiguous(): a channels-last tensor is already NHWC-contiguous and would be shared, not copied.
    return x.detach().cpu().permute(0, 2, 3, 1).clone(memory_format=torch.contiguous_format).numpy()
