"""Fast engine, part 3: the graph below a faulty layer, run for packed (fault, image) rows.

Downstream of the faulty layer every weight is golden, so the rows that still differ from the
golden run, of many faults at once, are packed into full batches and carried to the logits.
Where the only faulty value still needed is one tensor, a row equal to its golden value is masked
and dropped (check points, see graph.py); a point that keeps finding nothing stops being checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx as fx

from faultzoo.campaign.engines.graph import GraphPlan, LayerProgram
from faultzoo.campaign.golden import GoldenRun
from faultzoo.campaign.outcome import Outcome, classify
from faultzoo.exceptions import ExactnessError
from faultzoo.faults.bits import same_bits_rows

__all__ = ["Downstream", "Rows", "Sink", "UNSET"]

UNSET = 255  # outcome code of an image not classified yet
# Packed rows per downstream pass: per-image conv time grows once a batch's activation outgrows the
# caches (resnet20, 1 thread: 16x32x32 maps cost 640 us/image at 32 rows, 2,000 at 512), while tiny
# batches pay per-call overhead. ~2 MB per activation was best for all three resnet20 stages.
_PACK_BYTES = 2 << 20
_PACK_MIN, _PACK_MAX = 16, 512
# A masking check point is dropped once it has seen this many rows and masked under this share of them.
_CHECK_TRIAL_ROWS = 256
_CHECK_MIN_YIELD = 0.02


@dataclass
class Sink:
    """Per-fault outcome arrays being filled in, indexed by image."""

    codes: np.ndarray
    nonfinite: np.ndarray
    top1: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Sink:
        return cls(np.full(n, UNSET, np.uint8), np.zeros(n, bool), np.zeros(n, np.int64))


@dataclass
class Rows:
    """A packed batch of (fault, image) rows flowing through the downstream graph."""

    images: torch.Tensor  # chunk-local image index per row
    owners: np.ndarray  # position of the fault (in the current call) per row
    padding: np.ndarray  # True for rows duplicated only to keep the batch at >= 2 rows

    def subset(self, keep: torch.Tensor) -> Rows:
        k = keep.cpu()
        return Rows(self.images[k], self.owners[k.numpy()], self.padding[k.numpy()])

    def __len__(self) -> int:
        return len(self.images)


# A faulty layer's survivors: (column of the faulty output, fault position, chunk-local images).
Survivors = Sequence[tuple[int, int, torch.Tensor]]
# Builds the faulty layer's output for packed rows, from their columns and images.
BuildRows = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Downstream:
    """Recomputes the graph after a faulty layer and writes each row's outcome into its fault's sink."""

    def __init__(self, plan: GraphPlan, golden: GoldenRun, *, pack_rows: int | None = None):
        self.plan = plan
        self.golden = golden
        # Rows per downstream pass: a fixed count (pack_rows), or by default as many as keep the
        # program's largest activation near _PACK_BYTES (see pack_size).
        self.pack_rows = max(2, pack_rows) if pack_rows else None
        self.check_stats: dict[tuple[fx.Node, fx.Node], list[int]] = {}  # (layer, step) -> [rows, masked]

    def pack_size(self, program: LayerProgram) -> int:
        if self.pack_rows:
            return self.pack_rows
        rows = _PACK_BYTES // max(1, program.row_bytes)
        return int(min(_PACK_MAX, max(_PACK_MIN, rows)))

    def check_useful(self, program: LayerProgram, step: fx.Node) -> bool:
        """Keep checking a point while it drops enough rows to pay for the comparison."""
        checked, masked = self.check_stats.get((program.node, step), (0, 0))
        return checked < _CHECK_TRIAL_ROWS or masked >= _CHECK_MIN_YIELD * checked

    def pack(self, program: LayerProgram, survivors: Survivors, build: BuildRows, kept: dict, offset: int,
             sinks: dict[int, Sink]) -> None:
        """Stream the surviving (fault, image) rows of many faults through the downstream graph in full batches."""
        if not survivors:
            return
        k_all = torch.cat([torch.full((len(rows),), k, dtype=torch.long) for k, _, rows in survivors])
        img_all = torch.cat([rows for _, _, rows in survivors])
        pos_all = np.concatenate([np.full(len(rows), pos, dtype=np.int64) for _, pos, rows in survivors])
        pack = self.pack_size(program)
        for start in range(0, len(img_all), pack):
            stop = min(start + pack, len(img_all))
            if len(img_all) - stop == 1:  # never leave a lone row for the last batch
                stop += 1
            if start >= len(img_all):
                break
            k_idx, images = k_all[start:stop], img_all[start:stop]
            rows = Rows(images, pos_all[start:stop], np.zeros(stop - start, bool))
            with torch.no_grad():
                self.run(program, build(k_idx, images), rows, kept, sinks, offset)
            if stop >= len(img_all):
                break

    def run(self, program: LayerProgram, value: torch.Tensor, rows: Rows, kept: dict, sinks: dict[int, Sink],
            offset: int, *, skip_checks: bool = False) -> None:
        """Run the graph after the faulty layer for one batch; classify the rows that reach the output."""
        if len(rows) == 0:
            return
        value, rows = at_least_two(value, rows)
        env: dict[fx.Node, object] = {program.node: value}
        executor = self.plan.executor
        for step in program.steps:
            local = {a: self._golden_rows(a, kept, rows.images) for a in step.all_input_nodes if a not in env}
            env[step] = executor.run(step, {**env, **local} if local else env)
            if step is self.plan.output:
                break
            for dead in program.frees.get(step, ()):
                env.pop(dead, None)
            watched = program.checks.get(step)
            if watched in kept and not skip_checks and self.check_useful(program, step):
                equal = same_bits_rows(env[watched], kept[watched].index_select(0, rows.images.to(env[watched].device)))
                self._count(program, step, equal, rows)
                if bool(equal.any()):
                    self.mark_rows(sinks, rows, equal, offset)
                    keep = ~equal
                    if not bool(keep.any()):
                        return
                    rows = rows.subset(keep)
                    env[watched], rows = at_least_two(env[watched][keep], rows)
        self._classify(env[self.plan.output], rows, sinks, offset)

    def _count(self, program: LayerProgram, step: fx.Node, equal: torch.Tensor, rows: Rows) -> None:
        stats = self.check_stats.setdefault((program.node, step), [0, 0])
        real = ~torch.from_numpy(rows.padding).to(equal.device)
        stats[0] += int(real.sum())
        stats[1] += int((equal & real).sum())

    def _classify(self, logits: torch.Tensor, rows: Rows, sinks: dict[int, Sink], offset: int) -> None:
        result = classify(self.golden.logits[(offset + rows.images).to(logits.device)], logits)
        real = ~rows.padding
        targets = offset + rows.images.cpu().numpy()
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

    def mark_masked(self, sink: Sink, offset: int, images: torch.Tensor) -> None:
        """These chunk-local images are masked: golden logits, hence the golden top-1 and finiteness."""
        if len(images):
            idx = offset + images.cpu().numpy()
            logits = self.golden.logits[torch.from_numpy(idx).to(self.golden.logits.device)]
            sink.codes[idx] = Outcome.MASKED
            sink.nonfinite[idx] = (~torch.isfinite(logits).all(dim=1)).cpu().numpy()
            sink.top1[idx] = logits.argmax(dim=1).cpu().numpy()

    def mark_rows(self, sinks: dict[int, Sink], rows: Rows, equal: torch.Tensor, offset: int) -> None:
        hit = equal.cpu().numpy() & ~rows.padding
        for owner in np.unique(rows.owners[hit]):
            sel = torch.from_numpy(hit & (rows.owners == owner))
            self.mark_masked(sinks[int(owner)], offset, rows.images[sel])


def at_least_two(value: torch.Tensor, rows: Rows) -> tuple[torch.Tensor, Rows]:
    """A batch of one row takes another CPU kernel: duplicate it, and ignore the copy's result."""
    if len(rows) != 1:
        return value, rows
    return torch.cat([value, value]), Rows(torch.cat([rows.images, rows.images]),
                                           np.concatenate([rows.owners, rows.owners]), np.array([False, True]))
