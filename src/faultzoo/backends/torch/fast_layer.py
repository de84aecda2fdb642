"""Fast engine, part 4: the faulty layer itself, computed three ways.

- stacked: a fault in a conv/linear weight changes one output channel, so only that channel is
  computed, for many faults at once (their weight rows stacked into one small convolution), and
  spliced into the golden output; a golden witness row in every stack re-checks the trick;
- module: the whole module with the faulty parameter (any parameter kind);
- aligned: the whole module, one golden batch at a time, rows never repacked (for models whose rows
  depend on their batch).
Rows that still differ after the layer go to the downstream part; equal rows are masked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from faultzoo.backends.torch.fast_downstream import Downstream, Rows, Sink
from faultzoo.backends.torch.fast_golden import GoldenMaps
from faultzoo.backends.torch.graph import LayerProgram, channels_first, stacked_rows_output
from faultzoo.faults import Fault, corrupt
from faultzoo.faults.bits import same_bits, same_bits_rows
from faultzoo.inference import batch_slices

__all__ = ["FaultyLayer", "channel_outputs", "faulty_parameters"]

_logger = logging.getLogger(__name__)

_STACK_ELEMENTS = 8 << 20  # cap on (images x stacked channels x H x W) of one stacked conv

Pairs = Sequence[tuple[int, Fault]]


class FaultyLayer:
    """Computes a layer's faulty outputs for a group of faults, then hands the differing rows downstream."""

    def __init__(self, maps: GoldenMaps, downstream: Downstream, layers: dict[str, str], *, batch_size: int):
        self.maps = maps
        self.downstream = downstream
        self.layers = layers  # param -> mode; a stacked layer whose witness fails becomes "module"
        self.batch_size = batch_size

    def stacked(self, program: LayerProgram, param: str, faults: Pairs, positions: list[int], kept: dict,
                offset: int, sinks: dict[int, Sink]) -> None:
        golden_in, golden_out = kept[program.inputs[0]], self.maps.output_of(program, kept)
        golden_channels = channels_first(golden_out, program.fast_kind)  # a view: (images, channels, ...)
        per_channel = golden_channels[:, 0].numel()
        stack = max(1, min(len(positions), _STACK_ELEMENTS // max(per_channel, 1)))
        for start in range(0, len(positions), stack):
            group = positions[start: start + stack]
            channel = torch.tensor([faults[p][1].index[0] for p in group])
            # The first row is a golden witness: the unfaulted weights of the first fault's channel.
            # Computed in the very same call as the faulty rows, it must equal the golden channel on
            # every image, or this layer's stacked convolutions are not trusted any more.
            witness = int(channel[0])
            with torch.no_grad():
                outs = channel_outputs(program, golden_in, [(witness, None)] + [
                    (faults[p][1].index[0], faults[p][1]) for p in group])
            if not same_bits(outs[:, 0], golden_channels[:, witness]):
                self.layers[param] = "module: a stacked convolution's witness channel differed"
                _logger.warning("%s: %s", param, self.layers[param])
                self.module(program, faults, positions[start:], kept, offset, sinks)
                return
            outs = outs[:, 1:]
            survivors = []
            for k, pos in enumerate(group):
                equal = same_bits_rows(outs[:, k], golden_channels[:, channel[k]])
                self.downstream.mark_masked(sinks[pos], offset, torch.nonzero(equal).flatten().cpu())
                survivors.append((k, pos, torch.nonzero(~equal).flatten().cpu()))

            def build(k_idx: torch.Tensor, images: torch.Tensor, outs=outs, channel=channel) -> torch.Tensor:
                value = golden_out.index_select(0, images.to(golden_out.device))  # a copy: safe to edit
                spliced = channels_first(value, program.fast_kind)  # a view of the copy: written through
                spliced[torch.arange(len(images)), channel[k_idx]] = outs[images.to(outs.device), k_idx.to(outs.device)]
                return value

            self.downstream.pack(program, survivors, build, kept, offset, sinks)

    def module(self, program: LayerProgram, faults: Pairs, positions: list[int], kept: dict, offset: int,
               sinks: dict[int, Sink]) -> None:
        """Recompute the whole faulty module (any parameter kind), then the downstream graph."""
        golden_out = self.maps.output_of(program, kept)
        n = len(golden_out)
        for pos, name, faulty in faulty_parameters(program, faults, positions):
            with torch.no_grad():
                out = torch.cat([program.compute({a: kept[a][b] for a in program.inputs}, {name: faulty})
                                 for b in batch_slices(n, self.batch_size)])
            equal = same_bits_rows(out, golden_out)
            self.downstream.mark_masked(sinks[pos], offset, torch.nonzero(equal).flatten().cpu())
            rows = torch.nonzero(~equal).flatten().cpu()
            self.downstream.pack(program, [(0, pos, rows)],
                                 lambda k_idx, images, out=out: out.index_select(0, images.to(out.device)),
                                 kept, offset, sinks)

    def aligned(self, program: LayerProgram, faults: Pairs, positions: list[int], kept: dict, index: int,
                sinks: dict[int, Sink]) -> None:
        """Recompute from the faulty layer on, one golden batch at a time, rows untouched and in order."""
        golden_out = self.maps.output_of(program, kept)
        offset = self.maps.chunks[index].start
        for pos, name, faulty in faulty_parameters(program, faults, positions):
            for b in self.maps.chunk_batches[index]:
                images = torch.arange(b.start, b.stop)
                with torch.no_grad():
                    out = program.compute({a: kept[a][b] for a in program.inputs}, {name: faulty})
                    if same_bits(out, golden_out[b]):  # identical input to the rest: masked
                        self.downstream.mark_masked(sinks[pos], offset, images)
                        continue
                    rows = Rows(images, np.full(len(images), pos), np.zeros(len(images), bool))
                    self.downstream.run(program, out, rows, kept, sinks, offset, skip_checks=True, golden_batch=True)


def channel_outputs(program: LayerProgram, inp: torch.Tensor, rows: list[tuple[int, Fault | None]]) -> torch.Tensor:
    """Output channels ``c`` of the layer, each computed with its weight row (faulty when a fault is given),
    on axis 1 (see channels_first)."""
    module: nn.Module = program.module
    weight = module.weight.detach()
    bias = module.bias.detach() if module.bias is not None else None
    groups = getattr(module, "groups", 1)
    if groups == 1:
        w = weight[[c for c, _ in rows]].clone()
        for k, (_, fault) in enumerate(rows):
            if fault is not None:
                w[k][fault.index[1:]] = corrupt(weight[fault.index], fault.bits, fault.kind)
        b = bias[[c for c, _ in rows]] if bias is not None else None
        return channels_first(stacked_rows_output(module, program.fast_kind, inp, w, b), program.fast_kind)
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


def faulty_parameters(program: LayerProgram, faults: Pairs, positions: list[int]
                      ) -> Iterator[tuple[int, str, torch.Tensor]]:
    """(position, parameter name, faulty copy of the parameter) for each fault of one module."""
    name = program.name
    base = program.module.get_parameter(name).detach()
    for pos in positions:
        fault = faults[pos][1]
        faulty = base.clone()
        faulty[fault.index] = corrupt(base[fault.index], fault.bits, fault.kind)
        yield pos, name, faulty
