"""Throughput of the `faultzoo eval` code path against a plain torch loop on the same model and data.

The faultzoo side is :func:`faultzoo.inference.evaluate` driven with the callback `faultzoo eval`
uses (a rich progress bar updated after every batch, on stderr); the plain side is
``with torch.inference_mode(): for b in x.split(B): model(b)``. Repeats are interleaved (and the
order alternates) so that load from other processes hits both sides alike; medians are reported.
The last line is ``ratio: X`` = faultzoo images/s over plain images/s (goal: >= 0.9).

Usage: python benchmarks/eval_speed.py [--threads N] [--repeats N] [--batch-size B]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MODEL_ID = "cifar10/resnet20"
DATA = SHARED / "datasets" / "cifar10" / "test-first1000-exact.npz"

try:
    import faultzoo  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(REPO / "src"))

from faultzoo.cli._common import progress_bar  # noqa: E402
from faultzoo.data import load_selection  # noqa: E402
from faultzoo.exceptions import WeightsUnavailableError  # noqa: E402
from faultzoo.inference import evaluate  # noqa: E402
from faultzoo.zoo import get_model  # noqa: E402


def load_inputs() -> tuple[torch.Tensor, torch.Tensor, str]:
    """The 1,000 exact CIFAR-10 test images, or random tensors of the same shape when absent."""
    if DATA.is_file():
        selection = load_selection(DATA, dataset="cifar10")
        return selection.x, selection.y, f"{len(selection)} exact CIFAR-10 test images ({DATA})"
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (1000,), generator=gen)
    return x, y, f"1000 random tensors (note: {DATA} is absent; speed is the same, accuracy meaningless)"


def load_model() -> tuple[torch.nn.Module, str]:
    if "FAULTZOO_MIRROR" not in os.environ and (SHARED / "mirror").is_dir():
        os.environ["FAULTZOO_MIRROR"] = str(SHARED / "mirror")
    try:
        return get_model(MODEL_ID), "upstream weights"
    except WeightsUnavailableError as exc:
        # Throughput does not depend on the weight values.
        return get_model(MODEL_ID, weights=None), f"untrained weights (note: {exc})"


def time_plain(model: torch.nn.Module, x: torch.Tensor, batch_size: int) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for b in x.split(batch_size):
            model(b)
    return time.perf_counter() - start


def time_faultzoo(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """What `faultzoo eval` runs once model and data are loaded: evaluate() with its progress callback."""
    start = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task(f"eval {MODEL_ID}", total=len(y), rate="")

        def step(done: int, total: int) -> None:
            elapsed = bar.tasks[task].elapsed or 1e-9
            bar.update(task, completed=done, rate=f"{done / elapsed:,.0f} img/s")

        evaluate(model, x, y, batch_size=batch_size, callback=step)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1, as campaigns)")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes of each side (default 5)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per forward pass (default 128)")
    args = parser.parse_args()
    if args.threads < 1 or args.repeats < 1 or args.batch_size < 2:
        parser.error("--threads and --repeats must be >= 1, --batch-size >= 2")
    torch.set_num_threads(args.threads)

    x, y, data_note = load_inputs()
    model, weights_note = load_model()
    print(f"model: {MODEL_ID} ({weights_note})")
    print(f"data: {data_note}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {args.batch_size}, "
          f"{args.repeats} repeats (interleaved, medians)")

    time_plain(model, x, args.batch_size)  # warm-up: first-call allocations and kernel selection
    time_faultzoo(model, x, y, args.batch_size)
    plain: list[float] = []
    ours: list[float] = []
    for r in range(args.repeats):
        if r % 2 == 0:
            plain.append(time_plain(model, x, args.batch_size))
            ours.append(time_faultzoo(model, x, y, args.batch_size))
        else:
            ours.append(time_faultzoo(model, x, y, args.batch_size))
            plain.append(time_plain(model, x, args.batch_size))

    n = len(x)
    plain_rate = n / statistics.median(plain)
    ours_rate = n / statistics.median(ours)
    print(f"plain torch loop: {plain_rate:,.1f} images/s (median of {args.repeats})")
    print(f"faultzoo eval:    {ours_rate:,.1f} images/s (median of {args.repeats})")
    print(f"ratio: {ours_rate / plain_rate:.3f}")


if __name__ == "__main__":
    main()
