"""Fast Keras engine, part 2: faulty rows waiting for the downstream pass, packed many faults to a batch.

A row is one (fault, image) whose faulty layer output differs from the golden one. Rows of many
faults share a downstream batch (downstream of the faulty layer every weight is golden). Each row
keeps the position it had in its golden batch and a batch of the same size (its *slot*), because a
row's bits may depend on both; the start-up checks verified that they do not depend on the other
rows' values. Positions no row needs are filled with golden rows whose results are ignored.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from faultzoo.backends.classify import UNSET, Classified, classify
from faultzoo.backends.classify import OutcomeSink as Sink

__all__ = ["UNSET", "Pending", "Sink", "rows_equal"]



def rows_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row (first axis): every value bit-identical (float32 compared as uint32)."""
    n = len(a)
    return (np.ascontiguousarray(a).view(np.uint32).reshape(n, -1)
            == np.ascontiguousarray(b).view(np.uint32).reshape(n, -1)).all(axis=1)


class Pending:
    """Faulty layer-output rows of several faults, grouped by the size of the golden batch they came from."""

    def __init__(self):
        self._parts: dict[int, list[tuple[np.ndarray, ...]]] = defaultdict(list)

    def add(self, size: int, fault: int, images: np.ndarray, slots: np.ndarray, rows: np.ndarray) -> None:
        """Rows ``rows`` of fault position ``fault``: images (global indices) at these slots of a batch of ``size``."""
        if len(images):
            self._parts[size].append((np.full(len(images), fault), images, slots, rows))

    def __bool__(self) -> bool:
        return bool(self._parts)

    def drain(self, down, golden_logits: torch.Tensor, filler: dict[int, tuple[np.ndarray, list[np.ndarray]]],
              frontier, sinks: dict[int, Sink]) -> int:
        """Run every pending row downstream in packed batches and classify it into its fault's sink.

        Args:
            down: (layer output rows, *frontier rows) -> logits.
            golden_logits: the golden logits of all images (torch, N×classes).
            filler: batch size -> (golden layer-output rows, golden frontier rows) of one golden batch of
                that size, used where no pending row needs a position.
            frontier: image indices (global) -> list of golden frontier row arrays.
            sinks: fault position -> Sink.

        Returns:
            The number of downstream batches run.
        """
        calls = 0
        for size, parts in self._parts.items():
            faults, images, slots, rows = (np.concatenate([p[i] for p in parts]) for i in range(4))
            rank = _rank_within(slots, size)
            order = np.argsort(rank, kind="stable")
            bounds = np.concatenate([[0], np.cumsum(np.bincount(rank, minlength=int(rank.max()) + 1))])
            fill_out, fill_front = filler[size]
            for k in range(len(bounds) - 1):
                sel = order[bounds[k]:bounds[k + 1]]
                batch_out = fill_out.copy()
                batch_out[slots[sel]] = rows[sel]
                batch_front = [f.copy() for f in fill_front]
                for part, values in zip(batch_front, frontier(images[sel])):
                    part[slots[sel]] = values
                logits = torch.from_numpy(np.asarray(down(batch_out, *batch_front)))[slots[sel]]
                result = classify(golden_logits[torch.from_numpy(images[sel])], logits)
                for f in np.unique(faults[sel]):
                    mine = faults[sel] == f
                    sinks[int(f)].put(images[sel][mine], Classified(result.codes[mine], result.nonfinite[mine],
                                                                    result.top1[mine]))
                calls += 1
        self._parts.clear()
        return calls


def _rank_within(slots: np.ndarray, size: int) -> np.ndarray:
    """For each row, how many earlier rows share its slot (0 for the first): its packed batch number."""
    order = np.argsort(slots, kind="stable")
    counts = np.bincount(slots, minlength=size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(slots), np.int64)
    rank[order] = np.arange(len(slots)) - starts[slots[order]]
    return rank
