"""Shared memory for campaign worker processes: moving tensors there, allocating there, and what fits.

Both the engines (golden maps filled in place in shared memory) and the executors (model and images
handed to worker processes by reference) use these helpers; this module imports neither of them.
Worker processes this process starts receive shared tensors as handles (torch's multiprocessing);
processes it did not start (a local Dask cluster's workers) map files of shared memory instead
(:class:`FileShare`, :class:`SharedFile`).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from faultzoo._files import process_alive

__all__ = ["FileShare", "SharedFile", "fits_in_shared_memory", "open_shared", "share", "shared_empty",
           "shared_memory_free"]

SHARE_ROOT = Path("/dev/shm")
_SHARE_PREFIX = "faultzoo-share-"


def share(tensor: torch.Tensor) -> torch.Tensor:
    """Move a CPU tensor's storage to shared memory (in place), so workers map it instead of copying it.

    Any numpy array viewing the old storage is left dangling: share fresh tensors only."""
    return tensor.share_memory_() if tensor.device.type == "cpu" else tensor


def shared_empty(shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised CPU tensor in shared memory. Tensor.share_memory_() would first allocate private
    memory and copy it over (0.66 s vs 0.33 s for 786 MB here); torch's own storage constructor does not."""
    try:
        storage = torch.UntypedStorage._new_shared(math.prod(shape) * dtype.itemsize)
        strides = [math.prod(shape[i + 1:]) for i in range(len(shape))]
        return torch.empty(0, dtype=dtype).set_(storage, 0, shape, strides)
    except (AttributeError, RuntimeError, TypeError):  # a torch without that private constructor
        return torch.empty(shape, dtype=dtype).share_memory_()


def shared_memory_free() -> int | None:
    """Bytes free where torch puts shared tensors on Linux (/dev/shm), None where unknown. Containers
    often give it 64 MB: writing past its end kills the process with SIGBUS instead of an error."""
    try:
        stats = os.statvfs("/dev/shm")
    except (OSError, AttributeError):
        return None
    return stats.f_bavail * stats.f_frsize


def fits_in_shared_memory(nbytes: int) -> bool:
    """Whether ``nbytes`` more fit in shared memory, with a 10 % margin (True where unknown)."""
    free = shared_memory_free()
    return free is None or nbytes <= 0.9 * free


@dataclass(frozen=True)
class SharedFile:
    """A tensor in a file of this machine's shared memory. ``open()`` maps it (copy on write: no copy
    until written) in any process of the same machine; elsewhere, or once removed, it gives None."""

    path: str
    token: str  # the FileShare's own: a same-named folder of another machine (or container) is not it
    shape: tuple[int, ...]
    dtype: str

    def open(self) -> torch.Tensor | None:
        try:
            if (Path(self.path).parent / "token").read_text() != self.token:
                return None
            dtype = getattr(torch, self.dtype)
            count = math.prod(self.shape)
            if count == 0:
                return torch.empty(self.shape, dtype=dtype)
            return torch.from_file(self.path, shared=False, size=count, dtype=dtype).view(self.shape)
        except (OSError, RuntimeError, AttributeError):
            return None


class FileShare:
    """A folder of shared-memory files for the processes of this machine that this one did not start,
    removed on close(). Folders left by a killed process are removed by the next FileShare."""

    def __init__(self, root: str | os.PathLike | None = None):
        root = Path(root or SHARE_ROOT)
        _remove_orphans(root)
        self.token = uuid.uuid4().hex
        self.folder = Path(tempfile.mkdtemp(prefix=f"{_SHARE_PREFIX}{os.getpid()}-", dir=root))
        (self.folder / "token").write_text(self.token)
        self._count = 0

    def put(self, tensor: torch.Tensor) -> SharedFile:
        data = tensor.detach().cpu().contiguous()
        path = self.folder / f"{self._count}.bin"
        self._count += 1
        partial = path.with_suffix(".partial")
        if data.numel():
            data.reshape(-1).view(torch.uint8).numpy().tofile(partial)
        else:
            partial.touch()
        os.replace(partial, path)  # a reader never maps a half-written file
        return SharedFile(str(path), self.token, tuple(data.shape), str(data.dtype).removeprefix("torch."))

    def put_all(self, tree: object) -> object:
        """``tree`` (dicts, lists, tuples) with every tensor replaced by its SharedFile."""
        return _map_tensors(tree, lambda t: self.put(t) if isinstance(t, torch.Tensor) else t)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> FileShare:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_shared(tree: object) -> object | None:
    """``tree`` with every SharedFile opened; None when one of them cannot be (another machine, removed)."""
    missing = []

    def open_one(item: object) -> object:
        if not isinstance(item, SharedFile):
            return item
        tensor = item.open()
        if tensor is None:
            missing.append(item.path)
        return tensor

    opened = _map_tensors(tree, open_one)
    return None if missing else opened


def _map_tensors(tree: object, fn: Callable[[object], object]) -> object:
    if isinstance(tree, dict):
        return {key: _map_tensors(value, fn) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map_tensors(value, fn) for value in tree)
    return fn(tree)


def _remove_orphans(root: Path) -> None:
    """Remove the share folders of processes that are gone (killed before they could remove them)."""
    for folder in root.glob(f"{_SHARE_PREFIX}*"):
        pid = folder.name.removeprefix(_SHARE_PREFIX).split("-")[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
