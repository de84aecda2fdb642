"""Fast engine, part 1: the golden maps, the fault-free activations that faulty layers start from.

The selection is cut into chunks of whole golden batches (so that a batch-aligned recomputation
sees the very batches the golden run used) small enough for the memory budget; the maps of one
chunk at a time are cached. A campaign's worker processes share one copy: the parent fills the
maps straight into shared memory (on several Python threads while the workers' cores are idle) and
each worker adopts them only after recomputing the first batch itself and finding the same bits.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.fx as fx

from faultzoo import _sharedmem as sharedmem
from faultzoo.backends.torch.graph import GraphPlan, LayerProgram
from faultzoo.backends.golden import GoldenRun
from faultzoo.faults.bits import same_bits
from faultzoo.inference import batch_slices

__all__ = ["LOGITS", "GoldenMaps"]

_logger = logging.getLogger(__name__)

LOGITS = "__logits__"  # key of the chunk's logits among its maps

Maps = dict  # fx.Node (or LOGITS) -> value


class GoldenMaps:
    """Golden values of the nodes in ``keep`` for one chunk of the selection at a time."""

    def __init__(self, plan: GraphPlan, x: torch.Tensor, golden: GoldenRun, keep: set[fx.Node], *, batch_size: int,
                 chunk_images: int | None = None, memory_budget: int = 2 << 30):
        self.plan = plan
        self.x = x
        self.golden = golden
        self.keep = keep
        self.batch_size = batch_size
        # Set by a parent preparing maps for its worker processes: fill them on this many Python
        # threads (each op on one intra-op thread, so the bits are those of a one-thread run), in
        # shared memory.
        self.threads = 1
        self.shared = False
        batches = batch_slices(len(x), batch_size)
        size = self._chunk_size(chunk_images, memory_budget)
        per_chunk = len(batches) if size >= len(x) else max(1, size // batch_size)
        groups = [batches[i: i + per_chunk] for i in range(0, len(batches), per_chunk)]
        self.chunks = [slice(g[0].start, g[-1].stop) for g in groups]
        self.chunk_batches = [[slice(b.start - g[0].start, b.stop - g[0].start) for b in g] for g in groups]
        self._cache: tuple[int, Maps] | None = None
        self._outputs: dict[fx.Node, torch.Tensor] = {}  # golden outputs of faulty layers, current chunk

    def _chunk_size(self, chunk_images: int | None, budget: int) -> int:
        if chunk_images:
            return max(self.batch_size, chunk_images)
        probe = self.x[: min(len(self.x), 2)]
        _, kept = self.plan.run_golden(probe, self.keep)
        per_image = sum(v.numel() * v.element_size() for n, v in kept.items()
                        if n in self.plan.batched) / max(1, len(probe))
        return max(2, min(len(self.x), int(budget // max(per_image, 1))))

    @property
    def geometry(self) -> list[tuple[int, int]]:
        return [(c.start, c.stop) for c in self.chunks]

    def chunk(self, index: int) -> tuple[torch.Tensor, Maps]:
        """Logits and maps of one chunk (computed unless cached with every node of ``keep``)."""
        if self._cache is not None and self._cache[0] == index and self.keep <= self._cache[1].keys():
            return self._cache[1][LOGITS], self._cache[1]
        self._cache = None  # free the previous chunk's maps first
        merged = self._compute(index)
        self._cache = (index, merged)
        self._outputs = {}
        return merged[LOGITS], merged

    def _compute(self, index: int) -> Maps:
        sl = self.chunks[index]
        x, n = self.x[sl], sl.stop - sl.start
        merged: Maps = {}
        batches = self.chunk_batches[index]
        # Node times for the task planner's cost model; the first batch pays one-off set-up costs.
        timings: list[tuple[int, dict[fx.Node, float]]] = []

        def run(k: int) -> None:
            b = batches[k]
            seconds: dict[fx.Node, float] | None = {} if k > 0 or len(batches) == 1 else None
            with torch.no_grad():
                logits, kept = self.plan.run_golden(x[b], self.keep, seconds)
            rows = {node: value for node, value in kept.items() if node in self.plan.batched}
            rows[LOGITS] = logits
            if not merged:  # one buffer per node: no second copy through torch.cat
                # Too big for shared memory: private buffers (export then leaves them to each worker).
                self.shared = self.shared and sharedmem.fits_in_shared_memory(
                    sum(n * value[0].nbytes for value in rows.values()))
                merged.update(kept)  # values without a row per image, as computed
                merged.update({node: self._buffer((n, *value.shape[1:]), value.dtype) for node, value in rows.items()})
            for node, value in rows.items():
                merged[node][b] = value
            if seconds is not None:
                timings.append((b.stop - b.start, seconds))

        run(0)  # allocates the buffers
        if self.threads > 1 and len(batches) > 2:
            with ThreadPoolExecutor(self.threads) as pool:
                list(pool.map(run, range(1, len(batches))))
        else:
            for k in range(1, len(batches)):
                run(k)
        if self.plan.node_seconds is None:
            seconds = {node: sum(t.get(node, 0.0) for _, t in timings) for node in self.plan.nodes}
            self.plan.record_seconds(seconds, sum(count for count, _ in timings))
        return merged

    def _buffer(self, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
        if self.shared and self.x.device.type == "cpu":
            # Filled in place in shared memory: no second copy when the maps are handed to the workers.
            return sharedmem.shared_empty(shape, dtype)
        return torch.empty(shape, dtype=dtype, device=self.x.device)

    def time_nodes(self) -> None:
        """Time each node on one golden batch (the task planner's cost model) without filling any map."""
        if self.plan.node_seconds is not None:
            return
        batches = batch_slices(len(self.x), self.batch_size)
        seconds: dict[fx.Node, float] = {}
        with torch.no_grad():
            if len(batches) > 1:
                self.plan.run_golden(self.x[batches[0]], set())  # one-off set-up costs, untimed
            timed = batches[1] if len(batches) > 1 else batches[0]
            self.plan.run_golden(self.x[timed], set(), seconds)
        self.plan.record_seconds(seconds, timed.stop - timed.start)

    def output_of(self, program: LayerProgram, kept: Maps) -> torch.Tensor:
        """The faulty layer's golden output on the cached chunk, recomputed rather than cached (it is
        cheap next to the faults' work, and caching every layer's output would double the memory):
        same module, same input rows, same batches as the golden run, hence the same bits."""
        if program.node not in self._outputs:
            index = self._cache[0]
            with torch.no_grad():
                parts = [program.compute({a: kept[a][b] for a in program.inputs}) for b in self.chunk_batches[index]]
            self._outputs[program.node] = torch.cat(parts)
        return self._outputs[program.node]

    # ---------------------------------------------------------------- sharing with twin engines
    def export(self) -> dict | None:
        """The maps of a single-chunk selection, keyed by node name, moved to shared memory so that
        every worker reads one copy; None when there are several chunks or shared memory is short."""
        if len(self.chunks) != 1:
            return None
        _, kept = self.chunk(0)
        unshared = sum(v.nbytes for v in kept.values() if isinstance(v, torch.Tensor) and not v.is_shared())
        if not sharedmem.fits_in_shared_memory(unshared):
            free = sharedmem.shared_memory_free() or 0
            _logger.warning("golden maps (%d MB) do not fit in shared memory (%d MB free in /dev/shm): every "
                            "worker computes its own", unshared >> 20, free >> 20)
            return None  # slower to start, but no crash
        return {key if isinstance(key, str) else key.name: value.share_memory_() if isinstance(value, torch.Tensor)
                else value for key, value in kept.items()}

    def adopt(self, exported: dict) -> bool:
        """Use maps exported by a twin, if they hold every node needed and this process reproduces them."""
        by_name = {node.name: node for node in self.plan.nodes}
        cache = {key if key == LOGITS else by_name[key]: value for key, value in exported.items()}
        if not (self.keep <= cache.keys() and self._reproduces(cache)):
            return False
        self._cache = (0, cache)
        self._outputs = {}
        return True

    def _reproduces(self, cache: Maps) -> bool:
        """The shared maps were computed in another process (maybe with other thread counts):
        recompute the first golden batch here and require the same bits."""
        first = self.chunk_batches[0][0]
        with torch.no_grad():
            logits, kept = self.plan.run_golden(self.x[first], self.keep)
        same = same_bits(logits, self.golden.logits[first])
        for node, value in kept.items():
            if same and node in self.plan.batched:
                same = same_bits(value, cache[node][first])
        if not same:
            _logger.info("golden maps from the parent process differ from this process's: recomputing")
        return same
