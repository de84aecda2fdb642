"""The reference engine: flip the weight in place, run the whole network, restore. Slow and obviously right.

Batches outer, faults inner, as the upstream injector does; each fault is undone and the
restored word verified before the next one is applied.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from faultzoo.backends.engines import register_engine
from faultzoo.backends.golden import GoldenRun
from faultzoo.backends.classify import Classified, classify
from faultzoo.faults import Fault, injected
from faultzoo.inference import batch_slices

__all__ = ["ReferenceEngine"]


@register_engine("torch", "reference", "flips the weight and runs the whole network: slow, obviously right")
class ReferenceEngine:
    """The oracle every other engine is tested against. No options."""

    name = "reference"

    def __init__(self, model: nn.Module, x: torch.Tensor, golden: GoldenRun, *, batch_size: int,
                 params: Sequence[str] = ()):
        self.model = model.eval()
        self.x = x
        self.golden = golden
        self.batch_size = batch_size

    def start(self) -> None:
        """Nothing to prepare."""

    def export_state(self, *, threads: int = 1) -> None:
        return None  # a twin has nothing to reuse

    def cost(self, fault: Fault) -> float:
        return 1.0  # a full forward pass per image, whatever the fault

    def describe(self) -> dict:
        return {"engine": self.name, "batch_size": self.batch_size}

    def run(self, faults: Sequence[tuple[int, Fault]]) -> dict[int, Classified]:
        return self.run_slice(faults, slice(0, len(self.x)))

    def run_slice(self, faults: Sequence[tuple[int, Fault]], images: slice) -> dict[int, Classified]:
        """Outcomes on the images of one slice, in batches of ``batch_size`` within it."""
        parts: dict[int, list[Classified]] = {fid: [] for fid, _ in faults}
        with torch.no_grad():
            for b in batch_slices(images.stop - images.start, self.batch_size):
                sl = slice(images.start + b.start, images.start + b.stop)
                batch = self.x[sl]
                for fid, fault in faults:
                    with injected(self.model, fault):
                        logits = self.model(batch)
                    parts[fid].append(classify(self.golden.logits[sl], logits))
        return {fid: _concat(chunks) for fid, chunks in parts.items()}


def _concat(chunks: list[Classified]) -> Classified:
    return Classified(np.concatenate([c.codes for c in chunks]), np.concatenate([c.nonfinite for c in chunks]),
                      np.concatenate([c.top1 for c in chunks]))
