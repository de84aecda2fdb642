"""`faultzoo campaign`: run or resume a fault-injection campaign, with a live progress bar and a summary."""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from faultzoo.cli._common import (
    BatchOpt, DataRootOpt, DownloadOpt, LimitOpt, PerClassOpt, WeightsOpt, console, progress_bar,
    weights_arg,
)

EXAMPLES = """\b
Re-running the same command resumes an interrupted campaign, with any of --workers or --dask.

\b
Examples:
  faultzoo faultlist cifar10/resnet20 --design dnn-benchmarks -o rn20_FL.csv
  faultzoo campaign cifar10/resnet20 --faults rn20_FL.csv --fault-sample 300 --data test.npz --workers 2 -o rn20-run
  faultzoo campaign cifar10/resnet20 --faults rn20_FL.csv --data test.npz --dask local:2 -o rn20-run
  faultzoo campaign cifar10/resnet20 --framework keras --faults rn20_FL.csv --data test.npz --workers 2 -o rn20-keras
  faultzoo compare rn20-run rn20-keras -o rn20-compare
  faultzoo faultlist torchvision:resnet18 --design network --error 0.05 -o r18_FL.csv
  faultzoo campaign torchvision:resnet18 --weights r18.pth --faults r18_FL.csv \\
      --data imagefolder:my-images --transform ResNet18_Weights.IMAGENET1K_V1 --workers 2 -o r18-run
  faultzoo campaign my_nets.py:build_net --weights net.pt --faults net_FL.csv --data cifar10 -o net-run
  faultzoo campaign cifar10/resnet20 --faults rn20_FL.csv --data /shared/test.npz --dask scheduler.json -o rn20-run
"""

MEANINGS = (
    "masked: every logit bit-identical to the fault-free run",
    "non-critical: some logit differs, the top-1 class is the fault-free one",
    "critical (SDC-1): the top-1 class differs from the fault-free run's",
)


ModelSpecArg = Annotated[str, typer.Argument(
    metavar="MODEL", help="A zoo id (cifar10/resnet20, see `faultzoo models`), torchvision:NAME (a torchvision "
                          "classification model, untrained unless --weights PATH), package.module:function or "
                          "path/to/file.py:function (a function of yours returning the torch.nn.Module).")]


def campaign(
    model_id: ModelSpecArg,
    faults: Annotated[Path, typer.Option("--faults", help="Fault list: upstream torch/Keras/results CSV or faultzoo format.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder (campaign.sqlite + exports); resumed if it exists.")],
    weights: WeightsOpt = "default",
    data: Annotated[str | None, typer.Option(
        "--data", help="Dataset name (cifar10, cifar100, gtsrb: test split under --data-root), a PATH.npz, or "
                       "imagefolder:PATH (one sub-folder per class; with --transform). Default: a zoo model's "
                       "dataset.")] = None,
    transform: Annotated[str | None, typer.Option(
        "--transform", help="For imagefolder data: a torchvision weights member (ResNet18_Weights.IMAGENET1K_V1) "
                            "or steps resize=N,crop=N,mean=A:B:C,std=A:B:C.")] = None,
    num_classes: Annotated[int | None, typer.Option(
        "--num-classes", min=1, help="torchvision:NAME models: the classifier's size (default: the builder's).")] = None,
    data_root: DataRootOpt = None,
    limit: LimitOpt = None,
    per_class: PerClassOpt = None,
    fault_limit: Annotated[int | None, typer.Option("--fault-limit", min=1, help="Only the first N faults.")] = None,
    fault_sample: Annotated[int | None, typer.Option("--fault-sample", min=1, help="A seeded random subset of N faults.")] = None,
    fault_seed: Annotated[int, typer.Option("--fault-seed", help="Seed of --fault-sample.")] = 0,
    engine: Annotated[str, typer.Option("--engine", help="fast (default) or reference: identical outcomes.")] = "fast",
    framework: Annotated[str, typer.Option(
        "--framework", help="'torch' (the PyTorch model) or 'keras' (its Keras 3 twin with the same weights and "
                            "faults; needs faultzoo[tf]).")] = "torch",
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes on this machine (1 thread each).")] = 1,
    dask: Annotated[str | None, typer.Option(
        "--dask", help="Run on Dask: local:N (N processes here), tcp://HOST:PORT or a scheduler file (JSON) of a "
                       "running cluster, e.g. a SLURMCluster; every worker must see the weights and data.")] = None,
    batch_size: BatchOpt = 128,
    keep_outcomes: Annotated[bool, typer.Option("--keep-outcomes", help="Also store each image's outcome (outcomes.npy).")] = False,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda[:i].")] = "cpu",
    tf32: Annotated[bool, typer.Option("--tf32", help="Allow TF32 on GPUs (as the upstream campaigns ran); default strict FP32.")] = False,
    download: DownloadOpt = False,
) -> None:
    """Run a campaign: every fault x every selected image, classified masked / non-critical / critical."""
    from faultzoo.campaign import run_campaign
    from faultzoo.campaign.engines import engine_names
    from faultzoo.campaign.executors import parse_dask_target
    from faultzoo.exceptions import FaultzooError

    from faultzoo.zoo import FRAMEWORKS

    if framework not in FRAMEWORKS:
        raise typer.BadParameter(f"{framework!r} is not one of {', '.join(FRAMEWORKS)}", param_hint="--framework")
    if engine not in engine_names():
        raise typer.BadParameter(f"{engine!r} is not one of {', '.join(engine_names())}", param_hint="--engine")
    if fault_limit is not None and fault_sample is not None:
        raise typer.BadParameter("use either --fault-limit or --fault-sample", param_hint="--fault-sample")
    if dask is not None:
        if workers > 1:
            raise typer.BadParameter(f"use either --workers or --dask (e.g. --dask local:{workers})",
                                     param_hint="--dask")
        try:
            parse_dask_target(dask)
        except FaultzooError as exc:
            raise typer.BadParameter(str(exc).removeprefix(f"--dask {dask!r}: "), param_hint="--dask") from None
    with progress_bar() as bar, _says_stopping():
        task = None

        def on_progress(p) -> None:
            # The first call comes once every input is validated: no bar is drawn for a refused campaign.
            nonlocal task
            if task is None:
                task = bar.add_task(f"campaign {model_id}" + (f" ({framework})" if framework != "torch" else ""),
                                    total=p.faults_total, rate="")
            bar.update(task, total=p.faults_total, completed=p.faults_done,
                       rate=f"{p.evaluations_per_second:,.0f} inferences/s")

        result = run_campaign(
            model_id, faults, output=output, weights=weights_arg(weights), data=data, transform=transform,
            num_classes=num_classes, data_root=data_root, limit=limit,
            per_class=per_class, fault_limit=fault_limit, fault_sample=fault_sample, fault_seed=fault_seed,
            engine=engine, workers=workers, dask=dask, batch_size=batch_size, keep_outcomes=keep_outcomes, device=device,
            tf32=tf32, download=download, callbacks=[on_progress], framework=framework,
        )
    print_summary(result)


def print_summary(result) -> None:
    s = result.summary
    table = Table(title=f"{s.faults_done} faults x {s.images} images (golden top-1 {s.golden_top1:.2f}%)")
    for col in ("bits", "faults", "masked %", "non-critical %", "critical (SDC-1) %", "NaN/Inf outputs"):
        table.add_column(col, justify="left" if col == "bits" else "right")
    for name, tally in [*s.by_bit_class.items(), ("all", s.total)]:
        table.add_row(name, str(tally.faults), f"{100 * tally.rate('masked'):.2f}",
                      f"{100 * tally.rate('non_critical'):.2f}", f"{100 * tally.rate('critical'):.2f}", str(tally.nonfinite), style="bold" if name == "all" else None)
    console.print(table)
    for line in MEANINGS:
        console.print(f"  {line}", markup=False, highlight=False)
    engine = result.engine or {}
    if engine.get("fallback"):
        console.print(f"[yellow]fast engine fell back to the reference: {engine['fallback']}[/yellow]")
    console.print(f"store: {result.store_path}")
    for name, path in result.exports.items():
        console.print(f"{name}: {path}")


@contextmanager
def _says_stopping():
    """On Ctrl-C, say at once that the campaign is stopping (workers are shut down, results kept)."""
    def handler(signum, frame):
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts the shutdown
        print("stopping... (results so far are kept)", file=sys.stderr, flush=True)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C as it is
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def register(app: typer.Typer) -> None:
    app.command("campaign", epilog=EXAMPLES)(campaign)
