"""The Keras reference engine: write the faulty word into the twin, run the whole twin, restore. Obviously right.

For each fault the twin variable's element is rewritten through its uint32 view and read back,
every golden batch is run through the twin's one compiled function, and the golden variable is
put back and verified bit for bit before the next fault.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from faultzoo.backends.golden import GoldenRun
from faultzoo.backends.classify import Classified, classify
from faultzoo.exceptions import ExactnessError
from faultzoo.faults import Fault
from faultzoo.inference import batch_slices
from faultzoo.backends.keras.golden import nhwc_images, twin_forward
from faultzoo.backends.keras.numerics import exact_numerics, keras_numerics
from faultzoo.backends.keras.targets import KerasTarget, TargetMap, WordWriter, faulty_word

__all__ = ["KerasReferenceEngine", "twin_for"]


def twin_for(model: nn.Module, x: torch.Tensor):
    """A Keras twin of ``model`` (tensors copied bit for bit) for images shaped like ``x`` (N×C×H×W)."""
    from faultzoo.keras import convert

    return convert(model, tuple(x.shape[1:]), name="twin")


class KerasReferenceEngine:
    """The oracle every other Keras engine is tested against.

    Args:
        model: the PyTorch model the fault list names tensors of (faults are mapped to its twin).
        x: the campaign's images, float32 N×C×H×W (as for the PyTorch engines) or N×H×W×C.
        golden: the twin's golden run (:func:`faultzoo.backends.keras.keras_golden_run`).
        batch_size: the golden run's batch size.
        params: ignored (the PyTorch engines' hint; accepted for the same signature).
        twin: the Keras twin; converted from ``model`` when not given.
    """

    name = "keras-reference"

    def __init__(self, model: nn.Module, x, golden: GoldenRun, *, batch_size: int, params: Sequence[str] = (),
                 twin=None):
        self.model = model
        self.twin = twin if twin is not None else twin_for(model, x)
        self.x = nhwc_images(self.twin, x)
        self.golden = golden
        self.batch_size = batch_size
        self.batches = batch_slices(len(self.x), batch_size)
        self.targets = TargetMap(model)
        self.writer = WordWriter(self.twin)
        self.forward = twin_forward(self.twin)
        self._started = False

    def start(self) -> None:
        """Check once that the golden run is this twin's, in this process (first batch, bit for bit)."""
        if self._started:
            return
        check_golden(self.forward, self.x, self.golden, self.batches[0], self.batch_size)
        self._started = True

    def export_state(self, *, threads: int = 1) -> None:
        return None  # a twin in a worker has nothing to reuse

    def cost(self, fault: Fault) -> float:
        return 1.0  # a full forward pass per image, whatever the fault

    def describe(self) -> dict:
        return {"engine": self.name, "batch_size": self.batch_size, "numerics": keras_numerics()}

    def run(self, faults: Sequence[tuple[int, Fault]]) -> dict[int, Classified]:
        return self.run_batches(faults, range(len(self.batches)))

    def run_batches(self, faults: Sequence[tuple[int, Fault]], batches: Sequence[int]) -> dict[int, Classified]:
        """Outcomes on the images of some golden batches (indices into ``self.batches``), in image order."""
        self.start()
        out = {}
        for fid, fault in faults:
            target, word = self.locate(fault)
            parts = []
            with exact_numerics(), self.writer.injected(target, word):
                for b in batches:
                    sl = self.batches[b]
                    parts.append(classify(self.golden.logits[sl], torch.from_numpy(self.forward(self.x[sl]))))
            out[fid] = concat(parts)
        return out

    def locate(self, fault: Fault) -> tuple[KerasTarget, int]:
        """The fault's twin element and the word to write there, after checking that the twin holds the
        PyTorch element's golden word (the mapping is right)."""
        target = self.targets.target(fault)
        golden = self.writer.golden_word(target)
        expected = self.targets.torch_word(fault)
        if golden != expected:
            raise ExactnessError(f"The twin's {target.layer}/{target.variable}{list(target.index)} holds "
                                 f"{golden:#010x} but {fault.param}{list(fault.index)} holds {expected:#010x}: the "
                                 "twin was not built from this model's weights.")
        return target, faulty_word(golden, fault)


def check_golden(forward, x: np.ndarray, golden: GoldenRun, sl: slice, batch_size: int) -> None:
    """The golden logits of one batch are reproduced here, bit for bit.

    Raises:
        ExactnessError: they are not: the golden run came from another framework, twin, batch size,
            numerics or process settings (thread counts), and "masked" would mean nothing.
    """
    if golden.batch_size != batch_size:
        raise ExactnessError(f"The golden run used batches of {golden.batch_size}, the engine {batch_size}; use one "
                             "batch size for both.")
    with exact_numerics():
        got = forward(x[sl])
    want = golden.logits[sl].numpy()
    same = got.shape == want.shape and np.array_equal(got.view(np.uint32), np.ascontiguousarray(want).view(np.uint32))
    if not same:
        raise ExactnessError("The golden logits are not reproduced by this twin here (first batch differs): compute "
                             "the golden run with faultzoo.backends.keras.keras_golden_run on the same twin, images "
                             "and batch size, in a process with the same Keras numerics (threads, oneDNN).")


def concat(chunks: list[Classified]) -> Classified:
    return Classified(np.concatenate([c.codes for c in chunks]), np.concatenate([c.nonfinite for c in chunks]),
                      np.concatenate([c.top1 for c in chunks]))
