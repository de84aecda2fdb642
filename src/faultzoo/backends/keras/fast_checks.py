"""Fast Keras engine, part 3: the checks that decide how a layer's faults are computed, on the campaign's data.

Per layer, on its first fault, with the golden values of the first golden batch:
1. the layer alone, on its golden inputs, computes its golden output inside the twin;
2. the downstream chain, from the golden layer output and frontier, computes the golden logits of
   the even rows of the batch while the odd rows hold other values (a NaN row among them): rows of
   several faults may then share a batch (``slots``). The chain computes all rows of a batch in the
   same kernel calls, so what holds for the even rows holds for the odd ones;
3. if only the mixing fails, the layer's rows stay in their golden batches (``aligned``); if the
   chain does not reproduce the golden logits at all, or the layer alone does not, the layer's
   faults run the reference way.
Once per engine, the first fault of a fast layer is also run both ways on the first golden batch:
the fast path's logits must equal the whole twin's bit for bit (:func:`end_to_end`).
"""

from __future__ import annotations

import numpy as np

from faultzoo.backends.keras.fast_pack import rows_equal
from faultzoo.backends.keras.graph import LayerCut

__all__ = ["end_to_end", "layer_mode"]


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(rows_equal(a, b).all())


def layer_mode(graph, cut: LayerCut, values: dict, golden: np.ndarray, batch_mode: str) -> str:
    """``"slots"``, ``"aligned"`` or ``"reference: <why>"`` for the faults of ``cut``'s layer.

    ``values`` holds the golden values (id of KerasTensor -> array) of the first golden batch, whose
    golden logits are ``golden``; ``batch_mode`` is the whole twin's :class:`BatchCheck` mode.
    """
    inputs = [values[id(t)] for t in cut.inputs]
    out = values[id(cut.output)]
    frontier = [values[id(t)] for t in cut.frontier]
    if not _same(graph.layer_fn(cut)(*inputs), out):
        return "reference: the layer alone does not compute its output inside the twin"
    down = graph.down_fn(cut)
    if batch_mode == "slots" and len(out) >= 3 and _rows_stand_alone(down, out, frontier, golden):
        return "slots"
    if not _same(down(out, *frontier), golden):
        return "reference: the layers after it, re-run from its golden output, do not give the golden logits"
    return "aligned"


def _rows_stand_alone(down, out: np.ndarray, frontier: list[np.ndarray], golden: np.ndarray) -> bool:
    """The odd rows replaced by other rows (a NaN one among them): the even rows keep their golden logits."""
    size = len(out)
    if size < 2:
        return False
    kept, swap = np.arange(0, size, 2), np.arange(1, size, 2)
    others = out[::-1].copy()
    others[swap[0]] = np.nan
    mixed = out.copy()
    mixed[swap] = others[swap]
    mixed_front = []
    for f in frontier:
        g = f.copy()
        g[swap] = f[::-1][swap]
        mixed_front.append(g)
    return _same(down(mixed, *mixed_front)[kept], golden[kept])


def end_to_end(graph, cut: LayerCut, values: dict, reference, fault, batch: slice) -> bool:
    """With ``fault`` written into the twin: layer alone + downstream chain == the whole twin, on ``batch``."""
    target, word = reference.locate(fault)
    inputs = [values[id(t)] for t in cut.inputs]
    frontier = [values[id(t)] for t in cut.frontier]
    with reference.writer.injected(target, word):
        expected = reference.forward(reference.x[batch])
        got = graph.down_fn(cut)(graph.layer_fn(cut)(*inputs), *frontier)
    return _same(got, expected)
