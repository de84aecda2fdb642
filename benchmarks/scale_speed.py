"""Scaling of one campaign over executors: inline (1 worker), local processes and Dask with 1 and 2 workers.

cifar10/resnet20 with its upstream weights, 200 faults drawn (seeded) from its dnn-benchmarks fault
list, the first 1,000 CIFAR-10 test images, fast engine. Each configuration runs in a fresh Python
process, as a user's command would, and is timed around ``run_campaign`` (start-up included: worker
processes or the local Dask cluster, golden run, engine preparation, the tail), after the process
has imported torch and faultzoo. The script checks that every configuration produced the same results, prints each one's
time and speed-up over inline with 1 worker, the ceiling of the ratio on this machine (two local worker
processes over inline with 1 worker: Dask's two workers do the same work plus the cluster's) and,
last, ``ratio: X`` = Dask with 2 workers over inline with 1 worker.

Usage: python benchmarks/scale_speed.py [--faults 200] [--images 1000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FAULTZOO_TEST_SHARED", REPO.parent / "shared"))
MODEL = "cifar10/resnet20"
# The inline executor is one worker by definition (its intra-op threads are no substitute: with other
# load on the cores, OpenMP threads waiting at barriers made a 2-thread inline run 8x slower here).
CONFIGS = [("inline", 1), ("processes", 1), ("processes", 2), ("dask", 1), ("dask", 2)]


def one(executor: str, workers: int, faults: str, data: str, images: int, output: str) -> None:
    """Child process: run one configuration and print its timing as JSON."""
    import torch

    from faultzoo.campaign import run_campaign

    torch.set_num_threads(1)
    options = {"inline": {}, "processes": {"workers": workers}, "dask": {"dask": f"local:{workers}"}}[executor]
    if executor == "processes" and workers == 1:
        from faultzoo.campaign.executors import ProcessesExecutor

        options = {"executor": ProcessesExecutor(1)}  # --workers 1 would run inline
    start = time.perf_counter()
    result = run_campaign(MODEL, faults, output=output, data=data, limit=images, **options)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "complete": result.complete, "executor": result.engine.get("executor")}))


def parent(args: argparse.Namespace) -> None:
    import random

    from faultzoo.campaign.plan import subset
    from faultzoo.faults import dnn_benchmarks_fault_list, write_fault_list
    from faultzoo.zoo import get_model

    full = dnn_benchmarks_fault_list(get_model(MODEL), model_id=MODEL)
    chosen = subset(full, sorted(random.Random(0).sample(range(len(full)), args.faults)))
    print(f"{MODEL} (upstream weights), {args.faults} faults x {args.images} images, fast engine, "
          f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.2f}", flush=True)
    times: dict[tuple[str, int], list[float]] = {}
    results: dict[tuple[str, int], list[list[str]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        faults = str(write_fault_list(chosen, Path(tmp) / "faults.csv", format="torch"))
        for rep in range(args.repeat):
            for executor, workers in CONFIGS:  # interleaved: a drift of the host's speed hits all alike
                out = Path(tmp) / f"{executor}-{workers}-{rep}"
                cmd = [sys.executable, __file__, "--one", f"{executor}:{workers}", "--faults-file", faults,
                       "--data", args.data, "--images", str(args.images), "--output", str(out)]
                env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
                done = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if done.returncode != 0:
                    raise SystemExit(f"{executor} x {workers} failed:\n{done.stdout}{done.stderr}")
                report = json.loads(done.stdout.strip().splitlines()[-1])
                times.setdefault((executor, workers), []).append(report["seconds"])
                with open(out / "results.csv", newline="") as handle:
                    rows = list(csv.reader(handle))
                timing = [k for k, name in enumerate(rows[0]) if "seconds" in name]  # differs from run to run
                results[(executor, workers)] = [[v for k, v in enumerate(r) if k not in timing] for r in rows]
                print(f"  {executor:9s} x {workers}: {report['seconds']:6.1f} s", flush=True)
    same = all(rows == results[("inline", 1)] for rows in results.values())
    print(f"identical results over all configurations: {'yes' if same else 'NO'}")
    base = min(times[("inline", 1)])
    print("best of runs, start-up included; speed-up over inline x 1:")
    for executor, workers in CONFIGS:
        best = min(times[(executor, workers)])
        label = f"{workers} worker{'s' if workers > 1 else ''}"
        print(f"  {executor:9s} {label:10s} {best:6.1f} s  speed-up {base / best:4.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if not same:
        raise SystemExit("configurations disagree")
    # Two Dask workers do the work of two local worker processes plus the cluster's own: the processes
    # executor, measured in the same run, is the ceiling of the ratio on this machine.
    ceiling = base / min(times[("processes", 2)])
    ratio = base / min(times[("dask", 2)])
    print(f"ceiling: processes x 2 over inline x 1 = {ceiling:.2f} (what two workers do here); "
          f"Dask x 2 reaches {ratio / ceiling:.0%} of it")
    print(f"ratio: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", type=int, default=200)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--data", default=str(SHARED / "datasets" / "cifar10" / "test-first1000-exact.npz"))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--faults-file", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("FAULTZOO_MIRROR", str(SHARED / "mirror"))
    if args.one:
        executor, workers = args.one.split(":")
        one(executor, int(workers), args.faults_file, args.data, args.images, args.output)
        return
    if not Path(args.data).exists():
        raise SystemExit(f"data file {args.data} not found: pass --data PATH.npz (CIFAR-10 test images)")
    parent(args)


if __name__ == "__main__":
    main()
