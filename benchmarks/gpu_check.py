"""GPU check: on CUDA, fast == reference for every (fault, image), with TF32 off (default) and on.

Also shows why the upstream campaigns (GPU, PyTorch's default TF32 convolutions) report low mantissa
bits as masked: with TF32 the conv inputs are rounded to 10 mantissa bits, so flips of a weight's low
mantissa bits often vanish. Prints per bit class the masked rate under each setting.

Usage: python benchmarks/gpu_check.py --weights resnet20.th --data test.npz [--images 512] [--faults 96]
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch

from faultzoo.backends.engines import make_engine
from faultzoo.backends.golden import golden_run
from faultzoo.campaign.runner import numerics_settings
from faultzoo.campaign.summary import bit_class
from faultzoo.data import load_selection
from faultzoo.faults import Fault
from faultzoo.zoo import get_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="cifar10/resnet20")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--faults", type=int, default=96)
    args = parser.parse_args()
    device = torch.device("cuda")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(device)}")
    selection = load_selection(args.data, dataset="cifar10", limit=args.images)
    cpu_model = get_model(args.model, weights=args.weights)
    cpu_golden = golden_run(cpu_model, selection.x, selection.y, batch_size=128)
    rng = random.Random(0)
    params = [(n, p) for n, p in cpu_model.named_parameters() if p.dim() >= 2]
    faults = []
    for i in range(args.faults):
        name, p = params[i % len(params)]
        faults.append((i, Fault(name, tuple(rng.randrange(s) for s in p.shape), (i % 32,))))
    model = cpu_model.to(device)
    x, y = selection.x.to(device), selection.y.to(device)
    for tf32 in (False, True):
        print(f"\n== TF32 {'on' if tf32 else 'off'}: {numerics_settings(device, tf32=tf32, threads=None)}")
        golden = golden_run(model, x, y, batch_size=128)
        same_as_cpu = torch.equal(golden.logits.cpu().view(torch.int32), cpu_golden.logits.view(torch.int32))
        print(f"golden top-1 {golden.accuracy:.2f}% (CPU {cpu_golden.accuracy:.2f}%); logits bit-identical to CPU: "
              f"{same_as_cpu}")
        fast = make_engine("fast", model, x, golden, batch_size=128, params=[f.param for _, f in faults])
        t0 = time.perf_counter()
        got = fast.run(faults)
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        ref = make_engine("reference", model, x, golden, batch_size=128).run(faults)
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        bad = [fid for fid in ref if not (np.array_equal(got[fid].codes, ref[fid].codes)
                                          and np.array_equal(got[fid].top1, ref[fid].top1))]
        d = fast.describe()
        print(f"fast vs reference: {len(bad)} of {len(faults)} faults differ; fallback={d['fallback']}, "
              f"batch_aligned={d['batch_aligned']}, checks={ {k: v for k, v in d['checks'].items() if k != 'layers'} }")
        print(f"time: fast {t1 - t0:.2f} s, reference {t2 - t1:.2f} s, ratio {(t2 - t1) / (t1 - t0):.2f}")
        for cls, bits in (("mantissa 0-11", range(0, 12)), ("mantissa 12-22", range(12, 23)),
                          ("exponent", range(23, 31)), ("sign", range(31, 32))):
            chosen = [fid for fid, f in faults if f.bit in bits]
            codes = np.concatenate([ref[fid].codes for fid in chosen])
            print(f"  {cls:15s} {len(chosen):3d} faults: masked {100 * (codes == 0).mean():6.2f}%, "
                  f"critical {100 * (codes == 2).mean():6.2f}%")
        assert bit_class(0) == "mantissa"
        if bad:
            raise SystemExit(f"MISMATCH on faults {bad[:10]}")


if __name__ == "__main__":
    main()
