"""`faultzoo eval`: top-1/top-5 of a zoo model on real data, with throughput."""

from __future__ import annotations

from typing import Annotated

import typer

from faultzoo.cli._common import (
    BatchOpt, DataOpt, DataRootOpt, DownloadOpt, LimitOpt, ModelArg, PerClassOpt, WeightsOpt, console, progress_bar,
    weights_arg,
)

FrameworkOpt = Annotated[str, typer.Option(
    "--framework", help="'torch' (the PyTorch model) or 'keras' (its Keras 3 twin; needs faultzoo[tf]); "
                        "with keras, --weights may also be a .keras or .h5 file.")]


def eval_command(
    model_id: ModelArg,
    weights: WeightsOpt = "default",
    data: DataOpt = None,
    data_root: DataRootOpt = None,
    limit: LimitOpt = None,
    per_class: PerClassOpt = None,
    batch_size: BatchOpt = 128,
    download: DownloadOpt = False,
    framework: FrameworkOpt = "torch",
) -> None:
    """Evaluate MODEL on its dataset's test split (or an .npz) and print top-1/top-5 and images/s.

    Example: faultzoo eval cifar10/resnet20 --framework keras --limit 1000
    """
    from faultzoo.data import load_selection
    from faultzoo.inference import evaluate
    from faultzoo.zoo import FRAMEWORKS, get_model, model_info

    if framework not in FRAMEWORKS:
        raise typer.BadParameter(f"{framework!r} is not one of {', '.join(FRAMEWORKS)}.", param_hint="--framework")
    if framework == "keras":
        from faultzoo.keras import check_available

        check_available()  # a missing TensorFlow is reported before any data loads
    info = model_info(model_id)
    selection = load_selection(data or info.dataset, dataset=info.dataset, limit=limit, per_class=per_class,
                               root=data_root, download=download)
    model = get_model(model_id, weights=weights_arg(weights), progress=True, framework=framework)
    if framework == "keras":
        from faultzoo.keras import evaluate  # same images (NCHW -> NHWC with to_nhwc), Keras inference
    with progress_bar() as bar:
        task = bar.add_task(f"eval {model_id} ({framework})", total=len(selection.y), rate="")

        def step(done: int, total: int) -> None:
            elapsed = bar.tasks[task].elapsed or 1e-9
            bar.update(task, completed=done, rate=f"{done / elapsed:,.0f} img/s")

        acc = evaluate(model, selection.x, selection.y, batch_size=batch_size, callback=step)
    console.print(
        f"[bold]{model_id}[/bold] ({framework}) on {selection.source} ({acc.n} images): "
        f"top-1 [bold]{acc.top1:.2f}%[/bold], top-5 {acc.top5:.2f}%, "
        f"{acc.images_per_second:,.0f} images/s ({_threads(framework)} threads, batch {batch_size})"
    )


def _threads(framework: str) -> int:
    if framework == "keras":
        import os

        from faultzoo.keras._tf import require_keras

        _, tf = require_keras()
        return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1  # 0: TF uses all cores
    import torch

    return torch.get_num_threads()


EXAMPLES = """\b
Examples:
  faultzoo eval cifar10/resnet20 --data cifar10 --download --limit 1000
  faultzoo eval cifar10/resnet20 --data test.npz --weights my_resnet20.pth
"""


def register(app) -> None:
    app.command("eval", epilog=EXAMPLES)(eval_command)
