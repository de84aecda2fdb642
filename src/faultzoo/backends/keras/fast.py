"""The fast Keras engine: the reference's outcome for every (fault, image), with far less arithmetic.

Levers, each exact on its own terms and verified on the campaign's own twin and images (a failed
check falls back, per layer, to a way that does not need it; see fast_checks.py):
1. A weight fault changes nothing upstream of its layer: the golden values at the layer's inputs
   (and at the tensors its downstream cone reads besides the layer's output) are cached, and only
   the layer and what depends on it is recomputed (graph.py).
2. A row whose faulty layer output equals the golden one bit for bit has the golden logits: it is
   masked without running further.
3. Downstream of the faulty layer every weight is golden, so the remaining rows of many faults
   share downstream batches, each row in the position and batch size it had in the golden run
   (fast_pack.py).
4. A fault that leaves the stored word unchanged (stuck-at on a bit already at that value) is
   masked on every image without running anything.
The faulty word is written into the twin exactly as the reference does, and the layer reads it
from its variable, so the faulty layer runs the same compiled operation in both engines.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from faultzoo.backends.golden import GoldenRun
from faultzoo.backends.classify import Classified, classify
from faultzoo.exceptions import ExactnessError
from faultzoo.faults import Fault
from faultzoo.backends.keras.fast_checks import end_to_end, layer_mode
from faultzoo.backends.keras.fast_pack import Pending, Sink, rows_equal
from faultzoo.backends.keras.graph import LayerCut, TwinGraph, twin_graph
from faultzoo.backends.keras.numerics import BatchCheck, check_batch_dependence, exact_numerics, keras_numerics
from faultzoo.backends.keras.reference import KerasReferenceEngine

__all__ = ["KerasFastEngine"]

_logger = logging.getLogger(__name__)


class KerasFastEngine:
    """Exact fault evaluation from the faulty layer down.

    Args:
        model, x, golden, batch_size, params, twin: as for :class:`KerasReferenceEngine`.
        memory_budget: bytes of golden activations (and pending faulty rows) to hold at once; the
            images are processed in chunks of golden batches that fit. When every image fits, the
            cached activations are kept between calls of :meth:`run`.
    """

    name = "keras-fast"

    def __init__(self, model: nn.Module, x, golden: GoldenRun, *, batch_size: int, params: Sequence[str] = (),
                 twin=None, memory_budget: int = 1 << 30):
        self.reference = KerasReferenceEngine(model, x, golden, batch_size=batch_size, twin=twin)
        self.twin, self.x, self.batches = self.reference.twin, self.reference.x, self.reference.batches
        self.golden = golden
        self.batch_size = batch_size
        self.memory_budget = int(memory_budget)
        self.golden_logits = golden.logits.numpy()
        self.golden_top1 = golden.top1_numpy()
        self.golden_nonfinite = (~torch.isfinite(golden.logits).all(dim=1)).numpy()
        self.graph: TwinGraph | None = None
        self.batch_check: BatchCheck | None = None
        self.fallback: str | None = None  # why every fault runs the reference way
        self.modes: dict[str, str] = {}  # Keras layer -> "slots" | "aligned" | "reference: why"
        self.stats = {"faults": 0, "rows": 0, "rows_dropped": 0, "downstream_batches": 0}
        self._kept: dict[int, np.ndarray] = {}  # golden cut values over all images, when they fit
        self._end_to_end_checked = False
        self._started = False

    # ---------------------------------------------------------------- start-up
    def start(self) -> None:
        """Check that the golden run is reproduced here, and how a row's logits depend on its batch."""
        if self._started:
            return
        self.reference.start()
        self.graph = twin_graph(self.twin)
        with exact_numerics():
            self.batch_check = check_batch_dependence(self.reference.forward, self.x, self.golden_logits, self.batches)
        self._started = True

    def export_state(self, *, threads: int = 1) -> None:
        return None  # each worker caches its own golden activations

    # ---------------------------------------------------------------- public
    def cost(self, fault: Fault) -> float:
        """Share of the twin's multiply-accumulates recomputed per image (1.0 for a reference-way fault)."""
        self.start()
        if self.fallback:
            return 1.0
        target = self.reference.targets.target(fault)
        cut = self.graph.cut(target.layer)
        if isinstance(cut, str) or self.modes.get(target.layer, "").startswith("reference"):
            return 1.0
        return 0.02 + cut.macs / max(1, self.graph.total_macs)

    def describe(self) -> dict:
        return {"engine": self.name, "batch_size": self.batch_size, "memory_budget": self.memory_budget,
                "numerics": keras_numerics(), "fallback": self.fallback,
                "batch_check": self.batch_check.to_dict() if self.batch_check else None,
                "layers": dict(sorted(self.modes.items())), "stats": dict(self.stats)}

    def run(self, faults: Sequence[tuple[int, Fault]]) -> dict[int, Classified]:
        self.start()
        if self.fallback:
            return self.reference.run(faults)
        n = len(self.x)
        sinks = {pos: Sink.empty(n) for pos in range(len(faults))}
        with exact_numerics():
            groups, slow = self._plan(faults, sinks)
            if slow:
                for pos, classified in self.reference.run([(pos, faults[pos][1]) for pos in slow]).items():
                    sinks[pos].put(np.arange(n), classified)
            if groups:
                for chunk in self._chunks(groups):
                    values = self._golden_values(groups, chunk)
                    for layer, positions in groups.items():
                        self._run_layer(self.graph.cut(layer), faults, positions, values, chunk, sinks)
        self.stats["faults"] += len(faults)
        return {fid: sinks[pos].result(str(fault)) for pos, (fid, fault) in enumerate(faults)}

    # ---------------------------------------------------------------- planning
    def _plan(self, faults, sinks) -> tuple[dict[str, list[int]], list[int]]:
        """Faults by fast layer; faults run the reference way; no-op faults decided at once."""
        groups: dict[str, list[int]] = {}
        slow: list[int] = []
        for pos, (_, fault) in enumerate(faults):
            target, word = self.reference.locate(fault)
            if word == self.reference.writer.golden_word(target):
                sinks[pos].masked(np.arange(len(self.x)), self.golden_nonfinite, self.golden_top1)
                continue
            groups.setdefault(target.layer, []).append(pos)
        new = [layer for layer in groups if layer not in self.modes]
        if new:
            self._decide_modes(new, {layer: faults[groups[layer][0]][1] for layer in new})
        for layer in list(groups):
            if self.fallback or self.modes[layer].startswith("reference"):
                slow.extend(groups.pop(layer))
        return groups, slow

    def _decide_modes(self, layers: list[str], first_fault: dict[str, Fault]) -> None:
        cuts = {}
        for layer in layers:
            cut = self.graph.cut(layer)
            if isinstance(cut, str):
                self.modes[layer] = f"reference: {cut}"
            else:
                cuts[layer] = cut
        if not cuts or self.fallback:
            for layer in cuts:
                self.modes[layer] = f"reference: {self.fallback}"
            return
        batch = self.batches[0]
        try:
            values = self._probe(list(cuts.values()), batch)
        except ExactnessError as exc:
            self.fallback = str(exc)
            _logger.warning("the fast Keras engine runs every fault the reference way: %s", exc)
            return self._decide_modes(layers, first_fault)
        golden = self.golden_logits[batch]
        for layer, cut in cuts.items():
            mode = layer_mode(self.graph, cut, values, golden, self.batch_check.mode)
            if not mode.startswith("reference") and not self._end_to_end_checked:
                self._end_to_end_checked = True
                if not end_to_end(self.graph, cut, values, self.reference, first_fault[layer], batch):
                    self.fallback = (f"the fast path's logits differ from the whole twin's for {first_fault[layer]} "
                                     "on the first golden batch")
                    _logger.warning("the fast Keras engine runs every fault the reference way: %s", self.fallback)
                    for other in cuts:
                        self.modes[other] = f"reference: {self.fallback}"
                    return
            self.modes[layer] = mode
            if mode.startswith("reference"):
                _logger.info("Keras layer %s runs the reference way: %s", layer, mode)

    # ---------------------------------------------------------------- golden values
    def _tensors(self, cuts) -> list:
        seen, out = set(), []
        for cut in cuts:
            for t in cut.cached:
                if id(t) not in seen:
                    seen.add(id(t))
                    out.append(t)
        return out

    def _probe(self, cuts: list[LayerCut], batch: slice) -> dict[int, np.ndarray]:
        """Golden values of the cuts' tensors on one golden batch, from a walk of the whole graph whose
        logits must equal the golden ones bit for bit (else the cached values would not be the twin's).

        Raises:
            ExactnessError: the walk does not reproduce the golden logits.
        """
        tensors = self._tensors(cuts)
        logits, *results = self.graph.probe(tensors)(self.x[batch])
        if not rows_equal(logits.numpy(), self.golden_logits[batch]).all():
            raise ExactnessError(f"walking the twin's graph layer by layer does not reproduce the golden logits of "
                                 f"images {batch.start}..{batch.stop - 1}")
        return {id(t): v.numpy() for t, v in zip(tensors, results)}

    @staticmethod
    def _row_bytes(tensors) -> int:
        return sum(4 * int(np.prod([d for d in t.shape[1:]])) for t in tensors)

    def _chunks(self, groups) -> list[list[int]]:
        """Consecutive golden batches whose cached values fit the memory budget (half of it)."""
        per_image = self._row_bytes(self._tensors([self.graph.cut(layer) for layer in groups]))
        limit = max(1, (self.memory_budget // 2) // max(1, per_image))
        chunks, current, size = [], [], 0
        for b, sl in enumerate(self.batches):
            rows = sl.stop - sl.start
            if current and size + rows > limit:
                chunks.append(current)
                current, size = [], 0
            current.append(b)
            size += rows
        chunks.append(current)
        return chunks

    def _golden_values(self, groups, chunk: list[int]) -> dict[int, np.ndarray]:
        """Golden values of the cached tensors of ``groups``' layers on the chunk's images (one array each)."""
        cuts = [self.graph.cut(layer) for layer in groups]
        wanted = self._tensors(cuts)
        whole = len(chunk) == len(self.batches)
        if whole and all(id(t) in self._kept for t in wanted):
            return self._kept
        offset = self.batches[chunk[0]].start
        images = self.batches[chunk[-1]].stop - offset
        values = {id(t): np.empty((images, *t.shape[1:]), np.float32) for t in wanted}
        for b in chunk:
            sl = self.batches[b]
            for key, value in self._probe(cuts, sl).items():
                values[key][sl.start - offset:sl.stop - offset] = value
        if whole:
            if self._row_bytes(wanted) * len(self.x) <= self.memory_budget // 2:
                self._kept = {**self._kept, **values}
            else:
                self._kept = {}
        return values

    # ---------------------------------------------------------------- one layer, one chunk
    def _run_layer(self, cut: LayerCut, faults, positions: list[int], values, chunk: list[int],
                   sinks: dict[int, Sink]) -> None:
        mode = self.modes[cut.layer]
        layer_fn = self.graph.layer_fn(cut)
        down = self.graph.down_fn(cut)
        offset = self.batches[chunk[0]].start
        inputs = [values[id(t)] for t in cut.inputs]
        golden_out = values[id(cut.output)]
        frontier = [values[id(t)] for t in cut.frontier]
        row_bytes = self._row_bytes([cut.output])
        chunk_images = self.batches[chunk[-1]].stop - offset
        per_group = max(1, (self.memory_budget // 2) // max(1, row_bytes * chunk_images))
        for start in range(0, len(positions), per_group):
            pending = Pending()
            aligned: list[tuple[int, slice, np.ndarray]] = []
            for pos in positions[start:start + per_group]:
                target, word = self.reference.locate(faults[pos][1])
                with self.reference.writer.injected(target, word):
                    for b in chunk:
                        sl = self.batches[b]
                        local = slice(sl.start - offset, sl.stop - offset)
                        out = layer_fn(*(a[local] for a in inputs))
                        changed = ~rows_equal(out, golden_out[local])
                        self.stats["rows"] += len(out)
                        self.stats["rows_dropped"] += int((~changed).sum())
                        sinks[pos].masked(sl.start + np.flatnonzero(~changed), self.golden_nonfinite,
                                          self.golden_top1)
                        if not changed.any():
                            continue
                        if mode == "aligned":
                            aligned.append((pos, local, out))
                        else:
                            slots = np.flatnonzero(changed)
                            pending.add(len(out), pos, sl.start + slots, slots, out[slots])
            for pos, local, out in aligned:
                logits = torch.from_numpy(down(out, *(f[local] for f in frontier)))
                images = np.arange(local.start, local.stop) + offset
                sinks[pos].put(images, classify(self.golden.logits[offset + local.start:offset + local.stop], logits))
                self.stats["downstream_batches"] += 1
            if pending:
                fillers = self._fillers(chunk, offset, golden_out, frontier)
                self.stats["downstream_batches"] += pending.drain(
                    down, self.golden.logits, fillers, lambda images: [f[images - offset] for f in frontier], sinks)

    def _fillers(self, chunk, offset, golden_out, frontier) -> dict[int, tuple[np.ndarray, list[np.ndarray]]]:
        """Per batch size in the chunk: the golden rows of one golden batch of that size."""
        out = {}
        for b in chunk:
            sl = self.batches[b]
            size = sl.stop - sl.start
            if size not in out:
                local = slice(sl.start - offset, sl.stop - offset)
                out[size] = (golden_out[local], [f[local] for f in frontier])
        return out
