"""Data of your own: tensors, a torch Dataset, or a folder of images, as a DataSelection.

Every form ends as the same :class:`~faultzoo.data.DataSelection` (float32 N×C×H×W images, int64
labels, a content fingerprint), so campaigns, stores and resumes treat it like the zoo's datasets.
A Dataset is materialised once, in index order (deterministic); an image folder goes through a
transform named on the command line (``--transform``). :func:`load_data` reads every form the command
line's ``--data`` names (a dataset, an ``.npz``, ``imagefolder:PATH``).
"""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from faultzoo.exceptions import DatasetError, OptionError, found

if TYPE_CHECKING:
    from faultzoo.data.selection import DataSelection

__all__ = [
    "IMAGEFOLDER", "load_data", "parse_transform", "selection_from_dataset", "selection_from_imagefolder",
    "selection_from_tensors",
]

IMAGEFOLDER = "imagefolder:"  # data="imagefolder:PATH" (CLI: --data imagefolder:PATH)

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


def _read_image(path: str):
    """An image file as an RGB PIL image (torchvision's default loader), or DatasetError naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except UnidentifiedImageError:
        reason = "not an image PIL can read (a damaged file, or another format under an image name)"
    except Image.DecompressionBombError as exc:
        reason = str(exc)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated or damaged data, unreadable file
        reason = f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"
    raise DatasetError(f"Cannot read image file {path}: {reason}. Remove or replace it.")


def selection_from_imagefolder(folder: str | Path, transform: Callable | str, *, limit: int | None = None,
                               per_class: int | None = None, dataset: str | None = None,
                               progress: ProgressCallback | None = None):
    """Images of a folder laid out as torchvision's ImageFolder (one sub-folder per class, sorted names).

    Args:
        folder: the folder (``--data imagefolder:PATH``).
        transform: a callable (PIL image -> C×H×W tensor) or ``--transform`` text (see :func:`parse_transform`).
        limit, per_class: which images, as for the datasets (see :func:`faultzoo.data.select_indices`).
        dataset: for a zoo model, its dataset: the images (after the transform) must have its input size
            and the folder at most its number of classes.

    Raises:
        DatasetError: no such folder, an image file that cannot be read (named), images of another size
            than the dataset's, more classes than it has.
    """
    from torch.utils.data import Subset
    from torchvision.datasets import ImageFolder

    from faultzoo.data.info import check_image_size, dataset_info
    from faultzoo.data.selection import _check_count, select_indices
    from faultzoo.data.sources import as_path

    folder = as_path("folder", folder)
    if not callable(transform) and not isinstance(transform, str):
        raise DatasetError(f"transform must be a callable (PIL image -> tensor) or --transform text; found "
                           f"{found(transform)}.")
    _check_count("limit", limit)
    _check_count("per_class", per_class)
    info = dataset_info(dataset) if dataset is not None else None
    if not folder.is_dir():
        raise DatasetError(f"imagefolder:{folder}: no such folder.")
    if isinstance(transform, str):
        transform = parse_transform(transform)
    try:
        ds = ImageFolder(str(folder), transform=transform, loader=_read_image)
    except (FileNotFoundError, OSError) as exc:
        raise DatasetError(f"imagefolder:{folder}: {exc}. Expected one sub-folder of images per class.") from None
    where = f"imagefolder:{folder}"
    if info is not None and len(ds.classes) > info.num_classes:
        raise DatasetError(f"{where} does not fit {info.name}: it has {len(ds.classes)} class folders, "
                           f"{info.name} models have {info.num_classes} classes.")
    chosen = select_indices(ds.targets, limit=limit, per_class=per_class)
    if info is not None and chosen.size:  # one image decoded first: a misfit is named before all are read
        image = ds[int(chosen[0])][0]
        if isinstance(image, torch.Tensor) and image.ndim == 3:
            check_image_size(f"{where} (after the transform)", info.name, image.shape[1], image.shape[2])
    source = f"imagefolder {folder.resolve()}"
    if per_class is None:  # the first images: read as they come (the selection of earlier versions)
        return selection_from_dataset(ds, limit=limit, source=source, progress=progress)
    selection = selection_from_dataset(Subset(ds, chosen.tolist()), source=source, progress=progress)
    return replace(selection, indices=chosen, sample_ids=chosen, limit=limit, per_class=per_class)


def load_data(
    data: str | Path | None,
    *,
    dataset: str | None,
    transform: Callable | str | None = None,
    limit: int | None = None,
    per_class: int | None = None,
    root: str | Path | None = None,
    download: bool = False,
    progress: ProgressCallback | None = None,
) -> DataSelection:
    """The images a model is evaluated or injected on, from what the command line's ``--data`` names.

    Args:
        data: a dataset name (its test split), the path of an ``.npz`` (pixels of ``dataset``'s images),
            ``imagefolder:PATH`` (one sub-folder per class, with ``transform``), or None: ``dataset``'s test split.
        dataset: the model's zoo dataset, or None for a model outside the zoo (whose images must then be
            named by ``data``: a dataset name or an image folder).
        transform: for an image folder only: a torchvision weights member or steps (see
            :func:`faultzoo.data.custom.parse_transform`), or a callable.
        limit, per_class, root, download, progress: see :func:`load_selection`.

    Raises:
        OptionError: ``transform`` missing for an image folder, or given for other data.
        UnknownDatasetError, DatasetError: as :func:`load_selection`, and images that do not fit ``dataset``.
    """
    from faultzoo.data.info import list_datasets
    from faultzoo.data.selection import load_selection

    text = None if data is None else (os.fspath(data) if isinstance(data, (str, os.PathLike)) else data)
    if isinstance(text, str) and text.startswith(IMAGEFOLDER):
        if transform is None or (isinstance(transform, str) and not transform.strip()):
            raise OptionError("transform", None, f"data {text} needs a transform: a torchvision weights member "
                              "(e.g. ResNet18_Weights.IMAGENET1K_V1) or steps such as resize=72,crop=64,"
                              "mean=0.5:0.5:0.5,std=0.25:0.25:0.25.")
        return selection_from_imagefolder(text[len(IMAGEFOLDER):], transform, limit=limit, per_class=per_class,
                                          dataset=dataset, progress=progress)
    if transform is not None:
        raise OptionError("transform", transform, "applies to imagefolder:PATH data only (a dataset's images and an "
                          ".npz's go through the dataset's own test transform).")
    if dataset is None:
        if not isinstance(text, str) or text not in list_datasets():
            shown = f" Found {found(text)}." if isinstance(text, str) else ""
            raise DatasetError("A model outside the zoo has no dataset of its own: name its images with data (CLI: "
                               f"--data): a dataset name ({', '.join(list_datasets())}) or imagefolder:PATH with a "
                               "transform (an .npz holds pixels of a zoo dataset, normalised as that dataset's: for "
                               f"zoo models only).{shown}")
        dataset = text
    return load_selection(dataset if data is None else data, dataset=dataset, limit=limit, per_class=per_class,
                          root=root, download=download, progress=progress)
