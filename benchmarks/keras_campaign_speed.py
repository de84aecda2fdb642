"""Keras campaign throughput: keras-fast vs keras-reference, same twin, images and faults, same process.

Both engines run the same campaign: cifar10/resnet20 with its real weights, the first ``--images``
exact CIFAR-10 test images, ``--faults`` faults drawn (seed 0) from the model's dnn-benchmarks
list (so spread over layers and bits as that list is). Each engine's time includes its start-up:
building the engine, its start-up checks and traces, plus the golden run both of them need (timed
once, added to both). Both run in this one process on the same cores, with TensorFlow's default
thread pools. Outcomes of the two engines are compared for every (fault, image) before the rates
are printed.

Prints the share of the twin's multiply-accumulates the fast engine recomputes (its ceiling), each
engine's (fault x image) evaluations per second and, as its last line, ``ratio: X`` (fast over
reference).

Usage: python benchmarks/keras_campaign_speed.py [--images 1000] [--faults 60] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FAULTZOO_TEST_SHARED", REPO.parent / "shared"))
os.environ.setdefault("FAULTZOO_MIRROR", str(SHARED / "mirror"))

import faultzoo  # noqa: E402
from faultzoo.campaign.summary import bit_class  # noqa: E402
from faultzoo.data import load_selection  # noqa: E402
from faultzoo.faults import dnn_benchmarks_fault_list  # noqa: E402
from faultzoo.backends.keras import (  # noqa: E402
    KerasFastEngine,
    KerasReferenceEngine,
    keras_golden_run,
    keras_numerics,
)

MODEL = "cifar10/resnet20"


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--faults", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    model = faultzoo.get_model(MODEL)
    twin, build_s = timed(lambda: faultzoo.get_model(MODEL, framework="keras"))
    data = load_selection(SHARED / "datasets" / "cifar10" / "test-first1000-exact.npz", dataset="cifar10",
                          limit=args.images)
    full = dnn_benchmarks_fault_list(model, model_id=MODEL)
    picks = sorted(random.Random(0).sample(range(len(full)), args.faults))
    faults = [(i, full[i]) for i in picks]
    layers = len({f.param for _, f in faults})
    classes = {c: sum(bit_class(f.bits[0]) == c for _, f in faults) for c in ("sign", "exponent", "mantissa")}
    print(f"{MODEL} (real weights), {len(data)} images, {len(faults)} faults from its dnn-benchmarks list "
          f"({len(full)} faults; {layers} layers; bit classes {classes}), batch size {args.batch_size}")
    print(f"twin built in {build_s:.1f} s; numerics: " + ", ".join(f"{k}={v}" for k, v in keras_numerics().items()
                                                                 if k not in ("framework", "backend")))

    golden, golden_s = timed(lambda: keras_golden_run(twin, data.x, data.y, batch_size=args.batch_size))
    print(f"golden run: {golden_s:.1f} s (top-1 {golden.accuracy:.1f} %), counted in both engines' times")

    def campaign(cls):
        engine = cls(model, data.x, golden, batch_size=args.batch_size, twin=twin)
        return engine, engine.run(faults)

    (fast, fast_out), fast_s = timed(lambda: campaign(KerasFastEngine))
    (_, ref_out), ref_s = timed(lambda: campaign(KerasReferenceEngine))
    differ = [fid for fid, _ in faults if not (np.array_equal(fast_out[fid].codes, ref_out[fid].codes)
                                                and np.array_equal(fast_out[fid].nonfinite, ref_out[fid].nonfinite)
                                                and np.array_equal(fast_out[fid].top1, ref_out[fid].top1))]
    if differ:
        raise SystemExit(f"the engines disagree on faults {differ[:10]} ({len(differ)} in all)")
    info = fast.describe()
    modes = sorted(set(info["layers"].values()))
    print(f"outcomes identical for all {len(faults) * len(data):,} (fault, image) pairs")
    print(f"keras-fast: batch check {info['batch_check']['mode']} (rows independent: "
          f"{info['batch_check']['rows_independent']}); layer modes {modes}; rows dropped at the faulty layer "
          f"{info['stats']['rows_dropped']:,} of {info['stats']['rows']:,}; downstream batches "
          f"{info['stats']['downstream_batches']:,}")
    share = float(np.mean([fast.graph.cut(fast.reference.targets.target(f).layer).macs / fast.graph.total_macs
                           for _, f in faults]))
    print(f"keras-fast recomputes {100 * share:.1f} % of the twin's multiply-accumulates per (fault, image) on average "
          f"(the faulty layer and what follows it): ratio ceiling without overheads {1 / share:.1f}")
    evaluations = len(faults) * len(data)
    fast_rate = evaluations / (fast_s + golden_s)
    ref_rate = evaluations / (ref_s + golden_s)
    print(f"keras-reference: {ref_s + golden_s:.1f} s, {ref_rate:,.0f} evaluations/s")
    print(f"keras-fast:      {fast_s + golden_s:.1f} s, {fast_rate:,.0f} evaluations/s")
    print(f"ratio: {fast_rate / ref_rate:.2f}")


if __name__ == "__main__":
    main()
