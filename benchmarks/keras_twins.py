"""Measured equivalence of the Keras twins: the figures of docs/keras.md.

Part 1 (every zoo model): the twin built from ../shared/zoo/reference_weights.py's state dict,
run on its reference input (4 images), against ../shared/zoo/reference_outputs: max |logit diff|
and its ratio to max |logit|, for the compiled path (faultzoo.keras.predict_logits) and the eager
call (twin(x, training=False)); also the build time.

Part 2 (real upstream checkpoints of cifar10/resnet20/32/44/56): top-1 agreement between the
PyTorch model and its twin on the 1,000 exact CIFAR-10 test images and on the 10,000 JPEG copies,
the largest logit difference, and each framework's images/s (PyTorch on the threads torch uses
here, Keras on TensorFlow's default threads).

Usage: python benchmarks/keras_twins.py [--part 1|2|all] [--models GLOB] [--batch-size B]
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FAULTZOO_TEST_SHARED", REPO.parent / "shared"))

try:
    import faultzoo  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(REPO / "src"))

from faultzoo.data import load_selection  # noqa: E402
from faultzoo.inference import predict_logits as torch_logits  # noqa: E402
from faultzoo.keras import check_available, convert, predict_logits  # noqa: E402
from faultzoo.zoo import get_model, list_models, model_info  # noqa: E402
from faultzoo.zoo.architectures import all_architectures  # noqa: E402

RESNETS = ["cifar10/resnet20", "cifar10/resnet32", "cifar10/resnet44", "cifar10/resnet56"]


def reference_module():
    spec = importlib.util.spec_from_file_location("reference_weights", SHARED / "zoo" / "reference_weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def part1(pattern: str) -> None:
    ref = reference_module()
    print("model                    max|diff| compiled  ratio     max|diff| eager  ratio     max|logit|  build s")
    worst = 0.0
    for model_id in list_models(pattern=pattern):
        key = model_id.replace("/", "_")
        state = {k: torch.from_numpy(v) for k, v in
                 ref.make_state(ref.read_keys(SHARED / "zoo" / "upstream_keys" / f"{key}.txt")).items()}
        expected = np.load(SHARED / "zoo" / "reference_outputs" / f"{key}.npz")["logits"]
        with torch.device("meta"):
            model = all_architectures()[model_id]()
        model.load_state_dict(state, strict=True, assign=True)
        model.eval()
        size = model_info(model_id).input_size
        start = time.perf_counter()
        twin = convert(model, size, name=key)
        build = time.perf_counter() - start
        x = torch.from_numpy(ref.make_input((4, *size)))
        compiled = predict_logits(twin, x, batch_size=4)
        eager = twin(x.permute(0, 2, 3, 1).numpy(), training=False).numpy()
        scale = float(np.abs(expected).max())
        dc, de = float(np.abs(compiled - expected).max()), float(np.abs(eager - expected).max())
        worst = max(worst, dc / scale, de / scale)
        print(f"{model_id:24s} {dc:18.3e}  {dc / scale:.2e}  {de:15.3e}  {de / scale:.2e}  {scale:10.3f}  {build:7.1f}",
              flush=True)
    print(f"largest ratio: {worst:.2e} (bound 1e-4)")


def part2(batch_size: int) -> None:
    data = {
        "exact-1000": load_selection(SHARED / "datasets" / "cifar10" / "test-first1000-exact.npz", dataset="cifar10"),
        "jpeg-10000": load_selection(SHARED / "datasets" / "cifar10" / "test-jpeg-approx.npz", dataset="cifar10"),
    }
    print(f"torch threads {torch.get_num_threads()}, batch {batch_size}")
    print("model              data         same top-1        max|diff|  max|logit|  torch img/s  keras img/s")
    for model_id in RESNETS:
        model = get_model(model_id)
        twin = convert(model, (3, 32, 32), name=model_id.replace("/", "_"))
        predict_logits(twin, data["exact-1000"].x[:2])  # trace once, outside the timings
        for name, selection in data.items():
            start = time.perf_counter()
            expected = torch_logits(model, selection.x, batch_size=batch_size).numpy()
            torch_rate = len(expected) / (time.perf_counter() - start)
            start = time.perf_counter()
            got = predict_logits(twin, selection.x, batch_size=batch_size)
            keras_rate = len(got) / (time.perf_counter() - start)
            same = int((expected.argmax(1) == got.argmax(1)).sum())
            print(f"{model_id:18s} {name:11s} {same:5d}/{len(got):5d} {100 * same / len(got):7.2f}%  "
                  f"{float(np.abs(expected - got).max()):9.2e}  {float(np.abs(expected).max()):10.2f}  "
                  f"{torch_rate:11.0f}  {keras_rate:11.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["1", "2", "all"], default="all")
    parser.add_argument("--models", default="*", help="glob over model ids for part 1")
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    check_available()
    import keras
    import tensorflow as tf

    print(f"{time.strftime('%Y-%m-%d')} {platform.machine()} {os.cpu_count()} CPUs; torch {torch.__version__}, "
          f"tensorflow {tf.__version__}, keras {keras.__version__}")
    if args.part in ("1", "all"):
        part1(args.models)
    if args.part in ("2", "all"):
        os.environ.setdefault("FAULTZOO_MIRROR", str(SHARED / "mirror"))
        part2(args.batch_size)


if __name__ == "__main__":
    main()
