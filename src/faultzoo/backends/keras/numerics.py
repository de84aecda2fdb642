"""The settings that decide the bits of a twin's logits in a campaign: applied, recorded, and the batch check.

A campaign's Keras numerics are: float32 everywhere, TensorFloat-32 off, the twin run in TensorFlow
graph mode through one ``tf.function`` traced with a free batch dimension (the function
:func:`faultzoo.keras.predict_logits` uses), no XLA, and Grappler (TensorFlow's graph rewriter) off,
so that every operation runs as the twin's layers traced it. With Grappler on, its arithmetic
optimizer rewrites arithmetic across layer boundaries (it folds multiplications into
convolutions, for instance): a layer's output inside the whole twin is then not the output of the
layer on its own, and re-running a twin from a cached activation does not reproduce the twin's
logits. Without it, every layer computes inside the twin exactly what it computes alone.

The settings are applied around each piece of campaign work (:func:`exact_numerics`) and restored
afterwards, because TensorFlow reads them on every call: other Keras work in the same process
(``faultzoo eval``) keeps TensorFlow's defaults.
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from faultzoo.exceptions import ExactnessError
from faultzoo.keras._tf import require_keras

__all__ = ["GRAPPLER_OPTIONS", "BatchCheck", "check_batch_dependence", "exact_numerics", "keras_numerics",
           "pin_keras_threads", "set_keras_threads", "tf_versions"]

GRAPPLER_OPTIONS = {"disable_meta_optimizer": True}

_logger = logging.getLogger(__name__)


@contextmanager
def exact_numerics() -> Iterator[None]:
    """Inside the block: TF32 off and Grappler off; the caller's options after."""
    _, tf = require_keras()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    before = tf.config.optimizer.get_experimental_options()
    tf.config.optimizer.set_experimental_options(GRAPPLER_OPTIONS)
    try:
        yield
    finally:
        # The options have no "unset": put back the caller's values, or TensorFlow's defaults.
        tf.config.optimizer.set_experimental_options({key: before.get(key, not value)
                                                      for key, value in GRAPPLER_OPTIONS.items()})


def set_keras_threads(intra_op: int | None = None, inter_op: int | None = None) -> None:
    """Fix TensorFlow's thread pools (None: leave as is). Thread counts may change the bits of a result.

    Raises:
        ExactnessError: TensorFlow has already started its thread pools with other sizes (call this
            before the first Keras computation of the process).
    """
    _, tf = require_keras()
    threading = tf.config.threading
    for value, getter, setter in ((intra_op, threading.get_intra_op_parallelism_threads,
                                   threading.set_intra_op_parallelism_threads),
                                  (inter_op, threading.get_inter_op_parallelism_threads,
                                   threading.set_inter_op_parallelism_threads)):
        if value is None or getter() == value:
            continue
        try:
            setter(value)
        except RuntimeError as exc:
            raise ExactnessError(f"Cannot set TensorFlow's thread count to {value} now ({exc}); set it before the "
                                 "first Keras computation of the process (e.g. at the start of the campaign).") \
                from None


def pin_keras_threads(intra_op: int) -> int:
    """Set TensorFlow's intra-op thread count for a campaign while TensorFlow still allows it, and return
    the count in force (0: TensorFlow's default), which the campaign's identity records: TensorFlow's
    convolutions round differently on another number of threads, so every worker must use this one.

    A process that has already computed with TensorFlow keeps its count (a warning says so)."""
    _, tf = require_keras()
    try:
        set_keras_threads(intra_op)
    except ExactnessError:
        _logger.warning("TensorFlow already runs on %d intra-op threads (0: its default) in this process; the Keras "
                        "campaign uses that count, and so do its workers",
                        tf.config.threading.get_intra_op_parallelism_threads())
    return tf.config.threading.get_intra_op_parallelism_threads()


def _onednn_enabled() -> bool | None:
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # a TensorFlow build without the helper
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def tf_versions() -> dict[str, str]:
    """Keras, TensorFlow and backend versions (the store identity of a Keras campaign includes them)."""
    keras, tf = require_keras()
    return {"keras": keras.__version__, "tensorflow": tf.__version__, "backend": keras.backend.backend()}


def keras_numerics() -> dict:
    """What decides the bits of a Keras campaign's logits, for its provenance (settings as applied by
    :func:`exact_numerics`; versions, oneDNN, thread pools and device as found in this process)."""
    _, tf = require_keras()
    gpus = tf.config.list_physical_devices("GPU")
    return {
        "framework": "keras",
        **tf_versions(),
        "dtype": "float32",
        "tf32": False,
        "execution": "tf.function graph, one trace with a free batch dimension, no XLA",
        "grappler": dict(GRAPPLER_OPTIONS),
        "onednn": _onednn_enabled(),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),  # 0: TensorFlow's default
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "device": "gpu" if gpus else "cpu",
        "device_name": gpus[0].name if gpus else (platform.processor() or platform.machine()),
        "cpu_count": os.cpu_count(),
    }


# --------------------------------------------------------------------------- does a row depend on its batch?


@dataclass(frozen=True)
class BatchCheck:
    """How a row's logits depend on the batch it is computed in (verified on the campaign's own images).

    mode: ``"slots"`` when a row's logits depend only on its own values, its position in the batch and
    the batch size (never on the other rows' values: a row of another fault may sit beside it); else
    ``"aligned"``: faulty rows are computed only in the golden run's exact batches.
    rows_independent: whether even the position and batch size do not matter (for the record).
    """

    mode: str
    rows_independent: bool | None
    detail: str

    def to_dict(self) -> dict:
        return {"mode": self.mode, "rows_independent": self.rows_independent, "detail": self.detail}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(np.ascontiguousarray(a).view(np.uint32),
                                                      np.ascontiguousarray(b).view(np.uint32)))


def _strangers(rows: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Rows of other values, including a NaN row and a huge one (faulty rows hold such values)."""
    out = other[: len(rows)].copy() if len(other) >= len(rows) else rows[::-1] * np.float32(-0.5)
    out[0] = np.nan
    if len(out) > 1:
        out[1] = np.float32(1e30)
    return out


def check_batch_dependence(forward, x: np.ndarray, golden: np.ndarray, batches: Sequence[slice]) -> BatchCheck:
    """Decide how faulty rows may be batched, from a few extra forward passes.

    ``forward`` maps float32 rows to logits (the twin's compiled function under the campaign's
    numerics); ``golden`` holds its logits for ``x`` computed in ``batches``. For each batch size in
    use, half the rows of a batch are replaced by other values (a NaN row and a 1e30 row among them)
    and the other half must keep their golden bits, then the halves swap.
    """
    first = batches[0]
    rows = x[first]
    independent = None
    if len(rows) >= 4:
        half = len(rows) // 2
        again = np.concatenate([forward(rows[::-1][: len(rows) - half]), forward(rows[::-1][len(rows) - half:])])
        independent = _same(again[::-1], golden[first])
    for size in sorted({s.stop - s.start for s in batches}):
        sl = next(s for s in batches if s.stop - s.start == size)
        rows, want = x[sl], golden[sl]
        other = x[sl.stop:] if sl.stop + size <= len(x) else x[: sl.start]
        strangers = _strangers(rows, other)
        for keep in (0, 1):
            mixed = rows.copy()
            kept = np.arange(keep, size, 2)
            swap = np.setdiff1d(np.arange(size), kept)
            mixed[swap] = strangers[swap]
            got = forward(mixed)
            if not _same(got[kept], want[kept]):
                return BatchCheck("aligned", independent,
                                  f"a row's logits change when other rows of its batch (size {size}) change: "
                                  "faulty rows are computed in the golden batches only")
    detail = ("a row's logits do not depend on its batch" if independent else
              "a row's logits depend on its position and batch size but not on the other rows' values: faulty "
              "rows keep their golden position and batch size")
    return BatchCheck("slots", independent, detail)
