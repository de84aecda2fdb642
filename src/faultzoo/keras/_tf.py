"""The one place that imports TensorFlow and Keras: lazily, with numerics pinned and a clear error when absent."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from types import ModuleType

from faultzoo import _env
from faultzoo.exceptions import FrameworkUnavailableError

INSTALL_HINT = 'pip install "faultzoo[tf]"'


@cache
def require_keras() -> tuple[ModuleType, ModuleType]:
    """``(keras, tensorflow)``, imported once: Keras 3 on the TensorFlow backend, strict float32.

    Raises:
        FrameworkUnavailableError: TensorFlow or Keras is missing, Keras is older than 3, or Keras
            was already imported with another backend.
    """
    # Before the first import: TF's C++ start-up logging would bury the user's output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    _load_triton_first()
    try:
        with _native_stderr_silenced(not _env.verbose()):
            import tensorflow as tf
            import keras
    except ImportError as exc:  # sys.modules[name] = None also lands here
        raise FrameworkUnavailableError(
            f"Keras twins need TensorFlow and Keras 3, which are not importable here ({exc}). "
            f"Install them with: {INSTALL_HINT}"
        ) from exc
    major = int(keras.__version__.split(".", 1)[0])
    if major < 3:
        raise FrameworkUnavailableError(
            f"Keras twins need Keras 3, found keras {keras.__version__}. Upgrade with: {INSTALL_HINT}"
        )
    if keras.backend.backend() != "tensorflow":
        raise FrameworkUnavailableError(
            f"Keras twins run on the TensorFlow backend, but Keras was loaded with {keras.backend.backend()!r} "
            "(KERAS_BACKEND). Set KERAS_BACKEND=tensorflow before importing keras."
        )
    # Strict IEEE float32: no TF32 matmul/conv on GPUs that support it (the twins are compared bit for bit).
    tf.config.experimental.enable_tensor_float_32_execution(False)
    return keras, tf


@contextmanager
def _native_stderr_silenced(silence: bool) -> Iterator[None]:
    """TensorFlow's C++ libraries print an absl warning and a oneDNN notice (twice) on import, whatever
    TF_CPP_MIN_LOG_LEVEL says: send file descriptor 2 to /dev/null while they load."""
    if not silence:
        yield
        return
    try:
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no usable descriptor 2: nothing to silence
        yield
        return
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _load_triton_first() -> None:
    """Import triton (if installed) before TensorFlow.

    torchvision imports torch._dynamo, which imports triton; with torch 2.14 and TensorFlow 2.21
    on Linux, importing triton after TensorFlow crashes the process (segmentation fault), while
    the other order works. faultzoo.data imports torchvision lazily, so load triton now.
    """
    if "tensorflow" in sys.modules:
        return  # too late to choose the order; nothing to gain
    try:
        import triton  # noqa: F401
    except ImportError:
        pass


def versions() -> dict[str, str]:
    """Keras, TensorFlow and backend versions, for provenance."""
    keras, tf = require_keras()
    return {"keras": keras.__version__, "tensorflow": tf.__version__, "backend": keras.backend.backend()}
