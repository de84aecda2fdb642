"""Deterministic choice of test images, loaded once into tensors with a content fingerprint."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from faultzoo.data.info import dataset_info, list_datasets, unknown_dataset_message
from faultzoo.data.sources import NpzDataset, as_path, dataset_labels, default_data_root, open_raw_dataset
from faultzoo.data.transforms import batch_to_tensor, split_at_to_tensor, test_transform
from faultzoo.exceptions import DatasetError, UnknownDatasetError, found

__all__ = ["DataSelection", "load_selection", "select_indices"]

ProgressCallback = Callable[[int, int], None]

_FINGERPRINT_VERSION = b"faultzoo.data.selection/v1"

_logger = logging.getLogger(__name__)


def _check_count(name: str, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DatasetError(f"{name} must be a positive integer or None, found {found(value)}.")
    if value <= 0:
        raise DatasetError(f"{name} must be a positive integer, found {found(value)}. Leave it unset to take all "
                           "images.")


def select_indices(labels: Any, *, limit: int | None = None, per_class: int | None = None) -> np.ndarray:
    """Positions of the chosen images, in dataset order; no randomness.

    Args:
        labels: One integer label per image, in dataset order.
        limit: Keep only the first ``limit`` images (after ``per_class``, when both are given).
        per_class: Keep the first ``per_class`` images of each class; classes with fewer keep all theirs.

    Returns:
        Sorted int64 positions. A ``limit`` above the number of images takes them all.

    Raises:
        DatasetError: a non-positive or non-integer ``limit``/``per_class``, or labels that are not 1-D integers.
    """
    _check_count("limit", limit)
    _check_count("per_class", per_class)
    try:
        labels = np.asarray(labels)
    except (ValueError, TypeError, OverflowError) as exc:  # ragged nesting, an int beyond int64, ...
        raise DatasetError(f"labels must be a 1-D integer array; found {found(labels)} ({exc}).") from None
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise DatasetError(f"labels must be a 1-D integer array, found dtype {labels.dtype} shape {labels.shape}.")
    chosen = np.arange(labels.shape[0], dtype=np.int64)
    if per_class is not None:
        # Stable sort groups each class while keeping dataset order inside it; the rank of an image
        # within its class is then its offset from the class's first position in that order.
        order = np.argsort(labels, kind="stable")
        sorted_labels = labels[order]
        starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
        rank = np.arange(order.size) - starts
        chosen = np.sort(order[rank < per_class]).astype(np.int64)
    if limit is not None:
        chosen = chosen[:limit]
    return chosen


def _short_of_limit(labels: np.ndarray, selected: int, limit: int, per_class: int | None, source: str) -> str:
    """What was selected, and why fewer images than ``limit`` (CLI: --limit): the data holds no more, or
    ``per_class`` (CLI: --per-class) took fewer."""
    shown = limit if limit < 10**18 else f"<{int(limit).bit_length()}-bit integer>"
    images = f"{selected:,} image{'s' if selected != 1 else ''} selected from {source}"
    if per_class is None:
        return f"{images}: all it holds (limit {shown})."
    counts = np.unique(labels, return_counts=True)[1]
    classes = f"{counts.size:,} class{'es' if counts.size != 1 else ''}"
    upto = "" if bool((counts >= per_class).all()) else "up to "
    return f"{images}: {upto}{per_class:,} per class of {classes} (limit {shown})."


@dataclass(frozen=True, eq=False)
class DataSelection:
    """A fixed set of preprocessed images and labels, with where they came from.

    Attributes:
        x: Normalised images, float32 N×C×H×W, C-contiguous.
        y: Labels, int64, N.
        indices: Position of each image in its source (dataset split or ``.npz`` rows), int64, sorted.
        source: Human-readable origin (dataset, split and root, or the ``.npz`` path).
        dataset: Dataset whose conventions (classes, normalisation) the tensors follow.
        kind: ``"torchvision"`` or ``"npz"`` (``"tensors"`` for hand-built selections).
        split: The dataset split, or ``None`` for an ``.npz``.
        sample_ids: Each image's id in the original dataset: the ``.npz``'s ``idx`` when present, else ``indices``.
        limit: The ``limit`` used to choose the images.
        per_class: The ``per_class`` used to choose the images.
    """

    x: torch.Tensor
    y: torch.Tensor
    indices: np.ndarray
    source: str
    dataset: str
    kind: str = "tensors"
    split: str | None = None
    sample_ids: np.ndarray | None = field(default=None)
    limit: int | None = None
    per_class: int | None = None

    def __post_init__(self) -> None:
        for name in ("x", "y"):
            if not isinstance(getattr(self, name), torch.Tensor):
                raise DatasetError(f"DataSelection.{name} must be a torch.Tensor; found {found(getattr(self, name))}.")
        for name in ("source", "dataset", "kind", "split"):  # recorded in the fingerprint and the provenance
            value = getattr(self, name)
            if not isinstance(value, str) and not (name == "split" and value is None):
                raise DatasetError(f"DataSelection.{name} must be a str{' or None' if name == 'split' else ''}; "
                                   f"found {found(value)}.")
        n = self.x.shape[0] if self.x.ndim else -1
        if self.x.dtype != torch.float32 or self.x.ndim != 4 or not self.x.is_contiguous():
            raise DatasetError(
                f"DataSelection.x must be a contiguous float32 N×C×H×W tensor, found {self.x.dtype} "
                f"{tuple(self.x.shape)} (contiguous={self.x.is_contiguous()})."
            )
        if self.y.dtype != torch.int64 or tuple(self.y.shape) != (n,):
            raise DatasetError(
                f"DataSelection.y must be int64 of shape ({n},), found {self.y.dtype} {tuple(self.y.shape)}."
            )
        # Own read-only copies: the fingerprint must keep describing what the tensors were built from.
        raw = {"indices": self.indices, "sample_ids": self.indices if self.sample_ids is None else self.sample_ids}
        for name, value in raw.items():
            try:
                array = np.asarray(value)
            except (ValueError, TypeError, OverflowError):  # ragged nesting, an int beyond int64, ...
                array = None
            if array is None or (array.size and array.dtype.kind not in "iu"):
                raise DatasetError(f"DataSelection.{name} must be {n} integers; found {found(value)}.")
        try:
            indices = np.array(raw["indices"], dtype=np.int64)
            ids = np.array(raw["sample_ids"], dtype=np.int64)
        except OverflowError:  # uint64 values beyond int64
            raise DatasetError(f"DataSelection.indices/sample_ids must be integers below 2**63; found "
                               f"{found(self.indices)}/{found(self.sample_ids)}.") from None
        if indices.shape != (n,) or ids.shape != (n,):
            raise DatasetError(
                f"DataSelection.indices/sample_ids must have shape ({n},), found {indices.shape}/{ids.shape}."
            )
        indices.flags.writeable = False
        ids.flags.writeable = False
        object.__setattr__(self, "indices", indices)
        object.__setattr__(self, "sample_ids", ids)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def fingerprint(self) -> str:
        """sha256 (hex) of what a campaign's results depend on.

        Covers the source identity (dataset, kind, split), the indices and sample ids, and the exact
        bytes, dtype and shape of ``x`` and ``y``. The root or file path is left out on purpose, so moving
        the data does not block resuming; changed pixels, labels or selection do. Recomputed on every call
        because tensors are mutable.
        """
        h = hashlib.sha256()

        def part(tag: str, payload: bytes | memoryview) -> None:
            # Length-prefixed parts: no two different inputs concatenate to the same stream.
            h.update(tag.encode() + b"\0" + len(payload).to_bytes(8, "little"))
            h.update(payload)

        part("version", _FINGERPRINT_VERSION)
        identity = {"dataset": self.dataset, "kind": self.kind, "split": self.split}
        part("identity", json.dumps(identity, sort_keys=True).encode())
        part("indices", self.indices.astype("<i8").tobytes())
        part("sample_ids", np.asarray(self.sample_ids).astype("<i8").tobytes())
        for name, t in (("x", self.x), ("y", self.y)):
            arr = np.ascontiguousarray(t.detach().cpu().numpy())
            part(f"{name}.meta", f"{arr.dtype.str}{arr.shape}".encode())
            part(name, memoryview(arr).cast("B"))
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """JSON-able provenance: enough to rebuild the selection and to check it is the same data."""
        labels = self.y.numpy()
        return {
            "dataset": self.dataset,
            "source": self.source,
            "kind": self.kind,
            "split": self.split,
            "limit": self.limit,
            "per_class": self.per_class,
            "num_samples": len(self),
            "input_shape": list(self.x.shape[1:]),
            "num_classes_present": int(np.unique(labels).size),
            "first_index": int(self.indices[0]) if len(self) else None,
            "last_index": int(self.indices[-1]) if len(self) else None,
            "fingerprint": self.fingerprint(),
        }


def load_selection(
    data: str | Path,
    *,
    dataset: str,
    split: str = "test",
    limit: int | None = None,
    per_class: int | None = None,
    root: str | Path | None = None,
    download: bool = False,
    progress: ProgressCallback | None = None,
) -> DataSelection:
    """Choose images and preprocess them exactly as the seed's test transform does.

    Images always go through the deterministic test transform, whatever the split. The PIL stage
    (crop/resize) runs per image; ``ToTensor`` + ``Normalize`` run on the stacked batch, which gives
    the same bits as torchvision's per-image path.

    Args:
        data: A dataset name (``"cifar10"``, ``"cifar100"``, ``"gtsrb"``) or a path to an ``.npz``.
        dataset: The model's dataset; ``data`` must fit it.
        split: Dataset split for a dataset name (ignored for an ``.npz``).
        limit: See :func:`select_indices`.
        per_class: See :func:`select_indices`.
        root: Data root for a dataset name; default :func:`default_data_root`.
        download: Let torchvision download a missing dataset.
        progress: Called as ``progress(done, total)`` while images are decoded.

    Raises:
        UnknownDatasetError: ``dataset`` is unknown, or ``data`` is neither a dataset name nor a file.
        DatasetError: the data does not fit the model's dataset, is missing or malformed.
    """
    info = dataset_info(dataset)
    _check_count("limit", limit)
    _check_count("per_class", per_class)
    if not isinstance(download, bool):
        raise DatasetError(f"download must be True or False; found {found(download)}.")
    if progress is not None and not callable(progress):
        raise DatasetError(f"progress must be a function progress(done, total) or None; found {found(progress)}.")
    ds, raw, source, kind, sel_split = _open_source(data, dataset, split, root, download)
    labels = dataset_labels(ds)
    indices = select_indices(labels, limit=limit, per_class=per_class)
    if limit is not None and indices.size < limit:
        _logger.warning("%s", _short_of_limit(labels, indices.size, limit, per_class, source))
    if indices.size == 0:
        raise DatasetError(f"No image selected from {source} (limit={limit}, per_class={per_class}).")
    pil_stage, normalizers = split_at_to_tensor(test_transform(dataset))
    _, h, w = info.input_size
    pixels = np.empty((indices.size, h, w, 3), dtype=np.uint8)
    total = int(indices.size)
    step = max(1, total // 100)
    for k, i in enumerate(indices.tolist()):
        try:
            img = raw(i)
        except OSError as exc:  # a missing or truncated image file in a dataset folder
            raise DatasetError(f"Cannot decode image {i} of {source}: {exc}.") from exc
        for t in pil_stage:
            img = t(img)
        if img.mode != "RGB" or img.size != (w, h):
            raise DatasetError(
                f"Image {i} of {source} is {img.mode} {img.size[0]}×{img.size[1]} after the test transform's "
                f"PIL stage; expected RGB {w}×{h}."
            )
        pixels[k] = np.asarray(img)
        if progress is not None and ((k + 1) % step == 0 or k + 1 == total):
            progress(k + 1, total)
    x = batch_to_tensor(pixels, normalizers)
    del pixels
    sample_ids = indices
    if isinstance(ds, NpzDataset) and ds.idx is not None:
        sample_ids = ds.idx[indices]
    return DataSelection(
        x=x,
        y=torch.from_numpy(labels[indices].copy()),
        indices=indices,
        source=source,
        dataset=dataset,
        kind=kind,
        split=sel_split,
        sample_ids=sample_ids,
        limit=limit,
        per_class=per_class,
    )


def _open_source(
    data: str | Path, dataset: str, split: str, root: str | Path | None, download: bool
) -> tuple[Any, Callable[[int], Image.Image], str, str, str | None]:
    """Open ``data`` for a ``dataset`` model: (dataset object, raw PIL image getter, source text, kind, split)."""
    if not isinstance(data, (str, os.PathLike)) or not isinstance(os.fspath(data), str):
        raise UnknownDatasetError(f"data must be a dataset name ({', '.join(list_datasets())}) or the path of an .npz "
                                  f"file; found {found(data)}.")
    data_str = os.fspath(data)
    if data_str in list_datasets():
        if data_str != dataset:
            want, other = dataset_info(dataset), dataset_info(data_str)
            raise DatasetError(
                f"Data {data_str!r} does not fit a {dataset} model: expected {dataset} images "
                f"({'×'.join(map(str, want.input_size))}, {want.num_classes} classes), found {data_str} "
                f"({'×'.join(map(str, other.input_size))}, {other.num_classes} classes). "
                f"Use data {dataset!r} or an .npz of {dataset} images."
            )
        root_path = (as_path("root", root) if root is not None else default_data_root()).resolve()
        tv = open_raw_dataset(data_str, split, root=root_path, download=download)
        source = f"{data_str} {split} split (torchvision) under {root_path}"
        return tv, lambda i: tv[i][0], source, "torchvision", split
    path = as_path("data", data_str)
    try:
        exists = path.exists()
    except OSError:  # a name too long, ...
        exists = False
    if path.suffix.lower() != ".npz" and not exists:
        raise UnknownDatasetError(
            f"Data {data_str!r} is neither a dataset name nor an existing .npz file. "
            + unknown_dataset_message(data_str)
        )
    npz = NpzDataset(path, dataset)
    return npz, npz.image, f"npz file {path.resolve()}", "npz", None
