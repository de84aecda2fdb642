"""Fast Keras engine, part 3: the checks that decide how a layer's faults are computed, on the campaign's data.

Per layer, on its first fault, with the golden values of the first golden batch:
1. the layer alone, on its golden inputs, computes its golden output inside the twin;
2. the downstream cone, from the golden layer output and frontier, computes the golden logits;
3. with the first fault written into the twin, the fast path (layer alone, then downstream) gives the
   reference's logits (the whole twin run) bit for bit;
4. in the downstream cone a row's logits do not change when the other rows of its batch hold other
   values (a NaN row among them), so rows of several faults may share a batch (``slots``).
A failed 1-3 runs the layer's faults the reference way; a failed 4 keeps them in the golden batches
(``aligned``). The outcome of every check is recorded in the engine's description.
"""

from __future__ import annotations

import numpy as np

from faultzoo.keras.campaign.fast_pack import rows_equal
from faultzoo.keras.campaign.graph import LayerCut

__all__ = ["layer_mode"]


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(rows_equal(a, b).all())


def layer_mode(engine, cut: LayerCut, fault, values: dict, batch: slice) -> str:
    """``"slots"``, ``"aligned"`` or ``"reference: <why>"`` for the faults of ``cut``'s layer.

    ``values`` holds the golden values (id of KerasTensor -> array) of ``batch``, the first golden batch.
    """
    graph = engine.graph
    layer_fn, down_fn = graph.layer_fn(cut), graph.down_fn(cut)
    inputs = [values[id(t)] for t in cut.inputs]
    out = values[id(cut.output)]
    frontier = [values[id(t)] for t in cut.frontier]
    golden = engine.golden_logits[batch]
    if not _same(layer_fn(*inputs), out):
        return "reference: the layer alone does not compute its output inside the twin"
    if not _same(down_fn(out, *frontier), golden):
        return "reference: the layers after it, re-run from its golden output, do not give the golden logits"
    target, word = engine.reference.locate(fault)
    with engine.reference.writer.injected(target, word):
        expected = engine.reference.forward(engine.x[batch])
        got = down_fn(layer_fn(*inputs), *frontier)
    if not _same(got, expected):
        return f"reference: the fast path's logits differ from the whole twin's for {fault}"
    if engine.batch_check.mode != "slots":
        return "aligned"
    if not _rows_stand_alone(down_fn, out, frontier, golden):
        return "aligned"
    return "slots"


def _rows_stand_alone(down_fn, out: np.ndarray, frontier: list[np.ndarray], golden: np.ndarray) -> bool:
    """Half the rows replaced by other rows (a NaN one among them): the other half keeps its logits."""
    size = len(out)
    if size < 2:
        return False
    others = out[::-1].copy()
    others[0] = np.nan
    for keep in (0, 1):
        kept = np.arange(keep, size, 2)
        swap = np.setdiff1d(np.arange(size), kept)
        mixed = out.copy()
        mixed[swap] = others[swap]
        mixed_front = []
        for f in frontier:
            g = f.copy()
            g[swap] = f[::-1][swap]
            mixed_front.append(g)
        got = np.asarray(down_fn(mixed, *mixed_front))
        if not _same(got[kept], golden[kept]):
            return False
    return True
