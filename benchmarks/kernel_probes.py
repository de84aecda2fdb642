"""Kernel facts behind the fast engine's design choices, measured on this machine.

1. Convolution time per image by batch size for resnet20's three 3x3 conv shapes, one thread, on
   NCHW tensors (what the model runs) and on tensors already in oneDNN's blocked layout (what a
   blocked downstream pass would run), with whether both give the same bits.
2. The reference engine's evaluations/s by batch size at torch's default threads, measured in
   interleaved rounds so that the host's drift hits every batch size alike (the campaign benchmark
   times each setting once, one after the other).
3. How local a fault's perturbation still is where the fast engine must start recomputing whole
   feature maps: at the first convolution below the faulty layer, the share of its output positions
   (and of its output rows) whose receptive field holds a changed value, for faults of the campaign
   benchmark (same seed-0 sample), and the share of the recomputation an exact spatial crop of that
   convolution could save at best (a crop computes only those positions, at no extra cost).

Usage: python benchmarks/kernel_probes.py [--rounds 2] [--faults 2] [--only conv|reference|locality]
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FAULTZOO_TEST_SHARED", REPO.parent / "shared"))
os.environ.setdefault("FAULTZOO_MIRROR", str(SHARED / "mirror"))

from faultzoo.backends.engines import make_engine  # noqa: E402
from faultzoo.backends.golden import golden_run  # noqa: E402
from faultzoo.data import load_selection  # noqa: E402
from faultzoo.faults import dnn_benchmarks_fault_list, injected  # noqa: E402
from faultzoo.zoo import get_model  # noqa: E402

SHAPES = [(16, 32), (32, 16), (64, 8)]  # (channels, height = width) of resnet20's three stages


def per_image_us(fn, batch: int, repeats: int) -> float:
    fn()  # warm-up: oneDNN primitive creation
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats / batch * 1e6


def conv_probe(batches: list[int]) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print("conv 3x3, 1 thread, us per image: NCHW / pre-blocked (same bits?)")
    for channels, size in SHAPES:
        weight = torch.randn(channels, channels, 3, 3)
        blocked_weight = torch._C._nn.mkldnn_reorder_conv2d_weight(weight.to_mkldnn(), [1, 1], [1, 1], [1, 1], 1)
        cells = []
        for batch in batches:
            x = torch.randn(batch, channels, size, size)
            xb = x.to_mkldnn()
            repeats = max(3, 1024 // batch)
            plain = per_image_us(lambda: F.conv2d(x, weight, None, 1, 1), batch, repeats)
            blocked = per_image_us(lambda: F.conv2d(xb, blocked_weight, None, 1, 1), batch, repeats)
            same = torch.equal(F.conv2d(xb, blocked_weight, None, 1, 1).to_dense().view(torch.int32),
                               F.conv2d(x, weight, None, 1, 1).view(torch.int32))
            cells.append(f"{batch}: {plain:.0f}/{blocked:.0f}{'' if same else ' DIFFERENT BITS'}")
        print(f"  {channels:3d}x{size}x{size}  " + "  ".join(cells))


def reference_probe(data: str, batches: list[int], rounds: int, n_faults: int) -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    model = get_model("cifar10/resnet20", weights="default")
    selection = load_selection(data, dataset="cifar10", limit=1000)
    faults = dnn_benchmarks_fault_list(model, model_id="cifar10/resnet20")
    pairs = [(i, faults[i]) for i in range(0, len(faults), len(faults) // n_faults)][:n_faults]
    engines = {}
    for batch in batches:
        golden = golden_run(model, selection.x, selection.y, batch_size=batch)
        engines[batch] = make_engine("reference", model, selection.x, golden, batch_size=batch)
        engines[batch].run(pairs[:1])  # warm-up
    print(f"reference engine, {torch.get_num_threads()} threads, {len(pairs)} faults x {len(selection.y)} images, "
          "evaluations/s by batch, interleaved rounds:")
    for round_ in range(rounds):
        cells = []
        for batch, engine in engines.items():
            start = time.perf_counter()
            engine.run(pairs)
            cells.append(f"{batch}: {len(pairs) * len(selection.y) / (time.perf_counter() - start):.0f}")
        print(f"  round {round_ + 1}  " + "  ".join(cells))


def locality_probe(data: str, n_faults: int, n_images: int) -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    model = get_model("cifar10/resnet20", weights="default")
    selection = load_selection(data, dataset="cifar10", limit=n_images)
    full = dnn_benchmarks_fault_list(model, model_id="cifar10/resnet20")
    sample = [full[i] for i in sorted(random.Random(0).sample(range(len(full)), 300))]
    faults = sample[:: max(1, len(sample) // n_faults)][:n_faults]  # evenly over the (layer-ordered) list
    golden = golden_run(model, selection.x, selection.y, batch_size=16)
    engine = make_engine("fast", model, selection.x, golden, batch_size=16, params=[f.param for f in faults])
    plan = engine.plan
    positions, rows, saved, work = [], [], 0.0, 0.0
    for fault in faults:
        program = engine.programs.get(fault.param)
        point = program.last_unmixed_check if program else None
        if point is None:
            continue
        with torch.no_grad():
            _, clean = plan.run_golden(selection.x, {point})
            with injected(engine.gm, fault):
                _, faulty = plan.run_golden(selection.x, {point})
        differs = clean[point].view(torch.int32) != faulty[point].view(torch.int32)
        live = differs.flatten(1).any(dim=1)
        work += plan.program_cost(program) * float(live.float().mean())
        convs = [u for u in point.users if isinstance(plan.executor.modules.get(u.target), nn.Conv2d)]
        if not convs or not live.any() or differs.dim() != 4:
            continue  # nothing mixes it spatially any more (e.g. the last block): nothing to crop
        changed = differs.any(dim=1)  # N x H x W: positions where any channel changed
        conv = plan.executor.modules[convs[0].target]
        reach = F.max_pool2d(changed[live].float()[:, None], conv.kernel_size, conv.stride, conv.padding)[:, 0] > 0
        share = reach.flatten(1).float().mean(dim=1)
        positions.append(float(share.mean()))
        rows.append(float(reach.any(dim=2).float().mean()))
        saved += plan.node_cost(convs[0]) * float((1 - share).mean()) * float(live.float().mean())
    print(f"locality at the first convolution below the faulty layer, {len(positions)} faults x {len(selection.y)} "
          f"images: {sum(positions) / len(positions):.0%} of its output positions and {sum(rows) / len(rows):.0%} of "
          f"its output rows need recomputing (mean over perturbed rows); an exact crop to those positions would "
          f"save at most {saved / work:.0%} of the recomputation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED / "datasets" / "cifar10" / "test-first1000-exact.npz"))
    parser.add_argument("--conv-batches", default="8,16,32,64,128")
    parser.add_argument("--ref-batches", default="8,16,32,64")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--faults", type=int, default=2)
    parser.add_argument("--locality-faults", type=int, default=100)
    parser.add_argument("--locality-images", type=int, default=200)
    parser.add_argument("--only", choices=["conv", "reference", "locality"], help="run one probe")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs")
    if args.only in (None, "conv"):
        conv_probe([int(b) for b in args.conv_batches.split(",")])
    if args.only == "conv":
        return
    if not Path(args.data).exists():
        raise SystemExit(f"data file {args.data} not found: pass --data PATH.npz (CIFAR-10 test images)")
    if args.only in (None, "reference"):
        reference_probe(args.data, [int(b) for b in args.ref_batches.split(",")], args.rounds, args.faults)
    if args.only in (None, "locality"):
        locality_probe(args.data, args.locality_faults, args.locality_images)

if __name__ == "__main__":
    main()
