"""The fast engine: same outcome as the reference for every (fault, image), with far less arithmetic.

Levers, each exact on its own terms and each verified at start-up (a failed check falls back):
1. A weight fault changes nothing upstream of its layer: the layer's golden input is cached
   and only the layer and what depends on it is recomputed (torch.fx graph, see graph.py).
2. A fault in a conv/linear weight changes one output channel: only that channel is computed,
   for many faults at once (their weight rows stacked into one small convolution), and spliced
   into the golden output.
3. An image whose faulty activations equal the golden ones at a point where they are the only
   faulty values still needed is masked: it is dropped there and never computed further.
4. Downstream of the faulty layer every weight is golden, so the surviving (fault, image) rows of
   many faults are packed into full batches.
5. A fault that leaves the stored word unchanged (stuck-at on a bit already at that value) is
   masked on every image without running anything.
Exactness rests on facts about the numerics of the torch build (a row's result does not depend
on the other rows of a batch of two or more; a conv over a subset of output channels equals
those channels of the full conv; the traced graph equals the eager model). Each is checked on
the campaign's own model and data before it is relied on; if one fails, the affected layer (or
the whole campaign) runs the reference way instead, and the reason is recorded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from faultzoo.campaign.engines.graph import GraphPlan, LayerProgram, prepare_graph, stacked_rows_output
from faultzoo.campaign.engines.reference import ReferenceEngine
from faultzoo.campaign.golden import GoldenRun
from faultzoo.campaign.outcome import Classified, Outcome, classify
from faultzoo.faults.bits import same_bits, same_bits_rows
from faultzoo.campaign import parallel
from faultzoo.exceptions import ExactnessError
from faultzoo.faults import Fault, corrupt, is_noop
from faultzoo.inference import batch_slices

_logger = logging.getLogger(__name__)

_UNSET = 255
_STACK_ELEMENTS = 8 << 20  # cap on (images x stacked channels x H x W) of one stacked conv
# Packed rows per downstream pass: per-image conv time grows once a batch's activation outgrows the
# caches (resnet20, 1 thread: 16x32x32 maps cost 640 us/image at 32 rows, 2,000 at 512), while tiny
# batches pay per-call overhead. ~2 MB per activation was best for all three resnet20 stages.
_PACK_BYTES = 2 << 20
_PACK_MIN, _PACK_MAX = 16, 512
# A masking check point is dropped once it has seen this many rows and masked under this share of them.
_CHECK_TRIAL_ROWS = 256
_CHECK_MIN_YIELD = 0.02


@dataclass
class _Sink:
    """Per-fault outcome arrays being filled in, indexed by image."""

    codes: np.ndarray
    nonfinite: np.ndarray
    top1: np.ndarray

    @classmethod
    def empty(cls, n: int) -> _Sink:
        return cls(np.full(n, _UNSET, np.uint8), np.zeros(n, bool), np.zeros(n, np.int64))


@dataclass
class _Rows:
    """A packed batch of (fault, image) rows flowing through the downstream graph."""

    images: torch.Tensor  # chunk-local image index per row
    owners: np.ndarray  # position of the fault (in the current call) per row
    padding: np.ndarray  # True for rows duplicated only to keep the batch at >= 2 rows

    def subset(self, keep: torch.Tensor) -> _Rows:
        k = keep.cpu()
        return _Rows(self.images[k], self.owners[k.numpy()], self.padding[k.numpy()])

    def __len__(self) -> int:
        return len(self.images)


@dataclass
class _Checks:
    """What was verified at start-up, and what failed (for provenance)."""

    graph_equals_eager: bool | None = None
    rows_independent: bool | None = None
    layers_fast: dict[str, str] = field(default_factory=dict)  # param -> "stacked" | "module" | "reference: why"

    def to_dict(self) -> dict:
        return {"graph_equals_eager": self.graph_equals_eager, "rows_independent": self.rows_independent,
                "layers": dict(sorted(self.layers_fast.items()))}


class FastEngine:
    name = "fast"

    def __init__(self, model: nn.Module, x: torch.Tensor, golden: GoldenRun, *, batch_size: int,
                 params: Sequence[str] = (), chunk_images: int | None = None,
                 memory_budget: int = 2 << 30, pack_rows: int | None = None, prepared: dict | None = None,
                 prep_threads: int = 1, share_golden: bool = False):
        self.model = model.eval()
        self.x = x
        self.golden = golden
        self.batch_size = batch_size
        # Rows per downstream pass: a fixed count (pack_rows), or by default as many as keep the
        # program's largest activation near _PACK_BYTES (see _pack_size).
        self.pack_rows = max(2, pack_rows) if pack_rows else None
        # A campaign's parent process prepares the engine for its workers while their cores are still
        # idle: it may run the golden batches on that many Python threads (each op on one intra-op
        # thread, so the bits are those of a one-thread run), into shared memory the workers map.
        self.prep_threads = max(1, prep_threads)
        self.share_golden = share_golden
        self.check_stats: dict[tuple[fx.Node, fx.Node], list[int]] = {}
        self.reference = ReferenceEngine(model, x, golden, batch_size=batch_size)
        self.checks = _Checks()
        self.fallback: str | None = None
        self.gm = prepare_graph(model)
        self.plan = GraphPlan(self.gm, x[: min(len(x), 3)])
        self.programs: dict[str, LayerProgram] = {}
        for param in dict.fromkeys(params):
            self._add_program(param)
        self.keep = self.plan.golden_nodes(self.programs.values())
        # Chunks are runs of whole golden batches, so that a batch-aligned recomputation sees the
        # very batches the golden run (and the reference engine) used.
        self.batches = batch_slices(len(x), batch_size)
        size = self._chunk_size(chunk_images, memory_budget)
        per_chunk = len(self.batches) if size >= len(x) else max(1, size // batch_size)
        groups = [self.batches[i: i + per_chunk] for i in range(0, len(self.batches), per_chunk)]
        self.chunks = [slice(g[0].start, g[-1].stop) for g in groups]
        self.chunk_batches = [[slice(b.start - g[0].start, b.stop - g[0].start) for b in g] for g in groups]
        self.aligned = False
        self._cache: tuple[int, dict[fx.Node, object]] | None = None
        self._outputs: dict[fx.Node, torch.Tensor] = {}  # golden outputs of faulty layers, current chunk
        self._verified_layers: set[str] = set()
        if prepared is None or not self._adopt(prepared):
            self._verify_whole_model()

    # ---------------------------------------------------------------- sharing with worker processes
    def prepared_state(self) -> dict:
        """What a twin engine (same model, images, golden run, parameters and options) in a worker
        process can reuse instead of redoing it: the whole-model checks and, when the selection is a
        single chunk, the golden maps, moved to shared memory so that all workers read one copy."""
        state = {"chunks": [(c.start, c.stop) for c in self.chunks], "aligned": self.aligned,
                 "fallback": self.fallback, "graph_equals_eager": self.checks.graph_equals_eager,
                 "rows_independent": self.checks.rows_independent, "golden": None}
        if len(self.chunks) == 1 and not self.fallback:
            _, kept = self._golden_chunk(0)
            unshared = sum(v.nbytes for v in kept.values() if isinstance(v, torch.Tensor) and not v.is_shared())
            if not parallel.fits_in_shared_memory(unshared):
                free = parallel.shared_memory_free() or 0
                _logger.warning("golden maps (%d MB) do not fit in shared memory (%d MB free in /dev/shm): every "
                                "worker computes its own", unshared >> 20, free >> 20)
                return state  # slower to start, but no crash
            state["golden"] = {key if isinstance(key, str) else key.name:
                               value.share_memory_() if isinstance(value, torch.Tensor) else value
                               for key, value in kept.items()}
        return state

    def _adopt(self, state: dict) -> bool:
        if state["chunks"] != [(c.start, c.stop) for c in self.chunks]:
            return False  # another memory budget: check everything here
        if state["golden"] is not None:
            by_name = {node.name: node for node in self.plan.nodes}
            cache = {key if key == "__logits__" else by_name[key]: value for key, value in state["golden"].items()}
            if not (self.keep <= cache.keys() and self._same_as_here(cache)):
                return False  # this process computes other bits (or other maps): check everything here
            self._cache = (0, cache)
        self.aligned, self.fallback = state["aligned"], state["fallback"]
        self.checks.graph_equals_eager = state["graph_equals_eager"]
        self.checks.rows_independent = state["rows_independent"]
        return True

    def _same_as_here(self, cache: dict) -> bool:
        """The shared golden maps were computed in another process (maybe with other thread counts):
        recompute the first golden batch here and require the same bits, or compute everything here."""
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

    # ---------------------------------------------------------------- set-up and checks
    def _add_program(self, param: str) -> LayerProgram | None:
        if param in self.programs:
            return self.programs[param]
        program = self.plan.program_for(param)
        if program is None:
            self.checks.layers_fast[param] = "reference: parameter not used by exactly one traced module call"
            return None
        self.programs[param] = program
        return program

    def _chunk_size(self, chunk_images: int | None, budget: int) -> int:
        if chunk_images:
            return max(self.batch_size, chunk_images)
        probe = self.x[: min(len(self.x), 2)]
        _, kept = self.plan.run_golden(probe, self.keep)
        per_image = sum(v.numel() * v.element_size() for n, v in kept.items()
                        if n in self.plan.batched) / max(1, len(probe))
        return max(2, min(len(self.x), int(budget // max(per_image, 1))))

    def _verify_whole_model(self) -> None:
        """Traced graph == eager model, and a row's logits do not depend on its batch."""
        sl = self.chunks[0]
        logits, _ = self._golden_chunk(0)
        self.checks.graph_equals_eager = same_bits(logits, self.golden.logits[sl])
        if not self.checks.graph_equals_eager:
            self.fallback = "the traced graph's logits differ from the eager model's"
        # Same rows, other batch boundaries and order: results must not change.
        n = min(len(self.x), 2 * self.batch_size + 3)
        if n >= 4:
            order = torch.arange(n, device=self.x.device).flip(0)
            shuffled = torch.cat([self.plan.run_golden(self.x[order[s]], set())[0]
                                  for s in batch_slices(n, max(2, n // 3))])
            self.checks.rows_independent = same_bits(shuffled, self.golden.logits[order])
            if not self.checks.rows_independent:
                # Packing rows of several faults, or dropping masked rows, would change the other
                # rows' bits. Keep the golden run's exact batches instead: recompute from the faulty
                # layer on, batch by batch, and skip a batch only when it is entirely unchanged.
                self.aligned = True
                _logger.info("rows depend on their batch here: the fast engine keeps the golden batches")
        if self.fallback:
            _logger.warning("fast engine falls back to the reference engine: %s", self.fallback)

    def _verify_once(self, program: LayerProgram, param: str, fault: Fault, kept: dict) -> None:
        if param not in self._verified_layers:
            self.checks.layers_fast[param] = self._verify_layer(program, param, fault, kept)
            self._verified_layers.add(param)

    def verify_layers(self, faults: Sequence[Fault]) -> None:
        """Run the per-layer start-up checks for these faults' layers now, instead of on first use."""
        if self.fallback:
            return
        _, kept = self._golden_chunk(0)
        for fault in faults:
            program = self._add_program(fault.param)
            if program is not None and all(node in kept for node in self.plan.golden_nodes([program])):
                self._verify_once(program, fault.param, fault, kept)

    def _verify_layer(self, program: LayerProgram, param: str, fault: Fault, kept: dict) -> str:
        """Decide how a layer's faults are computed, checking the facts each mode relies on."""
        golden_in, golden_out = kept[program.node.all_input_nodes[0]], self._golden_output(program, kept)
        mode = "stacked" if program.fast_kind in ("conv", "linear") and param.endswith(".weight") else "module"
        if self.aligned:
            mode = "aligned"
        first = self.chunk_batches[0][0]
        rows = torch.arange(first.start, first.stop) if self.aligned else torch.arange(min(4, len(golden_out)))
        if mode == "stacked":
            # (a) a few output channels computed alone, or stacked, equal those channels of the full
            # layer (on the first golden batch; every stacked conv of the campaign re-checks this on
            # all its images through a golden witness channel, see _run_stacked), and
            # (b) the full layer with the faulty weight changes only that weight's output channel.
            o = fault.index[0]
            channels = sorted({0, o, golden_out.shape[1] - 1})
            sample_in, sample_out = golden_in[first], golden_out[first]
            ok = all(same_bits(self._channel_outputs(program, sample_in, [(c, None)])[:, 0],
                                 sample_out[:, c]) for c in channels)
            weight = program.module.weight.detach()
            stacked = self._channel_outputs(program, sample_in, [(c, None) for c in channels])
            ok = ok and all(same_bits(stacked[:, k], sample_out[:, c]) for k, c in enumerate(channels))
            faulty_weight = weight.clone()
            faulty_weight[fault.index] = corrupt(weight[fault.index], fault.bits, fault.kind)
            full = torch.func.functional_call(program.module, {"weight": faulty_weight}, (golden_in[rows],))
            others = torch.ones(full.shape[1], dtype=torch.bool)
            others[o] = False
            ok = ok and same_bits(full[:, others], golden_out[rows][:, others])
            alone = self._channel_outputs(program, golden_in[rows], [(o, fault)])[:, 0]
            ok = ok and same_bits(full[:, o], alone)
            if not ok:
                mode = "module"
        # (c) re-running the downstream graph from the golden layer output reproduces the golden logits.
        sink = {0: _Sink.empty(len(golden_out))}
        self._downstream(program, golden_out[rows].clone(), _Rows(rows, np.zeros(len(rows), int),
                                                                  np.zeros(len(rows), bool)), kept, sink, 0,
                         skip_checks=True)
        if not (sink[0].codes[: len(rows)] == Outcome.MASKED).all():
            return "reference: re-running the graph from this layer does not reproduce the golden logits"
        return mode

    # ---------------------------------------------------------------- golden cache
    def _golden_chunk(self, index: int) -> tuple[torch.Tensor, dict[fx.Node, object]]:
        if self._cache is not None and self._cache[0] == index:
            return self._cache[1]["__logits__"], self._cache[1]
        sl = self.chunks[index]
        x = self.x[sl]
        n = sl.stop - sl.start
        merged: dict = {}
        batches = self.chunk_batches[index]
        # Node times for the task planner's cost model; the first batch pays one-off set-up costs.
        timings: list[tuple[int, dict[fx.Node, float]]] = []

        def run(k: int) -> None:
            b = batches[k]
            seconds: dict[fx.Node, float] | None = {} if k > 0 or len(batches) == 1 else None
            with torch.no_grad():
                logits, kept = self.plan.run_golden(x[b], self.keep, seconds)
            rows = {node: value for node, value in kept.items() if node in self.plan.batched}
            rows["__logits__"] = logits
            if not merged:  # one buffer per node: no second copy through torch.cat
                # Too big for shared memory: private buffers (prepared_state then leaves them to each worker).
                self.share_golden = self.share_golden and parallel.fits_in_shared_memory(
                    sum(n * value[0].nbytes for value in rows.values()))
                merged.update(kept)  # values without a row per image, as computed
                merged.update({node: self._buffer((n, *value.shape[1:]), value.dtype) for node, value in rows.items()})
            for node, value in rows.items():
                merged[node][b] = value
            if seconds is not None:
                timings.append((b.stop - b.start, seconds))

        run(0)  # allocates the buffers
        if self.prep_threads > 1 and len(batches) > 2:
            with ThreadPoolExecutor(self.prep_threads) as pool:
                list(pool.map(run, range(1, len(batches))))
        else:
            for k in range(1, len(batches)):
                run(k)
        seconds = {node: sum(t.get(node, 0.0) for _, t in timings) for node in self.plan.nodes}
        timed_images = sum(count for count, _ in timings)
        if self.plan.node_seconds is None:
            self.plan.record_seconds(seconds, timed_images)
        self._cache = (index, merged)
        self._outputs = {}
        return merged["__logits__"], merged

    def _buffer(self, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
        if self.share_golden and self.x.device.type == "cpu":
            # Filled in place in shared memory: no second copy when the maps are handed to the workers.
            return _shared_empty(shape, dtype)
        return torch.empty(shape, dtype=dtype, device=self.x.device)

    def _golden_output(self, program: LayerProgram, kept: dict) -> torch.Tensor:
        """The faulty layer's golden output on the cached chunk, recomputed rather than cached (it is
        cheap next to the faults' work, and caching every layer's output would double the memory):
        same module, same input rows, same batches as the golden run, hence the same bits."""
        if program.node not in self._outputs:
            index = self._cache[0]
            with torch.no_grad():
                parts = [self.plan.executor.run(program.node, {a: kept[a][b] for a in program.node.all_input_nodes})
                         for b in self.chunk_batches[index]]
            self._outputs[program.node] = torch.cat(parts)
        return self._outputs[program.node]

    # ---------------------------------------------------------------- public
    def _pack_size(self, program: LayerProgram) -> int:
        if self.pack_rows:
            return self.pack_rows
        rows = _PACK_BYTES // max(1, program.row_bytes)
        return int(min(_PACK_MAX, max(_PACK_MIN, rows)))

    def _check_useful(self, program: LayerProgram, step: fx.Node) -> bool:
        """Keep checking a point while it drops enough rows to pay for the comparison."""
        checked, masked = self.check_stats.get((program.node, step), (0, 0))
        return checked < _CHECK_TRIAL_ROWS or masked >= _CHECK_MIN_YIELD * checked

    def cost(self, fault: Fault) -> float:
        """Estimated work of one fault on one image (seconds timed in the golden pass, see
        GraphPlan.node_cost), for balancing tasks."""
        program = self._add_program(fault.param)
        # Plus a floor for the per-fault work that does not scale with the graph (stacking, checks).
        work = self.plan.program_cost(program) if program is not None else self.plan.forward_cost
        return work + 0.01 * self.plan.forward_cost

    def describe(self) -> dict:
        return {"engine": self.name, "batch_size": self.batch_size,
                "pack_rows": self.pack_rows or {p: self._pack_size(prog) for p, prog in sorted(self.programs.items())},
                "chunk_images": self.chunks[0].stop - self.chunks[0].start, "fallback": self.fallback,
                "batch_aligned": self.aligned,
                "checks": self.checks.to_dict()}

    def run(self, faults: Sequence[tuple[int, Fault]]) -> dict[int, Classified]:
        if self.fallback:
            return self.reference.run(faults)
        n = len(self.x)
        sinks = {pos: _Sink.empty(n) for pos in range(len(faults))}
        by_param: dict[str, list[int]] = {}
        slow: list[int] = []
        golden_top1 = self.golden.top1_numpy()
        golden_nonfinite = (~torch.isfinite(self.golden.logits).all(dim=1)).cpu().numpy()
        for pos, (_, fault) in enumerate(faults):
            if is_noop(self.model, fault):
                sinks[pos] = _Sink(np.zeros(n, np.uint8), golden_nonfinite.copy(), golden_top1.copy())
            elif self._add_program(fault.param) is None:
                slow.append(pos)
            else:
                by_param.setdefault(fault.param, []).append(pos)
        if by_param:
            self.keep = self.plan.golden_nodes(self.programs.values())
        for index, sl in enumerate(self.chunks):
            _, kept = self._golden_chunk(index) if by_param else (None, None)
            if by_param and any(node not in kept for node in self.keep):
                self._cache = None  # new layers since the cache was filled
                _, kept = self._golden_chunk(index)
            for param, positions in by_param.items():
                program = self.programs[param]
                self._verify_once(program, param, faults[positions[0]][1], kept)
                mode = self.checks.layers_fast[param]
                if mode.startswith("reference"):
                    self._reference_chunk(faults, positions, sl, sinks)
                elif mode == "aligned":
                    self._run_layer_aligned(program, faults, positions, kept, index, sinks)
                else:
                    self._run_layer(program, param, faults, positions, kept, sl.start, sinks)
            if slow:
                self._reference_chunk(faults, slow, sl, sinks)
        out: dict[int, Classified] = {}
        for pos, (fid, fault) in enumerate(faults):
            sink = sinks[pos]
            if (sink.codes == _UNSET).any():
                raise ExactnessError(f"fast engine left {(sink.codes == _UNSET).sum()} images of {fault} unclassified")
            out[fid] = Classified(sink.codes, sink.nonfinite, sink.top1)
        return out

    # ---------------------------------------------------------------- per layer
    def _reference_chunk(self, faults, positions, sl, sinks) -> None:
        sub = self.reference.run_slice([(pos, faults[pos][1]) for pos in positions], sl)
        for pos, classified in sub.items():
            sinks[pos].codes[sl] = classified.codes
            sinks[pos].nonfinite[sl] = classified.nonfinite
            sinks[pos].top1[sl] = classified.top1

    def _channel_outputs(self, program: LayerProgram, inp: torch.Tensor,
                         rows: list[tuple[int, Fault | None]]) -> torch.Tensor:
        """Output channels ``c`` of the layer, each computed with its weight row (faulty when a fault is given)."""
        module = program.module
        weight = module.weight.detach()
        bias = module.bias.detach() if module.bias is not None else None
        groups = getattr(module, "groups", 1)
        if groups == 1:
            w = weight[[c for c, _ in rows]].clone()
            for k, (_, fault) in enumerate(rows):
                if fault is not None:
                    w[k][fault.index[1:]] = corrupt(weight[fault.index], fault.bits, fault.kind)
            b = bias[[c for c, _ in rows]] if bias is not None else None
            return stacked_rows_output(module, program.fast_kind, inp, w, b)
        # Grouped conv (e.g. depthwise): each output channel reads only its group's input channels.
        per_group_out = weight.shape[0] // groups
        per_group_in = weight.shape[1]
        outs = []
        for c, fault in rows:
            g = c // per_group_out
            w = weight[c: c + 1].clone()
            if fault is not None:
                w[0][fault.index[1:]] = corrupt(weight[fault.index], fault.bits, fault.kind)
            b = bias[c: c + 1] if bias is not None else None
            outs.append(stacked_rows_output(module, "conv", inp[:, g * per_group_in:(g + 1) * per_group_in], w, b))
        return torch.cat(outs, dim=1)

    def _run_layer(self, program: LayerProgram, param: str, faults, positions: list[int], kept: dict,
                   offset: int, sinks: dict[int, _Sink]) -> None:
        golden_in, golden_out = kept[program.node.all_input_nodes[0]], self._golden_output(program, kept)
        if self.checks.layers_fast[param] != "stacked":
            self._run_module(program, faults, positions, golden_in, golden_out, kept, offset, sinks)
            return
        n = len(golden_out)
        per_channel = golden_out[0, 0].numel() * n
        stack = max(1, min(len(positions), _STACK_ELEMENTS // max(per_channel, 1)))
        for start in range(0, len(positions), stack):
            group = positions[start: start + stack]
            channel = torch.tensor([faults[p][1].index[0] for p in group])
            # The first row is a golden witness: the unfaulted weights of the first fault's channel.
            # Computed in the very same call as the faulty rows, it must equal the golden channel on
            # every image, or this layer's stacked convolutions are not trusted any more.
            witness = int(channel[0])
            with torch.no_grad():
                outs = self._channel_outputs(program, golden_in, [(witness, None)] + [
                    (faults[p][1].index[0], faults[p][1]) for p in group])
            if not same_bits(outs[:, 0], golden_out[:, witness]):
                self.checks.layers_fast[param] = "module: a stacked convolution's witness channel differed"
                _logger.warning("%s: %s", param, self.checks.layers_fast[param])
                self._run_module(program, faults, positions[start:], golden_in, golden_out, kept, offset, sinks)
                return
            outs = outs[:, 1:]
            survivors = []
            for k, pos in enumerate(group):
                equal = same_bits_rows(outs[:, k], golden_out[:, channel[k]])
                self._mark_masked(sinks[pos], offset, torch.nonzero(equal).flatten().cpu(), kept)
                rows = torch.nonzero(~equal).flatten().cpu()
                survivors.append((k, pos, rows))

            def build(k_idx: torch.Tensor, images: torch.Tensor, outs=outs, channel=channel) -> torch.Tensor:
                value = golden_out.index_select(0, images.to(golden_out.device))  # a copy: safe to edit
                value[torch.arange(len(images)), channel[k_idx]] = outs[images.to(outs.device), k_idx.to(outs.device)]
                return value

            self._pack(program, survivors, build, kept, offset, sinks)

    def _run_module(self, program: LayerProgram, faults, positions: list[int], golden_in: torch.Tensor,
                    golden_out: torch.Tensor, kept: dict, offset: int, sinks: dict[int, _Sink]) -> None:
        """Recompute the whole faulty module (any parameter kind), then the downstream graph."""
        n = len(golden_out)
        for pos, name, faulty in _faulty_parameters(program, faults, positions):
            with torch.no_grad():
                out = torch.cat([torch.func.functional_call(program.module, {name: faulty}, (golden_in[b],))
                                 for b in batch_slices(n, self.batch_size)])
            equal = same_bits_rows(out, golden_out)
            self._mark_masked(sinks[pos], offset, torch.nonzero(equal).flatten().cpu(), kept)
            rows = torch.nonzero(~equal).flatten().cpu()
            self._pack(program, [(0, pos, rows)], lambda k_idx, images, out=out: out.index_select(0, images.to(out.device)),
                       kept, offset, sinks)

    def _run_layer_aligned(self, program: LayerProgram, faults, positions: list[int], kept: dict, index: int,
                           sinks: dict[int, _Sink]) -> None:
        """Recompute from the faulty layer on, one golden batch at a time, rows untouched and in order."""
        golden_in, golden_out = kept[program.node.all_input_nodes[0]], self._golden_output(program, kept)
        offset = self.chunks[index].start
        for pos, name, faulty in _faulty_parameters(program, faults, positions):
            for b in self.chunk_batches[index]:
                images = torch.arange(b.start, b.stop)
                with torch.no_grad():
                    out = torch.func.functional_call(program.module, {name: faulty}, (golden_in[b],))
                    if same_bits(out, golden_out[b]):  # identical input to the rest: masked
                        self._mark_masked(sinks[pos], offset, images, kept)
                        continue
                    rows = _Rows(images, np.full(len(images), pos), np.zeros(len(images), bool))
                    self._downstream(program, out, rows, kept, sinks, offset, skip_checks=True)

    def _pack(self, program, survivors, build, kept, offset, sinks) -> None:
        """Stream the surviving (fault, image) rows of many faults through the downstream graph in full batches."""
        if not survivors:
            return
        k_all = torch.cat([torch.full((len(rows),), k, dtype=torch.long) for k, _, rows in survivors])
        img_all = torch.cat([rows for _, _, rows in survivors])
        pos_all = np.concatenate([np.full(len(rows), pos, dtype=np.int64) for _, pos, rows in survivors])
        pack = self._pack_size(program)
        for start in range(0, len(img_all), pack):
            stop = min(start + pack, len(img_all))
            if len(img_all) - stop == 1:  # never leave a lone row for the last batch
                stop += 1
            if start >= len(img_all):
                break
            k_idx, images = k_all[start:stop], img_all[start:stop]
            rows = _Rows(images, pos_all[start:stop], np.zeros(stop - start, bool))
            with torch.no_grad():
                self._downstream(program, build(k_idx, images), rows, kept, sinks, offset)
            if stop >= len(img_all):
                break

    def _downstream(self, program: LayerProgram, value: torch.Tensor, rows: _Rows, kept: dict,
                    sinks: dict[int, _Sink], offset: int, *, skip_checks: bool = False) -> None:
        """Run the graph after the faulty layer for a packed batch; classify the rows that reach the output."""
        if len(rows) == 0:
            return
        env: dict[fx.Node, object] = {program.node: value}
        value, rows = _at_least_two(value, rows)
        env[program.node] = value
        executor = self.plan.executor
        for step in program.steps:
            local = {a: self._golden_rows(a, kept, rows.images) for a in step.all_input_nodes if a not in env}
            env[step] = executor.run(step, {**env, **local} if local else env)
            if step is self.plan.output:
                break
            for dead in program.frees.get(step, ()):
                env.pop(dead, None)
            watched = program.checks.get(step)
            if watched in kept and not skip_checks and self._check_useful(program, step):
                equal = same_bits_rows(env[watched], kept[watched].index_select(0, rows.images.to(env[watched].device)))
                stats = self.check_stats.setdefault((program.node, step), [0, 0])
                real = ~torch.from_numpy(rows.padding).to(equal.device)
                stats[0] += int(real.sum())
                stats[1] += int((equal & real).sum())
                if bool(equal.any()):
                    self._mark_rows(sinks, rows, equal, offset, kept)
                    keep = ~equal
                    if not bool(keep.any()):
                        return
                    rows = rows.subset(keep)
                    env[watched], rows = _at_least_two(env[watched][keep], rows)
        logits = env[self.plan.output]
        images = rows.images
        result = classify(self.golden.logits[(offset + images).to(logits.device)], logits)
        real = ~rows.padding
        targets = offset + images.cpu().numpy()
        for owner in np.unique(rows.owners[real]):
            sel = real & (rows.owners == owner)
            sink, j = sinks[int(owner)], targets[sel]
            sink.codes[j], sink.nonfinite[j], sink.top1[j] = result.codes[sel], result.nonfinite[sel], result.top1[sel]

    def _golden_rows(self, node: fx.Node, kept: dict, images: torch.Tensor):
        value = kept[node] if node in kept else self.plan.executor.fetch(node.target) \
            if node.op == "get_attr" else None
        if value is None:
            raise ExactnessError(f"golden value of {node.name} was not cached")
        return value.index_select(0, images.to(value.device)) if node in self.plan.batched else value

    def _mark_masked(self, sink: _Sink, offset: int, images: torch.Tensor, kept: dict) -> None:
        if len(images):
            idx = offset + images.cpu().numpy()
            logits = self.golden.logits[torch.from_numpy(idx).to(self.golden.logits.device)]
            sink.codes[idx] = Outcome.MASKED
            sink.nonfinite[idx] = (~torch.isfinite(logits).all(dim=1)).cpu().numpy()
            sink.top1[idx] = logits.argmax(dim=1).cpu().numpy()

    def _mark_rows(self, sinks, rows: _Rows, equal: torch.Tensor, offset: int, kept: dict) -> None:
        hit = equal.cpu().numpy() & ~rows.padding
        for owner in np.unique(rows.owners[hit]):
            sel = torch.from_numpy(hit & (rows.owners == owner))
            self._mark_masked(sinks[int(owner)], offset, rows.images[sel], kept)


def _faulty_parameters(program: LayerProgram, faults, positions: list[int]):
    """(position, parameter name, faulty copy of the parameter) for each fault of one module."""
    name = faults[positions[0]][1].param.rsplit(".", 1)[-1]
    base = getattr(program.module, name).detach()
    for pos in positions:
        fault = faults[pos][1]
        faulty = base.clone()
        faulty[fault.index] = corrupt(base[fault.index], fault.bits, fault.kind)
        yield pos, name, faulty


def _shared_empty(shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised CPU tensor in shared memory. Tensor.share_memory_() would first allocate private
    memory and copy it over (0.66 s vs 0.33 s for 786 MB here); torch's own storage constructor does not."""
    try:
        storage = torch.UntypedStorage._new_shared(math.prod(shape) * dtype.itemsize)
        strides = [math.prod(shape[i + 1:]) for i in range(len(shape))]
        return torch.empty(0, dtype=dtype).set_(storage, 0, shape, strides)
    except (AttributeError, RuntimeError, TypeError):  # a torch without that private constructor
        return torch.empty(shape, dtype=dtype).share_memory_()


def _at_least_two(value: torch.Tensor, rows: _Rows) -> tuple[torch.Tensor, _Rows]:
    """A batch of one row takes another CPU kernel: duplicate it, and ignore the copy's result."""
    if len(rows) != 1:
        return value, rows
    return torch.cat([value, value]), _Rows(torch.cat([rows.images, rows.images]),
                                            np.concatenate([rows.owners, rows.owners]), np.array([False, True]))
