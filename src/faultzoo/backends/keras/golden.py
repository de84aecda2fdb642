"""The golden run of a Keras twin: the record every faulty Keras inference is compared with, bit for bit.

It is a :class:`faultzoo.backends.golden.GoldenRun` (logits as a torch tensor, labels, batch size),
so that :func:`faultzoo.outcome.classify` and everything downstream of it work unchanged.
The logits come from the twin's one compiled function, under :func:`exact_numerics`, in the batches
of :func:`faultzoo.inference.batch_slices`: the same function and boundaries as every faulty run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from faultzoo.backends.golden import GoldenRun
from faultzoo.inference import BatchCallback, batch_slices
from faultzoo.backends.keras.numerics import exact_numerics
from faultzoo.keras.inference import _as_nhwc, _predictor

__all__ = ["forward_batches", "keras_golden_run", "nhwc_images", "twin_forward"]


def twin_forward(twin):
    """The twin's compiled function (one trace, any batch size; shared with ``predict_logits``), as a
    callable from a float32 NHWC array to a float32 logits array. Call it under :func:`exact_numerics`."""
    fn = _predictor(twin)
    return lambda rows: fn(rows).numpy()


def nhwc_images(twin, x) -> np.ndarray:
    """Images as the twin takes them: an N×C×H×W torch tensor is converted bit for bit (``to_nhwc``)."""
    return _as_nhwc(twin, x)


def forward_batches(forward, x: np.ndarray, batches: Sequence[slice], callback: BatchCallback | None = None
                    ) -> np.ndarray:
    """Logits of ``forward`` on ``x``, one call per batch slice, concatenated."""
    out = []
    for sl in batches:
        out.append(forward(x[sl]))
        if callback is not None:
            callback(sl.stop, len(x))
    return np.concatenate(out)


def keras_golden_run(twin, x, y, *, batch_size: int, callback: BatchCallback | None = None) -> GoldenRun:
    """Forward every image once through the twin, in consecutive batches of ``batch_size``.

    Args:
        twin: the Keras twin (``faultzoo.get_model(..., framework="keras")`` or ``faultzoo.keras.convert``).
        x: float32 N×C×H×W torch tensor (as for the PyTorch engines) or N×H×W×C array.
        y: labels (N,).
        batch_size: images per call (>= 2; a lone last image joins the previous batch).
        callback: called with (images done, images total) after each batch.
    """
    images = nhwc_images(twin, x)
    with exact_numerics():
        logits = forward_batches(twin_forward(twin), images, batch_slices(len(images), batch_size), callback)
    labels = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    return GoldenRun(torch.from_numpy(logits), labels, batch_size)
