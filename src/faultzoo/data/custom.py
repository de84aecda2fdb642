"""Data of your own: tensors, a torch Dataset, or a folder of images, as a DataSelection.

Every form ends as the same :class:`~faultzoo.data.DataSelection` (float32 N×C×H×W images, int64
labels, a content fingerprint), so campaigns, stores and resumes treat it like the zoo's datasets.
A Dataset is materialised once, in index order (deterministic); an image folder goes through a
transform named on the command line (``--transform``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faultzoo.exceptions import DatasetError, found

__all__ = ["parse_transform", "selection_from_dataset", "selection_from_imagefolder", "selection_from_tensors"]

ProgressCallback = Callable[[int, int], None]


def selection_from_tensors(x: Any, y: Any, *, source: str = "tensors", dataset: str = "custom"):
    """A selection from already-transformed images ``x`` (N×C×H×W) and integer labels ``y`` (N)."""
    from faultzoo.data.selection import DataSelection

    try:
        x = torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise DatasetError(f"Images must be a floating-point N×C×H×W tensor or array; found {found(x)} ({exc}).") \
            from None
    try:
        y = torch.as_tensor(y)
    except (TypeError, ValueError, RuntimeError, OverflowError) as exc:
        raise DatasetError(f"Labels must be integers, one per image; found {found(y)} ({exc}).") from None
    if x.ndim != 4 or not x.is_floating_point():
        raise DatasetError(f"Images must be a floating-point N×C×H×W tensor, found {x.dtype} {tuple(x.shape)}.")
    if len(x) == 0:
        raise DatasetError("The data holds no images: nothing to evaluate.")
    if y.ndim != 1 or len(y) != len(x) or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise DatasetError(f"Labels must be {len(x)} integers (one per image), found {y.dtype} {tuple(y.shape)}.")
    if bool((y < 0).any()):
        raise DatasetError(f"Labels must be >= 0, found {int(y.min())}.")
    n = len(x)
    return DataSelection(x.detach().to(torch.float32).cpu().contiguous(), y.detach().to(torch.int64).cpu(),
                         np.arange(n), source, dataset, kind="tensors")


def selection_from_dataset(ds: Any, *, limit: int | None = None, source: str | None = None,
                           progress: ProgressCallback | None = None):
    """Materialise a map-style ``torch.utils.data.Dataset`` of (image tensor, label) pairs, in index order."""
    from faultzoo.data.selection import _check_count

    _check_count("limit", limit)
    if progress is not None and not callable(progress):
        raise DatasetError(f"progress must be a function progress(done, total) or None; found {found(progress)}.")
    try:
        if isinstance(ds, (str, bytes, Mapping)) or not hasattr(type(ds), "__getitem__"):
            raise TypeError
        total = len(ds)
    except TypeError:
        raise DatasetError(f"{type(ds).__name__} is no dataset: pass a map-style Dataset (with __len__ and "
                           "__getitem__ by position), or tensors (x, y).") from None
    n = total if limit is None else min(limit, total)
    images, labels = [], []
    for i in range(n):
        try:
            item = ds[i]
        except OSError as exc:  # an image file that cannot be read or decoded (PIL's UnidentifiedImageError too)
            raise DatasetError(f"{type(ds).__name__}[{i}]: cannot read the image ({exc}).") from exc
        except (IndexError, KeyError) as exc:  # a __len__ that promises more items than __getitem__ has
            raise DatasetError(f"{type(ds).__name__}[{i}] does not exist although its length is {total}: "
                               f"{type(exc).__name__}: {exc}.") from exc
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise DatasetError(f"{type(ds).__name__}[{i}] is a {type(item).__name__}; expected (image, label).")
        image, label = item[0], item[1]
        if not isinstance(image, torch.Tensor) or image.ndim != 3:
            raise DatasetError(f"{type(ds).__name__}[{i}]: the image must be a C×H×W tensor (already transformed), "
                               f"found {type(image).__name__} {tuple(getattr(image, 'shape', ()))}.")
        if images and image.shape != images[0].shape:
            raise DatasetError(f"{type(ds).__name__}[{i}]: image shape {tuple(image.shape)} differs from the first "
                               f"image's {tuple(images[0].shape)}; resize them to one size.")
        try:
            number = operator.index(label)
        except TypeError:
            number = None
        if number is None or isinstance(label, bool) or not 0 <= number < 2**63:
            raise DatasetError(f"{type(ds).__name__}[{i}]: the label must be an integer class number >= 0, found "
                               f"{found(label)}.")
        labels.append(number)
        images.append(image)
        if progress is not None:
            progress(i + 1, n)
    if not images:
        raise DatasetError(f"{type(ds).__name__} holds no images: nothing to evaluate.")
    return selection_from_tensors(torch.stack(images), torch.tensor(labels),
                                  source=source or f"{type(ds).__name__} ({n} of {total} items)")


# --------------------------------------------------------------------------- --transform

_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?"
_PART = re.compile(rf"^(resize|crop)=(\d+)$|^(mean|std)=({_NUMBER}(?::{_NUMBER})*)$")


def parse_transform(text: str) -> Callable:
    """A torchvision transform from ``--transform``: the name of a torchvision weights enum member
    (``ResNet18_Weights.IMAGENET1K_V1``: its own preprocessing) or steps such as
    ``resize=256,crop=224,mean=0.485:0.456:0.406,std=0.229:0.224:0.225`` (values of mean/std joined by ':').

    Raises:
        DatasetError: an unknown weights name, or malformed steps.
    """
    from torchvision import transforms as T

    if not isinstance(text, str):
        raise DatasetError(f"--transform must be text: a torchvision weights name such as "
                           f"ResNet18_Weights.IMAGENET1K_V1, or steps such as resize=256,crop=224; "
                           f"found {found(text)}.")
    text = text.strip()
    if "=" not in text:
        return _weights_transform(text)
    steps: dict[str, Any] = {}
    for part in text.split(","):
        match = _PART.match(part.strip())
        if not match:
            raise DatasetError(f"--transform {text!r}: cannot read {part.strip()!r}; write resize=N, crop=N, "
                               "mean=A:B:C, std=A:B:C (comma-separated), or a torchvision weights name.")
        key = match.group(1) or match.group(3)
        if key in steps:
            raise DatasetError(f"--transform {text!r}: {key} is given twice.")
        value = match.group(2) or match.group(4)
        try:
            steps[key] = int(value) if key in ("resize", "crop") else tuple(float(v) for v in value.split(":"))
        except ValueError:  # an integer of thousands of digits
            raise DatasetError(f"--transform {text[:80]!r}: {key} has a number too long to read.") from None
    if ("mean" in steps) != ("std" in steps):
        raise DatasetError(f"--transform {text!r}: give mean and std together.")
    if "mean" in steps and len(steps["mean"]) != len(steps["std"]):
        raise DatasetError(f"--transform {text!r}: mean has {len(steps['mean'])} values, std {len(steps['std'])}.")
    if any(s == 0 for s in steps.get("std", ())) or any(steps.get(k, 1) == 0 for k in ("resize", "crop")):
        raise DatasetError(f"--transform {text!r}: sizes and std values must be positive.")
    pipeline = [T.Resize(steps["resize"])] if "resize" in steps else []
    pipeline += [T.CenterCrop(steps["crop"])] if "crop" in steps else []
    pipeline += [T.ToTensor()]
    pipeline += [T.Normalize(steps["mean"], steps["std"])] if "mean" in steps else []
    return T.Compose(pipeline)


def _weights_transform(name: str) -> Callable:
    import torchvision.models as tvm

    enum_name, _, member = name.partition(".")
    enum = getattr(tvm, enum_name, None)
    weights = getattr(enum, member, None) if enum is not None and member else None
    if not isinstance(weights, tvm.WeightsEnum):
        raise DatasetError(f"--transform {name!r} is not a torchvision weights member such as "
                           "ResNet18_Weights.IMAGENET1K_V1, nor steps such as resize=256,crop=224.")
    return weights.transforms()


def selection_from_imagefolder(folder: str | Path, transform: Callable | str, *, limit: int | None = None,
                               progress: ProgressCallback | None = None):
    """Images of a folder laid out as torchvision's ImageFolder (one sub-folder per class, sorted names)."""
    from torchvision.datasets import ImageFolder

    from faultzoo.data.sources import as_path

    folder = as_path("folder", folder)
    if not callable(transform) and not isinstance(transform, str):
        raise DatasetError(f"transform must be a callable (PIL image -> tensor) or --transform text; found "
                           f"{found(transform)}.")
    if not folder.is_dir():
        raise DatasetError(f"imagefolder:{folder}: no such folder.")
    if isinstance(transform, str):
        transform = parse_transform(transform)
    try:
        ds = ImageFolder(str(folder), transform=transform)
    except (FileNotFoundError, OSError) as exc:
        raise DatasetError(f"imagefolder:{folder}: {exc}. Expected one sub-folder of images per class.") from None
    selection = selection_from_dataset(ds, limit=limit, source=f"imagefolder {folder.resolve()}", progress=progress)
    return selection
