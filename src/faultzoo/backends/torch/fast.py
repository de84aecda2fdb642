"""The fast engine: same outcome as the reference for every (fault, image), with far less arithmetic.

Levers, each exact on its own terms and each verified on the campaign's own model and data (a failed
check falls back to a slower way that does not need it):
1. A weight fault changes nothing upstream of its layer: the layer's golden input is cached and only
   the layer and what depends on it is recomputed (torch.fx graph, graph.py; golden maps, fast_golden.py).
2. A fault in a conv/linear weight changes one output channel: only that channel is computed, for
   many faults at once, and spliced into the golden output (fast_layer.py).
3. An image whose faulty activations equal the golden ones where they are the only faulty values
   still needed is masked: it is dropped there and never computed further (fast_downstream.py).
4. Downstream of the faulty layer every weight is golden, so the surviving (fault, image) rows of
   many faults are packed into full batches (fast_downstream.py).
5. A fault that leaves the stored word unchanged (stuck-at on a bit already at that value) is
   masked on every image without running anything.
Exactness rests on facts about the numerics of the torch build (a row's result does not depend on
the other rows of a batch of two or more, nor, at the batch sizes used, on the size of the batch; a
conv over a subset of output channels equals those channels of the full conv; the traced graph
equals the eager model): fast_checks.py and Downstream.check_sizes verify each before it is relied
on, and record what they found. A model torch.fx cannot trace runs the reference way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from faultzoo.backends.engines import memory_budget, register_engine
from faultzoo.backends.torch.fast_checks import Checks
from faultzoo.backends.torch.fast_downstream import LADDER, Downstream, Sink
from faultzoo.backends.torch.fast_golden import GoldenMaps
from faultzoo.backends.torch.fast_layer import FaultyLayer
from faultzoo.backends.torch.graph import GraphPlan, LayerProgram, prepare_graph
from faultzoo.backends.torch.reference import ReferenceEngine
from faultzoo.backends.golden import GoldenRun
from faultzoo.backends.classify import Classified
from faultzoo.faults import Fault, is_noop

__all__ = ["FastEngine"]

_logger = logging.getLogger(__name__)


def _default_options(workers: int) -> dict:
    """Golden maps may use a quarter of the machine's memory, split between the workers that share it
    (each caches its own chunk when the selection does not fit in one), and at least 1 GiB."""
    return memory_budget(workers, share=4, floor=1 << 30)


@register_engine("torch", "fast", "recomputes only what a fault can change; outcomes identical to the reference",
                 default_options=_default_options)
class FastEngine:
    """Exact fault evaluation from the faulty layer down. Options: ``chunk_images`` (images per cached
    chunk of golden maps; default from ``memory_budget`` bytes), ``pack_rows`` (rows per downstream
    pass), ``prepared`` (the export_state() of a twin engine, adopted where this process reproduces it)."""

    name = "fast"

    def __init__(self, model: nn.Module, x: torch.Tensor, golden: GoldenRun, *, batch_size: int,
                 params: Sequence[str] = (), chunk_images: int | None = None, memory_budget: int = 2 << 30,
                 pack_rows: int | None = None, prepared: dict | None = None):
        self.model = model.eval()
        self.x = x
        self.golden = golden
        self.batch_size = batch_size
        self.reference = ReferenceEngine(model, x, golden, batch_size=batch_size)
        self.programs: dict[str, LayerProgram] = {}
        self.checks = Checks()
        self._prepared = prepared
        self._started = False
        self.adopted = False  # golden maps and start-up checks taken from a twin (the driver's engine)
        self.plan = self._plan(model, x)
        if self.plan is None:  # every fault runs the reference way (checks.fallback says why)
            self.maps = self.downstream = self.layer = None
            return
        for param in dict.fromkeys(params):
            self._add_program(param)
        self.maps = GoldenMaps(self.plan, x, golden, self._keep(), batch_size=batch_size, chunk_images=chunk_images,
                               memory_budget=memory_budget)
        self.downstream = Downstream(self.plan, golden, pack_rows=pack_rows)
        self.layer = FaultyLayer(self.maps, self.downstream, self.checks.layers, batch_size=batch_size)

    def _plan(self, model: nn.Module, x: torch.Tensor) -> GraphPlan | None:
        """The traced graph and its analysis; None when the model cannot be traced or its graph cannot be
        run from cached values (the campaign then runs the reference way, and says why)."""
        try:
            gm = prepare_graph(model)
        except Exception as exc:  # torch.fx raises many kinds (TraceError, TypeError, NotImplementedError...)
            self._fall_back(f"torch.fx cannot trace the model: {_first_line(exc)}")
            return None
        try:
            return GraphPlan(gm, x[: min(len(x), 3)])
        except Exception as exc:
            self._fall_back(f"the traced graph cannot be run in parts: {_first_line(exc)}")
            return None

    def _fall_back(self, why: str) -> None:
        self.checks.fallback = why
        _logger.warning("fast engine falls back to the reference engine: %s", why)

    # ---------------------------------------------------------------- start-up
    @torch.no_grad()  # as the golden run and the reference: some torch.nn modules take another path with grad
    def start(self) -> None:
        """Whole-model checks and the first chunk's golden maps (adopted from a twin when it shared them)."""
        if self._started:
            return
        self._started = True
        if self.plan is None:
            return
        self.adopted = self._prepared is not None and self._adopt(self._prepared)
        if not self.adopted:
            self.checks.verify_model(self.maps)
        self._prepared = None

    def export_state(self, *, threads: int = 1) -> dict | None:
        if self.plan is None:
            return None  # nothing to share: a twin fails to trace the model too, and runs the reference way
        if not self._started:  # fill the maps on threads, straight into shared memory
            self.maps.threads, self.maps.shared = max(1, threads), True
        self.start()
        return {"chunks": self.maps.geometry, "checks": self.checks.export(),
                "golden": None if self.checks.fallback else self.maps.export()}

    def _adopt(self, state: dict) -> bool:
        if state["chunks"] != self.maps.geometry:
            return False  # another memory budget: check everything here
        if state["golden"] is not None and not self.maps.adopt(state["golden"]):
            return False  # this process computes other bits (or other maps): check everything here
        self.checks.adopt(state["checks"])
        return True

    @torch.no_grad()
    def verify_layers(self, faults: Sequence[Fault]) -> None:
        """Run the per-layer checks for these faults' layers now, instead of on first use."""
        self.start()
        if self.checks.fallback:
            return
        for fault in faults:
            self._add_program(fault.param)
        self.maps.keep = self._keep()
        _, kept = self.maps.chunk(0)
        self._check_sizes({fault.param: len(self.x) for fault in faults})
        for fault in faults:
            program = self.programs.get(fault.param)
            if program is not None:
                self.checks.verify_layer(program, fault.param, fault, kept, self.maps, self.downstream)

    def _check_sizes(self, rows: dict[str, int]) -> None:
        """Check the batch sizes the rows of these layers (up to ``rows[param]`` of them) may be packed into."""
        if not self.checks.aligned:
            self.downstream.check_sizes(self.x, [(self.programs[p], n) for p, n in rows.items() if p in self.programs
                                                 and not self.checks.layers.get(p, "").startswith("reference")])

    def _add_program(self, param: str) -> LayerProgram | None:
        if param not in self.programs:
            program = self.plan.program_for(param)
            if program is None:
                self.checks.layers[param] = f"reference: {self.plan.refusals[param]}"
                return None
            self.programs[param] = program
        return self.programs[param]

    def _keep(self) -> set:
        return self.plan.golden_nodes(self.programs.values())

    # ---------------------------------------------------------------- public
    def cost(self, fault: Fault) -> float:
        """Estimated work of one fault on one image (seconds timed in a golden pass, see
        GraphPlan.node_cost), for balancing tasks."""
        if self.plan is None:
            return 1.0  # a whole forward pass, as the reference engine
        self.maps.time_nodes()
        program = self._add_program(fault.param)
        # Plus a floor for the per-fault work that does not scale with the graph (stacking, checks).
        work = self.plan.program_cost(program) if program is not None else self.plan.forward_cost
        return work + 0.01 * self.plan.forward_cost

    def describe(self) -> dict:
        if self.plan is None:
            return {"engine": self.name, "batch_size": self.batch_size, "pack_rows": None, "chunk_images": None,
                    "fallback": self.checks.fallback, "batch_aligned": False, "checks": self.checks.to_dict()}
        return {"engine": self.name, "batch_size": self.batch_size,
                "pack_rows": self.downstream.pack_rows or {p: self.downstream.pack_size(prog)
                                                           for p, prog in sorted(self.programs.items())},
                "chunk_images": self.maps.chunks[0].stop - self.maps.chunks[0].start,
                "golden_maps": "adopted" if self.adopted else "computed",
                "fallback": self.checks.fallback, "batch_aligned": self.checks.aligned,
                "checks": {**self.checks.to_dict(), "batch_sizes": self._batch_sizes()}}

    def _batch_sizes(self) -> dict[str, dict[str, list[int]]]:
        """Per layer, the batch sizes checked for its downstream graph: those that compute as the golden
        batches (rows are packed only into these when some other one does not) and those that do not."""
        out: dict[str, dict[str, list[int]]] = {}
        for param, program in sorted(self.programs.items()):
            checked = [size for size in LADDER if self.downstream.checked(program, size)]
            if checked:
                out[param] = {"same": [size for size in checked if self.downstream.same(program, size)],
                              "differ": [size for size in checked if not self.downstream.same(program, size)]}
        return out

    @torch.no_grad()
    def run(self, faults: Sequence[tuple[int, Fault]]) -> dict[int, Classified]:
        self.start()
        if self.checks.fallback:
            return self.reference.run(faults)
        n = len(self.x)
        sinks = {pos: Sink.empty(n) for pos in range(len(faults))}
        by_param: dict[str, list[int]] = {}
        slow: list[int] = []
        for pos, (_, fault) in enumerate(faults):
            if is_noop(self.model, fault):
                sinks[pos] = self._all_masked(n)
            elif self._add_program(fault.param) is None:
                slow.append(pos)
            else:
                by_param.setdefault(fault.param, []).append(pos)
        self.maps.keep = self._keep()
        for index, sl in enumerate(self.maps.chunks):
            kept = self.maps.chunk(index)[1] if by_param else None
            self._check_sizes({param: (sl.stop - sl.start) * len(positions) for param, positions in by_param.items()})
            for param, positions in by_param.items():
                self._run_layer(param, faults, positions, kept, index, sinks)
            if slow:
                self._reference_chunk(faults, slow, sl, sinks)
        return {fid: self._classified(sinks[pos], fault) for pos, (fid, fault) in enumerate(faults)}

    # ---------------------------------------------------------------- per layer and chunk
    def _run_layer(self, param: str, faults, positions: list[int], kept: dict, index: int,
                   sinks: dict[int, Sink]) -> None:
        program = self.programs[param]
        mode = self.checks.verify_layer(program, param, faults[positions[0]][1], kept, self.maps, self.downstream)
        offset = self.maps.chunks[index].start
        if not mode.startswith(("reference", "aligned")):
            rows = (self.maps.chunks[index].stop - offset) * len(positions)
            if self.downstream.prepare(program, rows) is None:  # the batch sizes its rows may be packed into
                mode = self.checks.layers[param] = ("aligned: no batch size up to the pack size computes the graph "
                                                    "after this layer as the golden batches do")
                _logger.info("%s: %s", param, mode)
        if mode.startswith("reference"):
            self._reference_chunk(faults, positions, self.maps.chunks[index], sinks)
        elif mode.startswith("aligned"):
            self.layer.aligned(program, faults, positions, kept, index, sinks)
        elif mode == "stacked":
            self.layer.stacked(program, param, faults, positions, kept, offset, sinks)
        else:
            self.layer.module(program, faults, positions, kept, offset, sinks)

    def _reference_chunk(self, faults, positions: list[int], sl: slice, sinks: dict[int, Sink]) -> None:
        sub = self.reference.run_slice([(pos, faults[pos][1]) for pos in positions], sl)
        for pos, classified in sub.items():
            sinks[pos].codes[sl] = classified.codes
            sinks[pos].nonfinite[sl] = classified.nonfinite
            sinks[pos].top1[sl] = classified.top1

    def _all_masked(self, n: int) -> Sink:
        golden_nonfinite = (~torch.isfinite(self.golden.logits).all(dim=1)).cpu().numpy()
        return Sink(np.zeros(n, np.uint8), golden_nonfinite, self.golden.top1_numpy())

    @staticmethod
    def _classified(sink: Sink, fault: Fault) -> Classified:
        return sink.result(str(fault))  # raises ExactnessError if an image was left undecided


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
