"""Time the dnn-benchmarks fault-list generator on cifar10/vgg19_bn (39 M weights).

Run: ``PYTHONPATH=src python benchmarks/faultlist_speed.py [--model ID] [--repeat K]``.
The generator needs shapes only, so the model is built on the meta device; the time to build it
with real (random) tensors is printed too, for comparison.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from faultzoo.faults import dnn_benchmarks_fault_list, write_fault_list
from faultzoo.zoo.architectures import all_architectures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar10/vgg19_bn")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    build = all_architectures()[args.model]

    start = time.perf_counter()
    model = build()
    real_build = time.perf_counter() - start
    with torch.device("meta"):
        shapes_only = build()
    weights = sum(p.numel() for p in model.parameters() if p.dim() >= 2)

    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        fault_list = dnn_benchmarks_fault_list(shapes_only, model_id=args.model)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    again = dnn_benchmarks_fault_list(model, model_id=args.model)
    on_real = time.perf_counter() - start
    assert again.fingerprint() == fault_list.fingerprint()  # the list depends on shapes only

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_fault_list(fault_list, Path(tmp) / "fl.csv", format="torch")
        write_time = time.perf_counter() - start

    meta = fault_list.meta
    print(f"{args.model}: {weights:,} weights, N = {meta.population_size:,}, n = {meta.sample_size:,}, "
          f"{len(fault_list):,} faults in {len(meta.strata)} layers")
    print(f"generate (best of {args.repeat}): {min(times):.3f} s   [all: {', '.join(f'{t:.3f}' for t in times)}]")
    print(f"generate on the real model: {on_real:.3f} s; write torch CSV: {write_time:.3f} s; "
          f"build the model with real tensors: {real_build:.3f} s")
    print(f"fingerprint {fault_list.fingerprint()}")


if __name__ == "__main__":
    main()
