"""The golden (fault-free) run: the reference every faulty inference is compared with, bit for bit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from faultzoo.backends.classify import top1
from faultzoo.inference import BatchCallback, predict_logits


@dataclass(frozen=True)
class GoldenRun:
    """Fault-free logits of the selected images, computed with the campaign's batching policy."""

    logits: torch.Tensor  # (N, classes) float32
    labels: torch.Tensor  # (N,) int64
    batch_size: int

    @property
    def top1(self) -> torch.Tensor:
        return top1(self.logits)

    @property
    def correct(self) -> int:
        return int((self.top1 == self.labels).sum())

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / len(self.labels)

    def top1_numpy(self) -> np.ndarray:
        return self.top1.cpu().numpy().astype(np.int64)


def golden_run(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int,
               callback: BatchCallback | None = None) -> GoldenRun:
    """Forward every image once, in consecutive batches of ``batch_size`` (the policy both engines share)."""
    logits = predict_logits(model, x, batch_size=batch_size, callback=callback)
    return GoldenRun(logits.contiguous(), y.to(torch.int64), batch_size)
