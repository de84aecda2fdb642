"""Fast engine, part 2: the checks that decide what the engine may rely on, on the campaign's own model and data.

At start-up: the traced graph computes the eager model's logits bit for bit (else the whole
campaign runs the reference way), and a row's logits do not depend on the other rows of its batch
(else rows are never repacked: golden batches are kept). Per layer, on its first fault: a few output
channels computed alone or stacked equal those channels of the full layer, the faulty weight changes
only its own channel; a module recomputed whole with a faulty parameter passed in computes what it
computes with the fault written into it; and re-running the graph from the layer's golden output
gives the golden logits. A failed check makes that layer run the slower way that does not need it.
The batch sizes a layer's rows may be packed into are checked by Downstream.check_sizes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from faultzoo.backends.torch.fast_downstream import Downstream, Rows, Sink
from faultzoo.backends.torch.fast_golden import GoldenMaps
from faultzoo.backends.torch.fast_layer import channel_outputs
from faultzoo.backends.torch.graph import LayerProgram, channels_first
from faultzoo.outcome import Outcome
from faultzoo.faults import Fault, corrupt, injected
from faultzoo.faults.bits import same_bits
from faultzoo.inference import batch_slices

__all__ = ["Checks"]

_logger = logging.getLogger(__name__)


@dataclass
class Checks:
    """What was verified, what failed, and what the engine does about it (for provenance)."""

    graph_equals_eager: bool | None = None
    rows_independent: bool | None = None
    layers: dict[str, str] = field(default_factory=dict)  # param -> "stacked" | "module" | "aligned" | "reference: why"
    aligned: bool = False  # keep the golden batches (rows depend on their batch)
    fallback: str | None = None  # why the whole campaign runs the reference way

    def to_dict(self) -> dict:
        return {"graph_equals_eager": self.graph_equals_eager, "rows_independent": self.rows_independent,
                "layers": dict(sorted(self.layers.items()))}

    def export(self) -> dict:
        """The whole-model results, for a twin engine in a worker process."""
        return {"graph_equals_eager": self.graph_equals_eager, "rows_independent": self.rows_independent,
                "aligned": self.aligned, "fallback": self.fallback}

    def adopt(self, exported: dict) -> None:
        self.graph_equals_eager, self.rows_independent = exported["graph_equals_eager"], exported["rows_independent"]
        self.aligned, self.fallback = exported["aligned"], exported["fallback"]

    # ---------------------------------------------------------------- start-up
    def verify_model(self, maps: GoldenMaps) -> None:
        """Traced graph == eager model, and a row's logits do not depend on its batch."""
        plan, x, golden = maps.plan, maps.x, maps.golden
        logits, _ = maps.chunk(0)
        self.graph_equals_eager = same_bits(logits, golden.logits[maps.chunks[0]])
        if not self.graph_equals_eager:
            self.fallback = "the traced graph's logits differ from the eager model's"
        # Same rows, other batch boundaries and order: results must not change.
        n = min(len(x), 2 * maps.batch_size + 3)
        if n >= 4:
            order = torch.arange(n, device=x.device).flip(0)
            with torch.no_grad():
                shuffled = torch.cat([plan.run_golden(x[order[s]], set())[0] for s in batch_slices(n, max(2, n // 3))])
            self.rows_independent = same_bits(shuffled, golden.logits[order])
            if not self.rows_independent:
                # Packing rows of several faults, or dropping masked rows, would change the other
                # rows' bits. Keep the golden run's exact batches instead: recompute from the faulty
                # layer on, batch by batch, and skip a batch only when it is entirely unchanged.
                self.aligned = True
                _logger.info("rows depend on their batch here: the fast engine keeps the golden batches")
        if self.fallback:
            _logger.warning("fast engine falls back to the reference engine: %s", self.fallback)

    # ---------------------------------------------------------------- per layer
    def verify_layer(self, program: LayerProgram, param: str, fault: Fault, kept: dict, maps: GoldenMaps,
                     downstream: Downstream) -> str:
        """Decide (once) how a layer's faults are computed, checking the facts each mode relies on."""
        if param not in self.layers:
            self.layers[param] = self._layer_mode(program, param, fault, kept, maps, downstream)
        return self.layers[param]

    def _layer_mode(self, program: LayerProgram, param: str, fault: Fault, kept: dict, maps: GoldenMaps,
                    downstream: Downstream) -> str:
        golden_out = maps.output_of(program, kept)
        mode = "stacked" if program.stackable else "module"
        if self.aligned:
            mode = "aligned"
        first = maps.chunk_batches[0][0]
        rows = torch.arange(first.start, first.stop) if self.aligned else torch.arange(min(4, len(golden_out)))
        golden_in = kept[program.inputs[0]]
        if mode == "stacked" and not _stacking_is_exact(program, fault, golden_in, golden_out, first, rows):
            mode = "module"
        if mode != "stacked" and not _functional_call_is_exact(program, fault, kept, first):
            return "reference: the module computes otherwise with the faulty parameter passed in than written in"
        # Re-running the downstream graph from the golden layer output reproduces the golden logits (at a batch
        # size checked for this layer, or on the first golden batch).
        golden_batch = self.aligned or downstream.prepare(program, len(rows)) is None
        if golden_batch:
            rows = torch.arange(first.start, first.stop)
        sink = {0: Sink.empty(len(golden_out))}
        rows_of_one_fault = Rows(rows, np.zeros(len(rows), int), np.zeros(len(rows), bool))
        downstream.run(program, golden_out[rows].clone(), rows_of_one_fault, kept, sink, 0, skip_checks=True,
                       golden_batch=golden_batch)
        if not (sink[0].codes[rows.numpy()] == Outcome.MASKED).all():
            return "reference: re-running the graph from this layer does not reproduce the golden logits"
        return mode


def _stacking_is_exact(program: LayerProgram, fault: Fault, golden_in: torch.Tensor, golden_out: torch.Tensor,
                       first: slice, rows: torch.Tensor) -> bool:
    """(a) a few output channels computed alone, or stacked, equal those channels of the full layer (on
    the first golden batch; every stacked conv of the campaign re-checks this on all its images through
    a golden witness channel), and (b) the full layer with the faulty weight changes only that weight's
    output channel, which equals the channel computed alone."""
    o = fault.index[0]
    golden_out = channels_first(golden_out, program.fast_kind)  # a view: (images, channels, ...)
    channels = sorted({0, o, golden_out.shape[1] - 1})
    sample_in, sample_out = golden_in[first], golden_out[first]
    with torch.no_grad():
        ok = all(same_bits(channel_outputs(program, sample_in, [(c, None)])[:, 0], sample_out[:, c]) for c in channels)
        stacked = channel_outputs(program, sample_in, [(c, None) for c in channels])
        ok = ok and all(same_bits(stacked[:, k], sample_out[:, c]) for k, c in enumerate(channels))
        weight = program.module.weight.detach()
        faulty_weight = weight.clone()
        faulty_weight[fault.index] = corrupt(weight[fault.index], fault.bits, fault.kind)
        full = channels_first(torch.func.functional_call(program.module, {"weight": faulty_weight}, (golden_in[rows],)),
                              program.fast_kind)
        others = torch.ones(full.shape[1], dtype=torch.bool)
        others[o] = False
        ok = ok and same_bits(full[:, others], golden_out[rows][:, others])
        alone = channel_outputs(program, golden_in[rows], [(o, fault)])[:, 0]
        return ok and same_bits(full[:, o], alone)


def _functional_call_is_exact(program: LayerProgram, fault: Fault, kept: dict, first: slice) -> bool:
    """The module called the way the engine calls a faulty one (the faulty parameter passed in through
    torch.func.functional_call) computes what it computes with the fault written into its own parameter,
    as the reference engine does it (on the first golden batch). A module whose forward reads its weights
    some other way would not see a passed-in one."""
    inputs = {a: kept[a][first] for a in program.inputs}
    param = program.module.get_parameter(program.name).detach()
    faulty = param.clone()
    faulty[fault.index] = corrupt(param[fault.index], fault.bits, fault.kind)
    with torch.no_grad():
        passed = program.compute(inputs, {program.name: faulty})
        with injected(program.module, Fault(program.name, fault.index, fault.bits, fault.kind)):
            in_place = program.compute(inputs)
    return same_bits(passed, in_place)
