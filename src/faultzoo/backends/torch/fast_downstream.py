"""Fast engine, part 3: the graph below a faulty layer, run for packed (fault, image) rows.

Downstream of the faulty layer every weight is golden, so the rows that still differ from the
golden run, of many faults at once, are packed into full batches and carried to the logits.
Where the only faulty value still needed is one tensor, a row equal to its golden value is masked
and dropped (check points, see graph.py); a point that keeps finding nothing stops being checked.

A row's bits may depend on the size of its batch (measured with torch 2.14 on CPU: a stride-1 1x1
convolution gives a row other bits in a batch of 16 rows or more than in one of fewer, as in
mobilenetv2 and efficientnet_b0). So the sizes a layer's downstream graph runs at are checked first
(check_sizes): each node, computed from golden inputs for rows of golden batches gathered into a
batch of each size of a ladder, must give every row the bits its golden batch gave it. Where every
size up to the pack size does, rows are packed freely; else batches are only ever run at sizes that
did, padded with copies of their rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.fx as fx

from faultzoo.backends.torch.graph import GraphPlan, LayerProgram
from faultzoo.backends.golden import GoldenRun
from faultzoo.outcome import Outcome
from faultzoo.backends.classify import UNSET, classify
from faultzoo.backends.classify import OutcomeSink as Sink
from faultzoo.exceptions import ExactnessError
from faultzoo.faults.bits import same_bits, same_bits_rows
from faultzoo.inference import batch_slices

__all__ = ["Downstream", "Rows", "Sink", "UNSET"]

# Packed rows per downstream pass: per-image conv time grows once a batch's activation outgrows the
# caches (resnet20, 1 thread: 16x32x32 maps cost 640 us/image at 32 rows, 2,000 at 512), while tiny
# batches pay per-call overhead. ~2 MB per activation was best for all three resnet20 stages.
_PACK_BYTES = 2 << 20
_PACK_MIN, _PACK_MAX = 16, 512
# A masking check point is dropped once it has seen this many rows and masked under this share of them.
_CHECK_TRIAL_ROWS = 256
_CHECK_MIN_YIELD = 0.02
# Batch sizes checked: a threshold between two powers of two shows up at one of them (1x1 convolutions
# change bits at 16 rows on CPU); small odd sizes catch kernels whose tail loop differs.
LADDER = (2, 3, 4, 7, 8, 15, 16, 32, 64, 128, 256, 512)


def ladder_cover(upto: int) -> list[int]:
    """The ladder sizes below ``upto`` and the first one at or above it."""
    sizes = [s for s in LADDER if s < upto]
    return sizes + [next((s for s in LADDER if s >= upto), upto)]


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
        # node -> batch size -> whether the node, from golden inputs, computes rows as their golden batches did
        self.sizes: dict[fx.Node, dict[int, bool]] = {}
        self._active: dict[int, bool] = {}  # the size results that apply to the rows being packed now
        self._pack = 2  # and the pack size prepare() chose for them

    def pack_size(self, program: LayerProgram) -> int:
        if self.pack_rows:
            return self.pack_rows
        rows = _PACK_BYTES // max(1, program.row_bytes)
        return int(min(_PACK_MAX, max(_PACK_MIN, rows)))

    def check_useful(self, program: LayerProgram, step: fx.Node) -> bool:
        """Keep checking a point while it drops enough rows to pay for the comparison."""
        checked, masked = self.check_stats.get((program.node, step), (0, 0))
        return checked < _CHECK_TRIAL_ROWS or masked >= _CHECK_MIN_YIELD * checked

    # ---------------------------------------------------------------- batch sizes
    def check_sizes(self, x: torch.Tensor, wanted: Sequence[tuple[LayerProgram, int]]) -> None:
        """Check the batch sizes that packing up to ``rows`` rows of each (layer, rows) may use: the ladder
        sizes up to that count, and where one of them computes otherwise, every ladder size up to the pack
        size (to find those that do)."""
        covers = [(p, ladder_cover(max(2, min(self.pack_size(p), rows)))) for p, rows in wanted]
        self._check(x, covers)
        self._check(x, [(p, [s for s in LADDER if s <= self.pack_size(p)]) for p, cover in covers
                        if not all(self.same(p, s) for s in cover)])

    def prepare(self, program: LayerProgram, rows: int) -> int | None:
        """Choose the batch sizes for packing ``rows`` rows of this layer (checked by check_sizes): the pack
        size, or None when no checked size up to it computes as the golden batches do."""
        pack = self.pack_size(program)
        self._active = {s: self.same(program, s) for s in LADDER if self.checked(program, s)}
        if all(self._active.get(s, False) for s in ladder_cover(max(2, min(pack, rows)))):
            self._pack = pack  # every size up to the pack size computes as the golden batches: pack freely
            return pack
        good = [s for s, same in self._active.items() if same and s <= pack]
        self._pack = max(good, default=2)
        return max(good) if good else None

    def fit(self, rows: int) -> int:
        """The batch size to run ``rows`` rows at (among those prepare() chose)."""
        known = self._active
        if all(known.get(s, False) for s in ladder_cover(max(2, rows))):
            return max(2, rows)
        return min(s for s, same in known.items() if same and s >= rows)

    def checked(self, program: LayerProgram, size: int) -> bool:
        return all(size in self.sizes.get(n, {}) for n in program.steps)

    def same(self, program: LayerProgram, size: int) -> bool:
        return all(self.sizes.get(n, {}).get(size, False) for n in program.steps)

    def _check(self, x: torch.Tensor, sizes: Sequence[tuple[LayerProgram, list[int]]]) -> None:
        """Run the golden batches (the first one, and the last one when it has another size) through the
        whole graph; alongside, compute each node that needs it from its golden inputs for rows of those
        batches gathered into a batch of each size, and record whether every row is bit for bit the
        value its golden batch computed."""
        need: dict[fx.Node, set[int]] = {}
        for program, wanted in sizes:
            for step in program.steps:
                todo = {s for s in wanted if s not in self.sizes.get(step, {})}
                if todo:
                    need.setdefault(step, set()).update(todo)
        if not need:
            return
        batches = batch_slices(len(x), self.golden.batch_size)
        refs = [batches[0]] if batches[-1].stop - batches[-1].start == batches[0].stop - batches[0].start \
            else [batches[0], batches[-1]]
        lengths = [r.stop - r.start for r in refs]
        starts = np.cumsum([0] + lengths)
        # Rows of every golden batch in turn, so that a batch of any size holds rows of each.
        order = torch.tensor([int(starts[k]) + j for j in range(max(lengths)) for k in range(len(refs))
                              if j < lengths[k]])
        picks = {s: order[(torch.arange(s) + s) % len(order)] for s in set().union(*need.values())}
        plan, executor = self.plan, self.plan.executor
        last_use = {n: max((plan.order[u] for u in n.users), default=-1) for n in plan.nodes}
        envs: list[dict] = [{} for _ in refs]
        joined: dict[fx.Node, torch.Tensor] = {}  # rows of all golden batches, per node (while needed)
        at_size: dict[int, dict[fx.Node, object]] = {s: {} for s in picks}  # values without a row per image
        with torch.no_grad():
            for i, node in enumerate(plan.nodes):
                for k, r in enumerate(refs):
                    envs[k][node] = x[r] if node.op == "placeholder" else executor.run(node, envs[k])
                for size in sorted(need.get(node, ())):
                    same = self._same_at_size(node, envs, joined, at_size[size], picks[size])
                    self.sizes.setdefault(node, {})[size] = same
                for arg in node.all_input_nodes:
                    if last_use[arg] <= i:
                        joined.pop(arg, None)
                        for env in envs:
                            env.pop(arg, None)
                joined.pop(node, None)

    def _same_at_size(self, node: fx.Node, envs: list[dict], joined: dict, at_size: dict,
                      pick: torch.Tensor) -> bool:
        def value(a: fx.Node):
            if a in self.plan.batched:
                if a not in joined:
                    joined[a] = envs[0][a] if len(envs) == 1 else torch.cat([env[a] for env in envs])
                return joined[a].index_select(0, pick.to(joined[a].device))
            return at_size.get(a, envs[0][a])

        try:
            out = self.plan.executor.run(node, {a: value(a) for a in node.all_input_nodes})
        except Exception:  # e.g. a shape that does not fit this size: never run rows at it
            return False
        if node not in self.plan.batched:
            at_size[node] = out  # e.g. a size read from a tensor of this batch
            return True
        return isinstance(out, torch.Tensor) and same_bits(out, value(node))

    # ---------------------------------------------------------------- packing
    def pack(self, program: LayerProgram, survivors: Survivors, build: BuildRows, kept: dict, offset: int,
             sinks: dict[int, Sink]) -> None:
        """Stream the surviving (fault, image) rows of many faults through the downstream graph in full batches
        (of a size prepare() chose)."""
        if not survivors:
            return
        k_all = torch.cat([torch.full((len(rows),), k, dtype=torch.long) for k, _, rows in survivors])
        img_all = torch.cat([rows for _, _, rows in survivors])
        pos_all = np.concatenate([np.full(len(rows), pos, dtype=np.int64) for _, pos, rows in survivors])
        pack = self._pack
        start = 0
        while start < len(img_all):
            stop = min(start + pack, len(img_all))
            if len(img_all) - stop == 1:  # never leave a lone row for the last batch
                stop -= 1
            k_idx, images = k_all[start:stop], img_all[start:stop]
            rows = Rows(images, pos_all[start:stop], np.zeros(stop - start, bool))
            with torch.no_grad():
                self.run(program, build(k_idx, images), rows, kept, sinks, offset)
            start = stop

    def run(self, program: LayerProgram, value: torch.Tensor, rows: Rows, kept: dict, sinks: dict[int, Sink],
            offset: int, *, skip_checks: bool = False, golden_batch: bool = False) -> None:
        """Run the graph after the faulty layer for one batch (of a size prepare() checked, padded with
        copies of its rows where needed, or exactly a golden batch); classify the rows that reach the output."""
        if len(rows) == 0:
            return
        value, rows = (at_least_two if golden_batch else self._fitted)(value, rows)
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
                    keep = ~equal & ~torch.from_numpy(rows.padding).to(equal.device)
                    if not bool(keep.any()):
                        return
                    rows = rows.subset(keep)
                    env[watched], rows = self._fitted(env[watched][keep], rows)
        self._classify(env[self.plan.output], rows, sinks, offset)

    def _fitted(self, value: torch.Tensor, rows: Rows) -> tuple[torch.Tensor, Rows]:
        return padded(value, rows, self.fit(len(rows)))

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


def padded(value: torch.Tensor, rows: Rows, size: int) -> tuple[torch.Tensor, Rows]:
    """The batch grown to ``size`` rows with copies of its rows (whose results are ignored)."""
    if len(rows) >= size:
        return value, rows
    extra = torch.arange(size - len(rows)) % len(rows)
    return torch.cat([value, value[extra.to(value.device)]]), Rows(
        torch.cat([rows.images, rows.images[extra]]), np.concatenate([rows.owners, rows.owners[extra.numpy()]]),
        np.concatenate([rows.padding, np.ones(len(extra), bool)]))


def at_least_two(value: torch.Tensor, rows: Rows) -> tuple[torch.Tensor, Rows]:
    """A batch of one row takes another CPU kernel: duplicate it, and ignore the copy's result."""
    if len(rows) != 1:
        return value, rows
    return torch.cat([value, value]), Rows(torch.cat([rows.images, rows.images]),
                                           np.concatenate([rows.owners, rows.owners]), np.array([False, True]))
