"""Batched fault-free inference and accuracy: the one forward loop shared by eval and golden runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

BatchCallback = Callable[[int, int], None]  # (images done, images total)


def predict_logits(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 128, callback: BatchCallback | None = None
) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in fixed, consecutive batches of ``batch_size``.

    The batching is part of the numerical definition: on CPU a row's result is independent of
    its neighbours for batches of 2 or more, but a batch of a single row takes another kernel.
    Callers that compare bits must use the same policy (see :func:`batch_slices`).
    """
    outputs = []
    done = 0
    with torch.inference_mode():
        for sl in batch_slices(len(x), batch_size):
            outputs.append(model(x[sl]))
            done = sl.stop
            if callback is not None:
                callback(done, len(x))
    return torch.cat(outputs) if outputs else torch.empty(0)


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Consecutive slices of at most ``batch_size`` rows; a lone last row joins the previous batch.

    A batch of one row runs a different CPU kernel whose bits differ from the batched one, so
    no batch is ever allowed to hold a single row (unless the whole data set is one image).
    """
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 (a batch of one row changes the numerics), got {batch_size}")
    starts = list(range(0, n, batch_size))
    slices = [slice(s, min(s + batch_size, n)) for s in starts]
    if len(slices) >= 2 and slices[-1].stop - slices[-1].start == 1:
        slices[-2:] = [slice(slices[-2].start, n)]
    return slices


@dataclass(frozen=True)
class Accuracy:
    n: int
    top1: float
    top5: float
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("nan")


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> int:
    k = min(k, logits.shape[1])
    return int((logits.topk(k, dim=1).indices == labels[:, None]).any(dim=1).sum())


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 128, callback: BatchCallback | None = None
) -> Accuracy:
    """Top-1 / top-5 accuracy (percent) and wall time of one pass over ``x``."""
    start = time.perf_counter()
    logits = predict_logits(model, x, batch_size=batch_size, callback=callback)
    seconds = time.perf_counter() - start
    n = len(y)
    return Accuracy(n, 100.0 * topk_correct(logits, y, 1) / n, 100.0 * topk_correct(logits, y, 5) / n, seconds)
