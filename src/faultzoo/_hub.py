"""Where files come from: the cache, an offline mirror, or the network; hash-checked and written atomically."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from faultzoo._files import atomic_writer, ensure_writable_dir
from faultzoo.exceptions import IntegrityError, OutputError, WeightsUnavailableError

_logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def home() -> Path:
    """Root of faultzoo's cache: ``$FAULTZOO_HOME``, else ``$XDG_CACHE_HOME/faultzoo``, else ``~/.cache/faultzoo``."""
    if os.environ.get("FAULTZOO_HOME"):
        return Path(os.environ["FAULTZOO_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "faultzoo"


def weights_dir() -> Path:
    return home() / "weights"


def mirror_root() -> Path | None:
    """Offline mirror: ``https://HOST/PATH`` is looked up as ``$FAULTZOO_MIRROR/HOST/PATH``."""
    value = os.environ.get("FAULTZOO_MIRROR")
    return Path(value).expanduser() if value else None


def offline() -> bool:
    return os.environ.get("FAULTZOO_OFFLINE", "") not in ("", "0", "false", "no")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_matches(actual: str, expected: str) -> bool:
    """Full digests compare exactly; a known prefix (e.g. akamaster's 8 hex digits) compares as a prefix."""
    return actual.startswith(expected.lower()) if len(expected) < 64 else actual == expected.lower()


def mirror_path(url: str, root: Path | None = None) -> Path | None:
    root = root if root is not None else mirror_root()
    if root is None:
        return None
    parts = urlsplit(url)
    return root / parts.netloc / parts.path.lstrip("/")


ProgressFn = Callable[[int, int | None], None]


def _copy_stream(src, dst, total: int | None, progress: ProgressFn | None) -> None:
    done = 0
    while chunk := src.read(_CHUNK):
        dst.write(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, total)


def fetch_file(
    urls: Sequence[str],
    sha256: str,
    filename: str,
    *,
    progress: ProgressFn | None = None,
) -> Path:
    """Return a cached, hash-verified copy of the file published at any of ``urls``.

    Sources are tried in order: the cache, then for each URL the offline mirror and (unless
    ``FAULTZOO_OFFLINE`` is set) the network. The file is written to a temporary name beside
    its target and renamed only after its hash matched, so a partial or corrupt download is
    never left where it could be mistaken for a valid one.

    Raises:
        IntegrityError: a source delivered bytes whose sha256 differs (nothing is cached).
        WeightsUnavailableError: no source could deliver the file.
    """
    target = weights_dir() / filename
    if target.is_dir():
        raise OutputError(f"The weights cache holds a folder where the file {target} belongs: delete or move "
                          "that folder (or set FAULTZOO_HOME to another cache).")
    if target.exists():
        actual = sha256_file(target)
        if hash_matches(actual, sha256):
            return target
        _logger.warning("cached %s has sha256 %s, expected %s: fetching it again", target, actual, sha256)
        target.unlink()
    ensure_writable_dir(target.parent, what="weights cache (FAULTZOO_HOME/weights)")
    tried: list[str] = []
    for url in urls:
        local = mirror_path(url)
        if local is not None and local.is_file():
            tried.append(f"mirror {local}")
            with open(local, "rb") as src:
                return _install(src, local.stat().st_size, target, sha256, str(local), progress)
        elif local is not None:
            tried.append(f"mirror {local} (absent)")
        if offline():
            tried.append(f"{url} (skipped: FAULTZOO_OFFLINE is set)")
            continue
        try:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - fixed https URLs
                length = response.headers.get("Content-Length")
                return _install(response, int(length) if length else None, target, sha256, url, progress)
        except (urllib.error.URLError, OSError) as exc:
            if isinstance(exc, IntegrityError):
                raise
            tried.append(f"{url} ({exc})")
    raise WeightsUnavailableError(
        f"Cannot obtain {filename}: no source could provide it. Tried: " + "; ".join(tried)
        + ". Set FAULTZOO_MIRROR to a folder laid out as HOST/PATH, allow network access, "
        "or pass weights=PATH to a checkpoint you have."
    )


def _install(src, total: int | None, target: Path, sha256: str, origin: str, progress: ProgressFn | None) -> Path:
    class _Mismatch(Exception):
        pass

    try:
        with atomic_writer(target) as dst:
            _copy_stream(src, dst, total, progress)
            dst.flush()
            actual = sha256_file(Path(dst.name))
            if not hash_matches(actual, sha256):
                raise _Mismatch  # leaving the block with an error discards the temporary file
    except _Mismatch:
        raise IntegrityError(
            f"Checksum mismatch for {target.name} from {origin}: expected sha256 {sha256}, found {actual}. "
            "Nothing was cached; the source is corrupt or a different file. A re-run fetches it again."
        ) from None
    _logger.info("cached %s from %s", target, origin)
    return target
