"""`faultzoo campaign`: run or resume a fault-injection campaign, with a live progress bar and a summary."""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from faultzoo.campaign.options import option
from faultzoo.cli._common import console, progress_bar, weights_arg
from faultzoo.outcome import RATE_KEYS, RATE_LABELS, Outcome

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


def _help(name: str) -> str:
    return option(name).help


def campaign(
    model_id: ModelSpecArg,
    faults: Annotated[Path, typer.Option("--faults", help=_help("faults"))],
    output: Annotated[Path, typer.Option("-o", "--output", help=_help("output"))],
    weights: Annotated[str, typer.Option("--weights", help=_help("weights") + " On the command line: 'none' for "
                                         "untrained.")] = "default",
    data: Annotated[str | None, typer.Option("--data", help=_help("data"))] = None,
    transform: Annotated[str | None, typer.Option("--transform", help=_help("transform"))] = None,
    init_seed: Annotated[int, typer.Option("--init-seed", help=_help("init_seed"))] = 0,
    num_classes: Annotated[int | None, typer.Option("--num-classes", help=_help("num_classes"))] = None,
    data_root: Annotated[Path | None, typer.Option("--data-root", help=_help("data_root"))] = None,
    limit: Annotated[int | None, typer.Option("--limit", help=_help("limit"))] = None,
    per_class: Annotated[int | None, typer.Option("--per-class", help=_help("per_class"))] = None,
    fault_limit: Annotated[int | None, typer.Option("--fault-limit", help=_help("fault_limit"))] = None,
    fault_sample: Annotated[int | None, typer.Option("--fault-sample", help=_help("fault_sample"))] = None,
    fault_seed: Annotated[int, typer.Option("--fault-seed", help=_help("fault_seed"))] = 0,
    engine: Annotated[str, typer.Option("--engine", help=_help("engine"))] = "fast",
    framework: Annotated[str, typer.Option("--framework", help=_help("framework"))] = "torch",
    workers: Annotated[int, typer.Option("--workers", help=_help("workers"))] = 1,
    dask: Annotated[str | None, typer.Option("--dask", help=_help("dask"))] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help=_help("batch_size"))] = 128,
    keep_outcomes: Annotated[bool, typer.Option("--keep-outcomes", help=_help("keep_outcomes"))] = False,
    device: Annotated[str, typer.Option("--device", help=_help("device"))] = "cpu",
    tf32: Annotated[bool, typer.Option("--tf32", help=_help("tf32"))] = False,
    download: Annotated[bool, typer.Option("--download", help=_help("download"))] = False,
    plan_file: Annotated[Path | None, typer.Option("--plan", help=_help("plan_file"))] = None,
) -> None:
    """Run a campaign: every fault x every selected image, classified masked / non-critical / critical.

    The options are validated by the library (faultzoo.campaign.options), which names a wrong one."""
    from faultzoo.campaign import run_campaign

    with progress_bar() as bar, _says_stopping():
        task = None

        def on_progress(p) -> None:
            # The first call comes once every input is validated: no bar is drawn for a refused campaign.
            nonlocal task
            if task is None and p.faults_done:
                console.print(f"resuming: {p.faults_done:,} of {p.faults_total:,} faults already stored",
                              highlight=False)
            if task is None:
                task = bar.add_task(f"campaign {model_id}" + (f" ({framework})" if framework != "torch" else ""),
                                    total=p.faults_total, rate="")
            bar.update(task, total=p.faults_total, completed=p.faults_done,
                       rate=f"{p.evaluations_per_second:,.0f} inferences/s")

        result = run_campaign(
            model_id, faults, output=output, weights=weights_arg(weights), data=data, transform=transform,
            num_classes=num_classes, init_seed=init_seed, data_root=data_root, limit=limit,
            per_class=per_class, fault_limit=fault_limit, fault_sample=fault_sample, fault_seed=fault_seed,
            engine=engine, workers=workers, dask=dask, batch_size=batch_size, keep_outcomes=keep_outcomes, device=device,
            tf32=tf32, download=download, callbacks=[on_progress], framework=framework, plan_file=plan_file,
        )
    print_summary(result)


def print_summary(result) -> None:
    s = result.summary
    table = Table(title=f"{s.faults_done} faults x {s.images} images (golden top-1 {s.golden_top1:.2f}%)")
    rates = [o.key for o in Outcome]
    for col in ("bits", "faults", *(f"{RATE_LABELS[k]} %" for k in rates), f"{RATE_LABELS[RATE_KEYS[-1]]} outputs"):
        table.add_column(col, justify="left" if col == "bits" else "right")
    for name, tally in [*s.by_bit_class.items(), ("all", s.total)]:
        table.add_row(name, str(tally.faults), *(f"{100 * tally.rate(k):.2f}" for k in rates), str(tally.nonfinite),
                      style="bold" if name == "all" else None)
    console.print(table)
    for line in MEANINGS:
        console.print(f"  {line}", markup=False, highlight=False)
    engine = result.engine or {}
    if engine.get("fallback"):
        console.print(f"[yellow]fast engine fell back to the reference: {engine['fallback']}[/yellow]")
    if result.predicted_seconds is not None and result.measured_seconds is not None:
        console.print(f"time: {result.measured_seconds:,.1f} s measured, {result.predicted_seconds:,.1f} s predicted by "
                      "the plan (golden run, preparation and tasks)", highlight=False)
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
