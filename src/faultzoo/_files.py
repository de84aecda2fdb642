"""Atomic file writes: the one way faultzoo puts a file in place (fault lists, exports, downloads).

A file is written to a unique temporary name in its destination folder, flushed to disk, and renamed
over the destination: a reader sees the old file or the complete new one, never a half-written one,
and an interrupted write leaves no file that could be mistaken for valid. The temporary file is
created with ``open(..., "x")`` so the process umask applies, as for any file the user creates
(``tempfile.mkstemp`` would force mode 0600; changing the umask to read it races with threads).
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from faultzoo.exceptions import OutputError

__all__ = ["atomic_write", "atomic_writer", "ensure_writable_dir"]


def ensure_writable_dir(folder: str | os.PathLike, *, what: str = "output folder", create: bool = True) -> Path:
    """Check that files can be created in ``folder``, creating it if needed (``create=False``: check
    only, in the nearest folder that exists, and create nothing).

    Raises:
        OutputError: the path is an existing file, or the folder cannot be created or written.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"The {what} {folder} is an existing file, not a folder: choose another path.")
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        where = folder
        while not where.exists():
            where = where.parent
        if not where.is_dir():
            raise OutputError(f"The {what} {folder} lies under {where}, which is a file, not a folder.")
        probe = where / f".faultzoo-probe.{os.getpid()}.{secrets.token_hex(4)}"
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"Cannot write in the {what} {folder}: {_reason(exc)}. Choose a writable folder.") from None
    return folder


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file handle whose content replaces ``path`` only when the block ends without error."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the folder {path.parent} for {path.name}: {_reason(exc)}.") from None
    try:
        in_the_way = path.is_dir()
    except OSError as exc:  # a name the file system refuses (too long, say)
        raise OutputError(f"Cannot write {path}: {_reason(exc)}.") from None
    if in_the_way:
        raise OutputError(f"Cannot write {path}: a folder of that name is in the way; move or delete it.")
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part"
    try:
        handle = open(tmp, "xb")  # noqa: SIM115 - closed below, before the rename
    except OSError as exc:
        raise OutputError(f"Cannot write {path}: {_reason(exc)}.") from None
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` (str as UTF-8) to ``path`` atomically; return the path."""
    with atomic_writer(path) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied (read-only or not yours)"
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return exc.strerror or str(exc)


def process_alive(pid: object) -> bool:
    """Whether a process with this id exists on this machine (this one included; another user's too)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
