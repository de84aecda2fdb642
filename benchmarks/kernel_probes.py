"""Kernel facts behind the fast engine's design choices, measured on this machine.

1. Convolution time per image by batch size for resnet20's three 3x3 conv shapes, one thread, on
   NCHW tensors (what the model runs) and on tensors already in oneDNN's blocked layout (what a
   blocked downstream pass would run), with whether both give the same bits.
2. The reference engine's evaluations/s by batch size at torch's default threads, measured in
   interleaved rounds so that the host's drift hits every batch size alike (the campaign benchmark
   times each setting once, one after the other).

Usage: python benchmarks/kernel_probes.py [--rounds 2] [--faults 2]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FAULTZOO_TEST_SHARED", REPO.parent / "shared"))
os.environ.setdefault("FAULTZOO_MIRROR", str(SHARED / "mirror"))

from faultzoo.campaign.engines import make_engine  # noqa: E402
from faultzoo.campaign.golden import golden_run  # noqa: E402
from faultzoo.data import load_selection  # noqa: E402
from faultzoo.faults import dnn_benchmarks_fault_list  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED / "datasets" / "cifar10" / "test-first1000-exact.npz"))
    parser.add_argument("--conv-batches", default="8,16,32,64,128")
    parser.add_argument("--ref-batches", default="8,16,32,64")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--faults", type=int, default=2)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs")
    conv_probe([int(b) for b in args.conv_batches.split(",")])
    if Path(args.data).exists():
        reference_probe(args.data, [int(b) for b in args.ref_batches.split(",")], args.rounds, args.faults)
    else:
        print(f"reference probe skipped: {args.data} not found (pass --data PATH.npz)")


if __name__ == "__main__":
    main()
