"""Where images come from: torchvision datasets under a data root, and exact-pixel ``.npz`` files."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision import datasets as tvd

from faultzoo.data.info import DatasetInfo, check_image_size, dataset_info
from faultzoo.data.transforms import test_transform, train_transform
from faultzoo.exceptions import DatasetError, found

__all__ = ["NpzDataset", "dataset_labels", "default_data_root", "load_dataset"]

SPLITS = ("test", "train")

# Where torchvision looks under the root, per (dataset, split), to tell the user what is missing.
_EXPECTED_LAYOUT = {
    ("cifar10", "test"): "cifar-10-batches-py/test_batch",
    ("cifar10", "train"): "cifar-10-batches-py/data_batch_1..5",
    ("cifar100", "test"): "cifar-100-python/test",
    ("cifar100", "train"): "cifar-100-python/train",
    ("gtsrb", "test"): "gtsrb/GTSRB/Final_Test/Images/*.ppm and gtsrb/GT-final_test.csv",
    ("gtsrb", "train"): "gtsrb/GTSRB/Training/<class>/*.ppm",
}


def default_data_root() -> Path:
    """Folder that holds the datasets: ``$FAULTZOO_DATA`` if set, else ``~/.cache/faultzoo/data``."""
    env = os.environ.get("FAULTZOO_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "faultzoo" / "data"


def _check_split(split: str) -> None:
    if not isinstance(split, str) or split not in SPLITS:
        raise DatasetError(f"Unknown split {found(split)}. Valid splits: {', '.join(SPLITS)}.")


def as_path(name: str, value: object) -> Path:
    """A path argument (str or os.PathLike, ``~`` expanded); anything else raises DatasetError naming ``name``."""
    if not isinstance(value, (str, os.PathLike)) or not isinstance(os.fspath(value), str):
        raise DatasetError(f"{name} must be a path (str or os.PathLike); found {found(value)}.")
    if "\x00" in os.fspath(value):
        raise DatasetError(f"{name} {os.fspath(value)[:200]!r} holds a NUL character, which no file name can contain.")
    try:
        return Path(value).expanduser()
    except RuntimeError as exc:  # '~nobody/...': no such user's home
        raise DatasetError(f"{name} {os.fspath(value)[:200]!r}: {exc}.") from None


def open_raw_dataset(name: str, split: str = "test", *, root: str | Path | None = None, download: bool = False) -> Any:
    """The torchvision dataset with no transform (items are ``(PIL image, label)``).

    Raises:
        UnknownDatasetError: unknown ``name``.
        DatasetError: unknown split, files missing or corrupted, or a download that failed or is disabled.
    """
    dataset_info(name)
    _check_split(split)
    root_path = as_path("root", root) if root is not None else default_data_root()
    if download and os.environ.get("FAULTZOO_OFFLINE", "").strip() not in ("", "0"):
        raise DatasetError(
            f"Cannot download {name} {split} into {root_path}: downloads are disabled by FAULTZOO_OFFLINE. "
            "Unset it, or put the files there yourself."
        )
    train = split == "train"
    try:
        if name == "cifar10":
            return tvd.CIFAR10(str(root_path), train=train, download=download)
        if name == "cifar100":
            return tvd.CIFAR100(str(root_path), train=train, download=download)
        return tvd.GTSRB(str(root_path), split=split, download=download)
    except (RuntimeError, OSError) as exc:
        # torchvision raises RuntimeError("Dataset not found or corrupted ...") when its files are absent or
        # fail their checksum, and an OSError when a file it opens is missing (GTSRB's csv).
        detail = f" ({exc})" if isinstance(exc, OSError) else ""
        remedy = (
            "The download failed; check the network or fetch the files by hand."
            if download
            else "Pass download=True (CLI: --download) to fetch it, or point root= (CLI: --data-root) or FAULTZOO_DATA "
            "at a folder that already holds it."
        )
        raise DatasetError(
            f"{name} {split} split not found, incomplete or corrupted under data root {str(root_path)!r}: "
            f"expected {_EXPECTED_LAYOUT[name, split]} there{detail}. {remedy}"
        ) from exc


def load_dataset(
    name: str,
    split: str = "test",
    *,
    root: str | Path | None = None,
    download: bool = False,
    transform: Callable[[Image.Image], Any] | None = None,
) -> Any:
    """The torchvision dataset (CIFAR10, CIFAR100 or GTSRB) with the seed's transform for ``split``.

    Args:
        name: ``"cifar10"``, ``"cifar100"`` or ``"gtsrb"``.
        split: ``"test"`` or ``"train"``.
        root: Data root; default :func:`default_data_root`. GTSRB lives in ``root/gtsrb/``.
        download: Let torchvision download missing files.
        transform: Replaces the seed's transform for that split.

    Raises:
        UnknownDatasetError: unknown ``name``.
        DatasetError: the files are missing (the message names the root and the remedy).
    """
    ds = open_raw_dataset(name, split, root=root, download=download)
    if transform is None:
        transform = test_transform(name) if split == "test" else train_transform(name)
    ds.transform = transform
    return ds


def dataset_labels(ds: Any) -> np.ndarray:
    """All labels of a dataset as int64, without decoding any image when the dataset allows it."""
    if isinstance(ds, NpzDataset):
        return ds.labels.copy()
    targets = getattr(ds, "targets", None)  # CIFAR10/100
    if targets is None and isinstance(getattr(ds, "_samples", None), list):
        # torchvision's GTSRB keeps (path, label) pairs read from its csv in a private list; reading it
        # avoids decoding 12,630 PPM files just to count them.
        targets = [label for _, label in ds._samples]
    if targets is None:
        targets = [ds[i][1] for i in range(len(ds))]
    return np.asarray(targets, dtype=np.int64)


class NpzDataset(Dataset):
    """Images stored as exact pixels in an ``.npz``, normalised with a dataset's test transform.

    The file holds ``x`` (uint8, N×H×W×3), ``y`` (integer labels, N) and optionally ``idx``
    (each image's position in the original test set). Items are ``(tensor, label)``.

    Args:
        path: The ``.npz`` file.
        dataset: Dataset whose classes, image size and normalisation apply.
        transform: Replaces the dataset's test transform (takes a PIL image).

    Raises:
        UnknownDatasetError: unknown ``dataset``.
        DatasetError: the file is missing, unreadable, or does not fit ``dataset`` (the message names the
            file and what was expected vs found).
    """

    def __init__(
        self,
        path: str | Path,
        dataset: str,
        *,
        transform: Callable[[Image.Image], Any] | None = None,
    ) -> None:
        self.info: DatasetInfo = dataset_info(dataset)
        self.path = as_path("path", path)
        self.images, self.labels, self.idx = _read_npz(self.path, self.info)
        self.transform = transform if transform is not None else test_transform(dataset)

    @property
    def dataset(self) -> str:
        """Name of the dataset whose conventions apply."""
        return self.info.name

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def image(self, index: int) -> Image.Image:
        """The raw image ``index`` as an RGB PIL image (no transform)."""
        # uint8 H×W×3 becomes an RGB image, as torchvision CIFAR does with its arrays.
        return Image.fromarray(self.images[index])

    def __getitem__(self, index: int) -> tuple[Any, int]:
        return self.transform(self.image(index)), int(self.labels[index])

    def __repr__(self) -> str:
        return f"NpzDataset({str(self.path)!r}, dataset={self.dataset!r}, n={len(self)})"


def _read_npz(path: Path, info: DatasetInfo) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Load and validate ``x``, ``y`` and optional ``idx`` of an image ``.npz`` against ``info``."""
    where = f"image file {str(path)!r}"
    try:
        is_file = path.is_file()
    except OSError as exc:  # a name too long, ...
        raise DatasetError(f"Cannot read {where}: {exc.strerror or exc}.") from None
    if not is_file:
        raise DatasetError(f"Cannot read {where}: no such file.")
    try:
        is_zip = zipfile.is_zipfile(path)
        size = path.stat().st_size
    except OSError as exc:  # no permission to read it, ...
        raise DatasetError(f"Cannot read {where}: {exc.strerror or exc}.") from None
    if not is_zip:
        raise DatasetError(f"Cannot read {where}: it is not an .npz archive ("
                           + ("the file is empty" if size == 0 else f"{size:,} bytes that are not a zip file")
                           + "). Expected an np.savez file with 'x' (uint8 N×H×W×3) and 'y' (labels).")
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            missing = [k for k in ("x", "y") if k not in keys]
            if missing:
                raise DatasetError(
                    f"Malformed {where}: missing key(s) {', '.join(map(repr, missing))}. "
                    f"Expected 'x' (uint8 N×H×W×3), 'y' (integer labels) and optional 'idx'; found {sorted(keys)}."
                )
            x, y = npz["x"], npz["y"]
            idx = npz["idx"] if "idx" in keys else None
    except DatasetError:
        raise
    except Exception as exc:  # numpy raises many kinds on a damaged member (ValueError, TokenError, EOFError, ...)
        raise DatasetError(f"Cannot read {where} as .npz: {type(exc).__name__}: {str(exc)[:200]}.") from exc
    # numpy hands back a member that is no .npy array as raw bytes.
    not_arrays = [k for k, v in (("x", x), ("y", y), ("idx", idx)) if v is not None and not isinstance(v, np.ndarray)]
    if not_arrays:
        raise DatasetError(f"Malformed {where}: member(s) {', '.join(map(repr, not_arrays))} are not .npy arrays; "
                           "expected an np.savez file with 'x' (uint8 N×H×W×3) and 'y' (labels).")

    if x.dtype != np.uint8:
        raise DatasetError(f"Malformed {where}: 'x' must be uint8 pixels 0..255, found dtype {x.dtype}.")
    if x.ndim != 4 or x.shape[-1] != 3:
        raise DatasetError(f"Malformed {where}: 'x' must have shape N×H×W×3 (RGB), found {x.shape}.")
    check_image_size(where, info.name, x.shape[1], x.shape[2])
    n = x.shape[0]
    if n == 0:
        raise DatasetError(f"{where} holds no images ('x' has shape {x.shape}): nothing to evaluate.")
    if y.ndim != 1 or y.shape[0] != n:
        raise DatasetError(f"Malformed {where}: 'y' must have shape ({n},) to match 'x', found {y.shape}.")
    if y.dtype.kind not in "iu":
        raise DatasetError(f"Malformed {where}: 'y' must hold integer labels, found dtype {y.dtype}.")
    bad = np.flatnonzero((y < 0) | (y >= info.num_classes))
    if bad.size:
        first = int(bad[0])
        raise DatasetError(
            f"{where} does not fit {info.name}: label {int(y[first])} at position {first} "
            f"({bad.size} bad in all); expected labels 0..{info.num_classes - 1}."
        )
    if idx is not None and (idx.ndim != 1 or idx.shape[0] != n or idx.dtype.kind not in "iu"):
        raise DatasetError(
            f"Malformed {where}: 'idx' must be {n} integers (positions in the original set), "
            f"found dtype {idx.dtype} shape {idx.shape}."
        )
    return x, y.astype(np.int64), (idx.astype(np.int64) if idx is not None else None)
