"""Batched inference of a Keras twin through one compiled graph, and accuracy like the PyTorch eval.

The numerical definition of a twin's output is this path: the twin called with
``training=False`` inside a ``tf.function`` (TensorFlow graph mode with its default graph
optimisations, no XLA), traced once per twin for any batch size, run on consecutive batches
that never hold a single row (:func:`faultzoo.inference.batch_slices`). Calling the twin eagerly
(``twin(x)``) or through ``twin.predict`` computes the same function but may round differently
(observed: up to 5.7e-6 on ResNet-20 logits); comparisons that need identical bits must use the
same path throughout.
"""

from __future__ import annotations

import time
import weakref

import numpy as np
import torch

from faultzoo.data import to_nhwc
from faultzoo.exceptions import DatasetError
from faultzoo.inference import Accuracy, BatchCallback, batch_slices, topk_correct
from faultzoo.keras._tf import require_keras

__all__ = ["evaluate", "predict_logits"]

_PREDICTORS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _predictor(twin):
    """The twin's compiled inference function (one trace, any batch size)."""
    fn = _PREDICTORS.get(twin)
    if fn is None:
        _, tf = require_keras()
        spec = tf.TensorSpec((None, *twin.input_shape[1:]), tf.float32)
        fn = tf.function(lambda x: twin(x, training=False), input_signature=[spec])
        _PREDICTORS[twin] = fn
    return fn


def _as_nhwc(twin, x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = to_nhwc(x)  # N×C×H×W float32 -> N×H×W×C, bit for bit
    x = np.asarray(x)
    want = tuple(twin.input_shape[1:])
    if x.dtype != np.float32 or x.ndim != 4 or tuple(x.shape[1:]) != want:
        raise DatasetError(f"Keras twin {twin.name!r} takes float32 N×{'×'.join(map(str, want))} (NHWC) images, "
                           f"found {x.dtype} {tuple(x.shape)}. Convert N×C×H×W tensors with faultzoo.data.to_nhwc.")
    return x


def predict_logits(twin, x, *, batch_size: int = 128, callback: BatchCallback | None = None) -> np.ndarray:
    """Logits (float32 N×classes) of a Keras twin on NHWC images, in fixed consecutive batches.

    Args:
        twin: A Keras twin from ``get_model(..., framework="keras")`` (any Keras model with one image input).
        x: float32 N×H×W×C array, or an N×C×H×W float32 torch tensor (converted with ``to_nhwc``).
        batch_size: Images per call (>= 2); a lone last image joins the previous batch.
        callback: Called with (images done, images total) after each batch.

    Raises:
        DatasetError: images of another shape or dtype than the twin's input.
    """
    x = _as_nhwc(twin, x)
    fn = _predictor(twin)
    outputs = []
    for sl in batch_slices(len(x), batch_size):
        outputs.append(fn(x[sl]).numpy())
        if callback is not None:
            callback(sl.stop, len(x))
    return np.concatenate(outputs) if outputs else np.empty((0, twin.output_shape[-1]), np.float32)


def evaluate(twin, x, y, *, batch_size: int = 128, callback: BatchCallback | None = None) -> Accuracy:
    """Top-1 / top-5 accuracy (percent) and wall time of one pass of the twin over ``x``."""
    x = _as_nhwc(twin, x)
    labels = torch.as_tensor(np.asarray(y), dtype=torch.int64)
    start = time.perf_counter()
    logits = torch.from_numpy(predict_logits(twin, x, batch_size=batch_size, callback=callback))
    seconds = time.perf_counter() - start
    n = len(labels)
    return Accuracy(n, 100.0 * topk_correct(logits, labels, 1) / n, 100.0 * topk_correct(logits, labels, 5) / n,
                    seconds)
